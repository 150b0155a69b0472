//! The blind search index: for each case, keyed hashes of the words of its
//! texts (`cases::search` computes them under a key derived from the
//! master key, one per organisation). The database holds no word; what it
//! shows is which cases of an organisation share a word, and how many.

use super::{StoreError, WriteTx};

/// Terms per INSERT statement (each is two parameters).
const CHUNK: usize = 400;

/// Adds `terms` to case `case_id`'s index; terms it has already are kept
/// once.
pub async fn add_terms(
    tx: &mut WriteTx<'_>,
    case_id: i64,
    terms: &[i64],
) -> Result<(), StoreError> {
    for chunk in terms.chunks(CHUNK) {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| format!("(${}, ${})", 2 * i + 1, 2 * i + 2))
            .collect();
        let sql = format!(
            "INSERT INTO case_terms (term, case_id) VALUES {} ON CONFLICT DO NOTHING",
            values.join(", ")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false);
        for t in chunk {
            q = q.bind(*t).bind(case_id);
        }
        q.execute(tx.conn()).await?;
    }
    Ok(())
}

/// How many terms case `case_id` has: none for a case filed before the
/// index existed.
pub async fn count_terms(tx: &mut WriteTx<'_>, case_id: i64) -> Result<i64, StoreError> {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM case_terms WHERE case_id = $1")
        .bind(case_id)
        .fetch_one(tx.conn())
        .await?;
    Ok(n)
}

/// The version of the index the store's cases were all indexed for, if
/// any (a store from before the index has none).
pub async fn indexed_version(pool: &sqlx::AnyPool) -> Result<Option<String>, StoreError> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT value FROM store_meta WHERE name = 'search_index'")
            .fetch_optional(pool)
            .await?;
    Ok(row.map(|(v,)| v))
}

/// Records that every case is indexed for `version`.
pub async fn mark_indexed(tx: &mut WriteTx<'_>, version: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM store_meta WHERE name = 'search_index'")
        .execute(tx.conn())
        .await?;
    sqlx::query("INSERT INTO store_meta (name, value) VALUES ('search_index', $1)")
        .bind(version)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Every case: (id, reference, organisation), oldest first.
pub async fn all_cases(pool: &sqlx::AnyPool) -> Result<Vec<(i64, String, String)>, StoreError> {
    Ok(
        sqlx::query_as("SELECT id, reference, org FROM cases ORDER BY id")
            .fetch_all(pool)
            .await?,
    )
}
