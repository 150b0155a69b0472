//! Schema migrations, one list per backend, applied in order. The table
//! `schema_migrations` records which ran. Never edit a shipped step: add
//! one, to both lists, with the same meaning.
//!
//! Booleans are stored as 0/1 integers on both backends so that they read
//! back the same way through sqlx's `Any` driver.

mod postgres;
mod sqlite;

pub use postgres::POSTGRES;
pub use sqlite::SQLITE;
