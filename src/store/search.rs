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

/// A case another case's terms found.
#[derive(Debug, Clone)]
pub struct Related {
    pub reference: String,
    /// How many of the given terms it holds.
    pub shared: i64,
}

/// The cases other than `except` holding the most of `terms` (each at
/// least `min_shared`), most first, at most `limit`.
pub async fn related(
    pool: &sqlx::AnyPool,
    terms: &[i64],
    except: i64,
    min_shared: i64,
    limit: i64,
) -> Result<Vec<Related>, StoreError> {
    if terms.is_empty() {
        return Ok(Vec::new());
    }
    let marks: Vec<String> = (4..4 + terms.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT c.reference, COUNT(*) AS n FROM case_terms t JOIN cases c ON c.id = t.case_id
         WHERE t.term IN ({}) AND t.case_id != $1
         GROUP BY c.reference HAVING COUNT(*) >= $2 ORDER BY n DESC, c.reference LIMIT $3",
        marks.join(", ")
    );
    let mut q = sqlx::query_as::<_, (String, i64)>(sqlx::AssertSqlSafe(sql))
        .persistent(false)
        .bind(except)
        .bind(min_shared)
        .bind(limit);
    for t in terms {
        q = q.bind(*t);
    }
    Ok(q.fetch_all(pool)
        .await?
        .into_iter()
        .map(|(reference, shared)| Related { reference, shared })
        .collect())
}

/// How many cases hold each of `terms`, each counted up to `cap` (a
/// common word stops costing at the cap), in one statement.
pub async fn frequencies(
    pool: &sqlx::AnyPool,
    terms: &[i64],
    cap: i64,
) -> Result<Vec<(i64, i64)>, StoreError> {
    if terms.is_empty() {
        return Ok(Vec::new());
    }
    let parts: Vec<String> = (0..terms.len())
        .map(|i| {
            format!(
                "SELECT ${} AS term, (SELECT COUNT(*) FROM (SELECT 1 FROM case_terms WHERE term = ${} LIMIT $1) AS t) AS n",
                i + 2,
                i + 2
            )
        })
        .collect();
    let mut q = sqlx::query_as::<_, (i64, i64)>(sqlx::AssertSqlSafe(parts.join(" UNION ALL ")))
        .persistent(false)
        .bind(cap);
    for t in terms {
        q = q.bind(*t);
    }
    Ok(q.fetch_all(pool).await?)
}

/// The cases other than `except` holding both `rarer` and `other`, read
/// from `rarer`'s cases (each probed for `other` by the index), at most
/// `limit`.
pub async fn holding_both(
    pool: &sqlx::AnyPool,
    rarer: i64,
    other: i64,
    except: i64,
    limit: i64,
) -> Result<Vec<String>, StoreError> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT c.reference FROM case_terms a
         JOIN case_terms b ON b.term = $2 AND b.case_id = a.case_id
         JOIN cases c ON c.id = a.case_id
         WHERE a.term = $1 AND a.case_id != $3 ORDER BY c.id LIMIT $4",
    )
    .bind(rarer)
    .bind(other)
    .bind(except)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|(r,)| r).collect())
}
