//! The people who have signed in with a role: by their stable identity,
//! with the organisations their roles opened at their last sign-in. A case
//! can be assigned only to one of them, for its organisation.

use super::{Store, StoreError};
use sqlx::Row;

/// One person who signed in.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Analyst {
    pub actor: String,
    pub display: String,
    /// Organisations their roles name (policy names).
    pub orgs: Vec<String>,
    /// Admins work every organisation's cases.
    pub admin: bool,
}

impl Analyst {
    /// Whether they work the cases of `org`.
    pub fn works(&self, org: &str) -> bool {
        self.admin || self.orgs.iter().any(|o| o == org)
    }
}

/// Records a sign-in: who, under which name, with which roles.
pub async fn signed_in(store: &Store, a: &Analyst, now: i64) -> Result<(), StoreError> {
    let orgs = serde_json::to_string(&a.orgs).unwrap_or_else(|_| "[]".into());
    let mut tx = store.write().await?;
    let updated = sqlx::query(
        "UPDATE analysts SET display = $1, orgs = $2, admin = $3, last_seen = $4 WHERE actor = $5",
    )
    .bind(&a.display)
    .bind(&orgs)
    .bind(i64::from(a.admin))
    .bind(now)
    .bind(&a.actor)
    .execute(tx.conn())
    .await?;
    if updated.rows_affected() == 0 {
        sqlx::query(
            "INSERT INTO analysts (actor, display, orgs, admin, last_seen) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&a.actor)
        .bind(&a.display)
        .bind(&orgs)
        .bind(i64::from(a.admin))
        .bind(now)
        .execute(tx.conn())
        .await?;
    }
    tx.commit().await
}

fn analyst(r: &sqlx::any::AnyRow) -> Result<Analyst, StoreError> {
    let orgs: String = r.try_get("orgs")?;
    Ok(Analyst {
        actor: r.try_get("actor")?,
        display: r.try_get("display")?,
        orgs: serde_json::from_str(&orgs)
            .map_err(|_| StoreError::Corrupt("analysts.orgs is not a JSON list".into()))?,
        admin: r.try_get::<i64, _>("admin")? != 0,
    })
}

/// The person known as `actor`, if they ever signed in.
pub async fn find(store: &Store, actor: &str) -> Result<Option<Analyst>, StoreError> {
    let row = sqlx::query("SELECT actor, display, orgs, admin FROM analysts WHERE actor = $1")
        .bind(actor)
        .fetch_optional(store.pool())
        .await?;
    row.as_ref().map(analyst).transpose()
}

/// Everyone who works the cases of `org`, by name.
pub async fn working(store: &Store, org: &str) -> Result<Vec<Analyst>, StoreError> {
    let rows =
        sqlx::query("SELECT actor, display, orgs, admin FROM analysts ORDER BY display, actor")
            .fetch_all(store.pool())
            .await?;
    let mut out = Vec::new();
    for r in &rows {
        let a = analyst(r)?;
        if a.works(org) {
            out.push(a);
        }
    }
    Ok(out)
}
