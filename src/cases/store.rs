//! Cases in the database: creating them from intake, reading them for the
//! CLI, and the lifecycle operations. Runtime `sqlx::query` only.

use super::{CaseKind, CaseState, CloseReason};
use crate::audit::{self, Who};
use crate::intake::report::{ReportFields, Suggestion};
use crate::store::seal::Sealer;
use serde::Serialize;
use sqlx::Row;
use sqlx::{AnyConnection, AnyPool};

#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    #[error("no case {0}")]
    NotFound(String),
    #[error("a {from} case cannot become {to}")]
    Transition {
        from: &'static str,
        to: &'static str,
    },
    #[error("closing needs a reason: {0}")]
    Reason(String),
    #[error("duplicate of {0}, but no such case exists in the same organisation")]
    NoOriginal(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Seal(#[from] crate::store::seal::SealError),
}

/// Evidence as intake hands it over: already typed by content.
#[derive(Debug, Clone)]
pub struct NewEvidence {
    pub screenshot: bool,
    /// Already extracted (a nested archive opened with its parent).
    pub opened: bool,
    /// What archive inspection found (JSON), for zip and 7z attachments.
    pub archive: Option<String>,
    pub name: Option<String>,
    pub declared_type: String,
    pub sniffed_type: Option<String>,
    pub forwarded: bool,
    pub data: Vec<u8>,
}

/// Everything intake knows about a new case.
#[derive(Debug, Clone)]
pub struct NewCase {
    pub org: String,
    /// `new`, or `awaiting-password` when it holds encrypted archives.
    pub state: CaseState,
    pub reference_prefix: String,
    pub kind: CaseKind,
    pub subject: String,
    pub reporter_name: Option<String>,
    pub reporter_address: Option<String>,
    pub anonymous: bool,
    pub fields: ReportFields,
    pub suggestions: Vec<Suggestion>,
    pub tls_version: Option<String>,
    pub tls_cipher: Option<String>,
    pub authentication_results: Option<String>,
    pub message_id: Option<String>,
    pub received_at: i64,
    pub acknowledge_by: i64,
    pub feedback_by: i64,
    pub message_row: i64,
    pub evidence: Vec<NewEvidence>,
}

fn year_of(unix: i64) -> i16 {
    jiff::Timestamp::from_second(unix).map_or(1970, |t| t.to_zoned(jiff::tz::TimeZone::UTC).year())
}

/// Inserts the case with a fresh reference (`PREFIX-YEAR-NNNN`, per
/// organisation and year) inside the caller's transaction.
/// AAD for a sealed column of a case.
pub fn case_field(reference: &str, column: &str) -> String {
    format!("case:{reference}:{column}")
}

/// AAD for a case's sealed child rows (events, assets).
pub fn case_child(case_id: i64, table: &str) -> String {
    format!("case-{case_id}:{table}")
}

/// A fresh identity for an evidence object, bound into its sealing.
pub fn object_id() -> String {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 16];
    // Failure of the OS source would repeat ids, not weaken the seal (the
    // nonce is separate); fall back to the time.
    if ring::rand::SystemRandom::new().fill(&mut b).is_err() {
        b[..8].copy_from_slice(&jiff::Timestamp::now().as_nanosecond().to_le_bytes()[..8]);
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Stores one evidence object, sealed. Returns its row id.
#[allow(clippy::too_many_arguments)]
pub async fn insert_evidence(
    conn: &mut AnyConnection,
    sealer: &Sealer,
    case_id: i64,
    e: &NewEvidence,
    parent: Option<i64>,
    opened_at: Option<i64>,
) -> Result<i64, sqlx::Error> {
    let object = object_id();
    let aad = format!("evidence:{object}");
    let row = sqlx::query(
        "INSERT INTO case_evidence (case_id, kind, name, declared_type, sniffed_type, size, forwarded, data, archive,
             parent_id, opened_at, object_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
    )
    .bind(case_id)
    .bind(if e.screenshot { "screenshot" } else { "attachment" })
    .bind(sealer.seal_opt(&format!("{aad}:name"), e.name.as_deref()))
    .bind(&e.declared_type)
    .bind(&e.sniffed_type)
    .bind(e.data.len() as i64)
    .bind(i64::from(e.forwarded))
    .bind(sealer.seal(&aad, &e.data))
    .bind(&e.archive)
    .bind(parent)
    .bind(opened_at)
    .bind(&object)
    .persistent(false)
    .fetch_one(&mut *conn)
    .await?;
    row.try_get("id")
}

pub async fn insert(
    conn: &mut AnyConnection,
    sealer: &Sealer,
    c: &NewCase,
) -> Result<(i64, String), sqlx::Error> {
    let year = year_of(c.received_at);
    // A counter row per organisation and year: the upsert takes its row
    // lock, so concurrent workers (PostgreSQL) number cases without gaps
    // or clashes.
    let (n,): (i64,) = sqlx::query_as(
        "INSERT INTO case_counters (org, year, n) VALUES ($1, $2, 1)
         ON CONFLICT (org, year) DO UPDATE SET n = case_counters.n + 1 RETURNING n",
    )
    .bind(&c.org)
    .bind(i64::from(year))
    .fetch_one(&mut *conn)
    .await?;
    let reference = format!("{}-{year}-{n:04}", c.reference_prefix);
    let json = |v: &Vec<String>| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
    let f = &c.fields;
    let seal = |column: &str, v: Option<&str>| sealer.seal_opt(&case_field(&reference, column), v);
    let id = sqlx::query(
        "INSERT INTO cases (org, reference, kind, state, subject, reporter_name, reporter_address, anonymous,
             channel, contact, description, steps, impact, mitigation, language, cve_ids, cwe_ids,
             cvss_vector, cvss_score, cvss_severity, tls_version, tls_cipher, authentication_results,
             message_id, received_at, acknowledge_by, feedback_by, updated_at)
         VALUES ($1, $2, $3, $28, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27) RETURNING id",
    )
    // Not cached: through the Any driver a NULL first bound for a nullable
    // number would fix the prepared parameter type on PostgreSQL.
    .persistent(false)
    .bind(&c.org)
    .bind(&reference)
    .bind(c.kind.as_str())
    .bind(seal("subject", Some(&c.subject)))
    .bind(seal("reporter_name", c.reporter_name.as_deref()))
    .bind(seal("reporter_address", c.reporter_address.as_deref()))
    .bind(i64::from(c.anonymous))
    .bind(&f.channel)
    .bind(seal("contact", f.contact.as_deref()))
    .bind(seal("description", f.description.as_deref()))
    .bind(seal("steps", f.steps.as_deref()))
    .bind(seal("impact", f.impact.as_deref()))
    .bind(seal("mitigation", f.mitigation.as_deref()))
    .bind(f.language.map(|l| l.as_str()))
    .bind(json(&f.cve_ids))
    .bind(json(&f.cwe_ids))
    .bind(f.cvss.as_ref().map(|c| c.vector.clone()))
    .bind(f.cvss.as_ref().map(|c| c.score))
    .bind(f.cvss.as_ref().map(|c| c.severity.clone()))
    .bind(&c.tls_version)
    .bind(&c.tls_cipher)
    .bind(seal("authentication_results", c.authentication_results.as_deref()))
    .bind(seal("message_id", c.message_id.as_deref()))
    .bind(c.received_at)
    .bind(c.acknowledge_by)
    .bind(c.feedback_by)
    .bind(c.received_at)
    .bind(c.state.as_str())
    .fetch_one(&mut *conn)
    .await?
    .try_get::<i64, _>("id")?;
    for a in &f.assets {
        sqlx::query("INSERT INTO case_assets (case_id, value, in_scope) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(sealer.seal_text(&case_child(id, "asset"), &a.value))
            .bind(i64::from(a.in_scope))
            .execute(&mut *conn)
            .await?;
    }
    for s in &c.suggestions {
        sqlx::query("INSERT INTO case_suggestions (case_id, kind, name, label, matched) VALUES ($1, $2, $3, $4, $5)")
            .bind(id)
            .bind(&s.kind)
            .bind(&s.name)
            .bind(&s.label)
            .bind(&s.matched)
            .execute(&mut *conn)
            .await?;
    }
    for e in &c.evidence {
        insert_evidence(conn, sealer, id, e, None, None).await?;
    }
    let detail = match c.kind {
        CaseKind::Disclosure => "report received",
        CaseKind::Unflagged => "unflagged mail received; needs triage",
    };
    add_event(
        conn,
        sealer,
        id,
        c.received_at,
        "received",
        "intake",
        detail,
        Some(c.message_row),
    )
    .await?;
    Ok((id, reference))
}

#[allow(clippy::too_many_arguments)]
pub async fn add_event(
    conn: &mut AnyConnection,
    sealer: &Sealer,
    case_id: i64,
    at: i64,
    kind: &str,
    actor: &str,
    detail: &str,
    message_row: Option<i64>,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO case_events (case_id, at, kind, actor, detail, message_id) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(case_id)
        .bind(at)
        .bind(kind)
        .bind(actor)
        .bind(sealer.seal_text(&case_child(case_id, "event"), detail))
        .bind(message_row)
        .execute(&mut *conn)
        .await?;
    sqlx::query("UPDATE cases SET updated_at = $1 WHERE id = $2")
        .bind(at)
        .bind(case_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// An evidence row (without its content) as shown to analysts.
fn evidence_info(r: &sqlx::any::AnyRow, sealer: &Sealer) -> Result<EvidenceInfo, CaseError> {
    let object: String = r
        .try_get::<Option<String>, _>("object_id")?
        .unwrap_or_default();
    Ok(EvidenceInfo {
        id: r.try_get("id")?,
        name: sealer.open_opt(&format!("evidence:{object}:name"), r.try_get("name")?)?,
        object_id: object,
        parent_id: r.try_get("parent_id")?,
        archive: r
            .try_get::<Option<String>, _>("archive")?
            .and_then(|a| serde_json::from_str(&a).ok()),
        opened_at: r.try_get("opened_at")?,
        kind: r.try_get("kind")?,
        declared_type: r.try_get("declared_type")?,
        sniffed_type: r.try_get("sniffed_type")?,
        size: r.try_get("size")?,
        forwarded: r.try_get::<i64, _>("forwarded")? != 0,
    })
}

/// One evidence object of case `reference`, by its object id: what is
/// known of it, and its content, opened.
pub async fn evidence(
    pool: &AnyPool,
    sealer: &Sealer,
    reference: &str,
    object: &str,
) -> Result<(EvidenceInfo, Vec<u8>), CaseError> {
    let missing = || CaseError::NotFound(format!("{reference} evidence"));
    let r = sqlx::query(
        "SELECT e.id, e.kind, e.name, e.declared_type, e.sniffed_type, e.size, e.forwarded, e.parent_id,
                e.archive, e.opened_at, e.object_id, e.data
         FROM case_evidence e JOIN cases c ON c.id = e.case_id
         WHERE c.reference = $1 AND e.object_id = $2",
    )
    .bind(reference)
    .bind(object)
    .fetch_optional(pool)
    .await?
    .ok_or_else(missing)?;
    let data = sealer.open(
        &format!("evidence:{object}"),
        &r.try_get::<Vec<u8>, _>("data")?,
    )?;
    let info = evidence_info(&r, sealer)?;
    Ok((info, data))
}

/// Queues `text` to the reporter, threaded under their report, and records
/// it in the timeline. Returns the address it goes to.
pub async fn reply(
    conn: &mut AnyConnection,
    sealer: &Sealer,
    reference: &str,
    text: &str,
    hostname: &str,
    who: &Who<'_>,
    now: i64,
) -> Result<String, CaseError> {
    let begin = begin_write(conn);
    let mut tx = sqlx::Connection::begin_with(&mut *conn, begin).await?;
    let row = sqlx::query(
        "SELECT id, subject, reporter_address, message_id FROM cases WHERE reference = $1",
    )
    .bind(reference)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| CaseError::NotFound(reference.to_owned()))?;
    let id: i64 = row.try_get("id")?;
    let to = sealer
        .open_opt(
            &case_field(reference, "reporter_address"),
            row.try_get("reporter_address")?,
        )?
        .ok_or_else(|| CaseError::Reason("the reporter left no address to reply to".into()))?;
    let subject = sealer.open_text(
        &case_field(reference, "subject"),
        &row.try_get::<String, _>("subject")?,
    )?;
    let parent: Option<String> = sealer
        .open_opt(
            &case_field(reference, "message_id"),
            row.try_get("message_id")?,
        )?
        .map(|m| format!("<{}>", m.trim_matches(['<', '>'])));
    let quoted: String = subject
        .chars()
        .filter(|c| !c.is_control())
        .take(120)
        .collect();
    let subject = format!("Re: [{reference}] {quoted}");
    let message_id = format!("<{reference}.{}@{hostname}>", object_id());
    crate::outbound::enqueue_reply(
        &mut tx,
        sealer,
        &crate::outbound::Outgoing {
            kind: "reply",
            case_id: id,
            to: &to,
            subject: &subject,
            body: text,
            message_id: &message_id,
            in_reply_to: parent.as_deref(),
        },
        now,
    )
    .await?;
    add_event(&mut tx, sealer, id, now, "reply", who.actor, text, None).await?;
    audit::record(
        &mut tx,
        sealer,
        &who.entry("reply", reference, "reply queued to the reporter"),
    )
    .await?;
    tx.commit().await?;
    Ok(to)
}

/// The case id for a reference within one organisation.
pub async fn find(
    conn: &mut AnyConnection,
    org: &str,
    reference: &str,
) -> Result<Option<i64>, sqlx::Error> {
    let row: Option<(i64,)> =
        sqlx::query_as("SELECT id FROM cases WHERE org = $1 AND reference = $2")
            .bind(org)
            .bind(reference)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(row.map(|r| r.0))
}

/// One line of `cases list`.
#[derive(Debug, Clone, Serialize)]
pub struct CaseSummary {
    pub reference: String,
    pub org: String,
    pub kind: String,
    pub state: String,
    pub subject: String,
    pub received_at: i64,
    pub acknowledge_by: i64,
    pub feedback_by: i64,
    pub overdue: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub org: Option<String>,
    pub state: Option<String>,
    pub overdue: bool,
}

fn overdue(
    state: &str,
    acknowledged: bool,
    ack_by: i64,
    feedback_by: i64,
    paused: bool,
    now: i64,
) -> bool {
    let open = CaseState::parse(state).is_some_and(CaseState::is_open);
    open && ((!acknowledged && now > ack_by) || (!paused && now > feedback_by))
}

pub async fn list(
    pool: &AnyPool,
    sealer: &Sealer,
    filter: &Filter,
    now: i64,
) -> Result<Vec<CaseSummary>, CaseError> {
    let rows = sqlx::query(
        "SELECT reference, org, kind, state, subject, received_at, acknowledge_by, feedback_by,
                feedback_paused_at
         FROM cases WHERE ($1 IS NULL OR org = $1) AND ($2 IS NULL OR state = $2) ORDER BY id",
    )
    .bind(&filter.org)
    .bind(&filter.state)
    .fetch_all(pool)
    .await?;
    let mut out = Vec::new();
    for r in rows {
        let state: String = r.try_get("state")?;
        let ack_by: i64 = r.try_get("acknowledge_by")?;
        let feedback_by: i64 = r.try_get("feedback_by")?;
        // Any move out of "new" is the acknowledgement.
        let acknowledged = !matches!(state.as_str(), "new" | "awaiting-password");
        let is_overdue = overdue(
            &state,
            acknowledged,
            ack_by,
            feedback_by,
            r.try_get::<Option<i64>, _>("feedback_paused_at")?.is_some(),
            now,
        );
        if filter.overdue && !is_overdue {
            continue;
        }
        let reference: String = r.try_get("reference")?;
        let subject = sealer.open_text(
            &case_field(&reference, "subject"),
            &r.try_get::<String, _>("subject")?,
        )?;
        out.push(CaseSummary {
            reference,
            org: r.try_get("org")?,
            kind: r.try_get("kind")?,
            state,
            subject,
            received_at: r.try_get("received_at")?,
            acknowledge_by: ack_by,
            feedback_by,
            overdue: is_overdue,
        });
    }
    Ok(out)
}

#[derive(Debug, Clone, Serialize)]
pub struct EvidenceInfo {
    pub id: i64,
    /// 128 random bits: the object's name in URLs, not guessable.
    pub object_id: String,
    /// The archive it was extracted from, if any.
    pub parent_id: Option<i64>,
    /// For zip/7z: format, encryption, entries, problem; `opened_at` once
    /// unlocked (or refused with a reason).
    pub archive: Option<serde_json::Value>,
    pub opened_at: Option<i64>,
    pub kind: String,
    pub name: Option<String>,
    pub declared_type: String,
    pub sniffed_type: Option<String>,
    pub size: i64,
    pub forwarded: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub at: i64,
    pub kind: String,
    pub actor: String,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct AssetRow {
    pub value: String,
    pub in_scope: bool,
}

/// Everything `cases show` prints.
#[derive(Debug, Clone, Serialize)]
pub struct CaseDetail {
    #[serde(flatten)]
    pub summary: CaseSummary,
    pub close_reason: Option<String>,
    pub reporter_name: Option<String>,
    pub reporter_address: Option<String>,
    pub anonymous: bool,
    pub channel: Option<String>,
    pub contact: Option<String>,
    pub description: Option<String>,
    pub steps: Option<String>,
    pub impact: Option<String>,
    pub mitigation: Option<String>,
    pub language: Option<String>,
    pub cve_ids: Vec<String>,
    pub cwe_ids: Vec<String>,
    pub cvss_vector: Option<String>,
    pub cvss_score: Option<f64>,
    pub cvss_severity: Option<String>,
    pub tls_version: Option<String>,
    pub tls_cipher: Option<String>,
    pub authentication_results: Option<String>,
    pub feedback_paused: bool,
    pub breach_notify_by: Option<i64>,
    pub assets: Vec<AssetRow>,
    pub suggestions: Vec<Suggestion>,
    pub evidence: Vec<EvidenceInfo>,
    pub timeline: Vec<Event>,
}

pub async fn show(
    pool: &AnyPool,
    sealer: &Sealer,
    reference: &str,
    now: i64,
) -> Result<CaseDetail, CaseError> {
    let row = sqlx::query("SELECT * FROM cases WHERE reference = $1")
        .bind(reference)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| CaseError::NotFound(reference.to_owned()))?;
    let id: i64 = row.try_get("id")?;
    let state: String = row.try_get("state")?;
    let paused: Option<i64> = row.try_get("feedback_paused_at")?;
    let ack_by: i64 = row.try_get("acknowledge_by")?;
    let feedback_by: i64 = row.try_get("feedback_by")?;
    let list = |s: String| serde_json::from_str::<Vec<String>>(&s).unwrap_or_default();
    let field = |column: &str| -> Result<Option<String>, CaseError> {
        Ok(sealer.open_opt(&case_field(reference, column), row.try_get(column)?)?)
    };
    let assets =
        sqlx::query("SELECT value, in_scope FROM case_assets WHERE case_id = $1 ORDER BY id")
            .bind(id)
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| {
                Ok(AssetRow {
                    value: sealer
                        .open_text(&case_child(id, "asset"), &r.try_get::<String, _>("value")?)?,
                    in_scope: r.try_get::<i64, _>("in_scope")? != 0,
                })
            })
            .collect::<Result<_, CaseError>>()?;
    let suggestions = sqlx::query(
        "SELECT kind, name, label, matched FROM case_suggestions WHERE case_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| {
        Ok(Suggestion {
            kind: r.try_get("kind")?,
            name: r.try_get("name")?,
            label: r.try_get("label")?,
            matched: r.try_get("matched")?,
        })
    })
    .collect::<Result<_, sqlx::Error>>()?;
    let evidence = sqlx::query(
        "SELECT id, kind, name, declared_type, sniffed_type, size, forwarded, parent_id, archive, opened_at, object_id
         FROM case_evidence WHERE case_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| evidence_info(r, sealer))
    .collect::<Result<_, CaseError>>()?;
    let timeline: Vec<Event> = sqlx::query(
        "SELECT at, kind, actor, detail FROM case_events WHERE case_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| {
        Ok(Event {
            at: r.try_get("at")?,
            kind: r.try_get("kind")?,
            actor: r.try_get("actor")?,
            detail: sealer
                .open_text(&case_child(id, "event"), &r.try_get::<String, _>("detail")?)?,
        })
    })
    .collect::<Result<_, CaseError>>()?;
    let acknowledged = !matches!(state.as_str(), "new" | "awaiting-password");
    Ok(CaseDetail {
        summary: CaseSummary {
            reference: row.try_get("reference")?,
            org: row.try_get("org")?,
            kind: row.try_get("kind")?,
            overdue: overdue(
                &state,
                acknowledged,
                ack_by,
                feedback_by,
                paused.is_some(),
                now,
            ),
            state,
            subject: field("subject")?.unwrap_or_default(),
            received_at: row.try_get("received_at")?,
            acknowledge_by: ack_by,
            feedback_by,
        },
        close_reason: row.try_get("close_reason")?,
        reporter_name: field("reporter_name")?,
        reporter_address: field("reporter_address")?,
        anonymous: row.try_get::<i64, _>("anonymous")? != 0,
        channel: row.try_get("channel")?,
        contact: field("contact")?,
        description: field("description")?,
        steps: field("steps")?,
        impact: field("impact")?,
        mitigation: field("mitigation")?,
        language: row.try_get("language")?,
        cve_ids: list(row.try_get("cve_ids")?),
        cwe_ids: list(row.try_get("cwe_ids")?),
        cvss_vector: row.try_get("cvss_vector")?,
        cvss_score: row.try_get("cvss_score")?,
        cvss_severity: row.try_get("cvss_severity")?,
        tls_version: row.try_get("tls_version")?,
        tls_cipher: row.try_get("tls_cipher")?,
        authentication_results: field("authentication_results")?,
        feedback_paused: paused.is_some(),
        breach_notify_by: row.try_get("breach_notify_by")?,
        assets,
        suggestions,
        evidence,
        timeline,
    })
}

/// Moves a case to `next`, by the lifecycle rules. Closing needs a reason
/// (a duplicate names an existing case of the same organisation). Entering
/// "needs information" pauses the feedback clock; leaving it moves the
/// feedback deadline on by the time it was paused.
pub async fn transition(
    conn: &mut AnyConnection,
    sealer: &Sealer,
    reference: &str,
    next: CaseState,
    reason: Option<&str>,
    who: &Who<'_>,
    now: i64,
) -> Result<(), CaseError> {
    let begin = begin_write(conn);
    let mut tx = sqlx::Connection::begin_with(&mut *conn, begin).await?;
    let row: Option<(i64, String, String, Option<i64>, i64)> = sqlx::query_as(
        "SELECT id, org, state, feedback_paused_at, feedback_by FROM cases WHERE reference = $1",
    )
    .bind(reference)
    .fetch_optional(&mut *tx)
    .await?;
    let (id, org, state, paused_at, feedback_by) =
        row.ok_or_else(|| CaseError::NotFound(reference.to_owned()))?;
    let current = CaseState::parse(&state).unwrap_or(CaseState::New);
    if !current.may_become(next) {
        return Err(CaseError::Transition {
            from: current.as_str(),
            to: next.as_str(),
        });
    }
    let close_reason = if next == CaseState::Closed {
        let reason = CloseReason::parse(reason.unwrap_or("")).map_err(CaseError::Reason)?;
        if let CloseReason::Duplicate(original) = &reason
            && (original == reference || find(&mut tx, &org, original).await?.is_none())
        {
            return Err(CaseError::NoOriginal(original.clone()));
        }
        Some(reason.render())
    } else {
        None
    };
    let (paused_at, feedback_by) = match (current, next, paused_at) {
        (_, CaseState::NeedsInformation, _) => (Some(now), feedback_by),
        (CaseState::NeedsInformation, _, Some(p)) => (None, feedback_by + (now - p).max(0)),
        (_, _, p) => (p, feedback_by),
    };
    sqlx::query("UPDATE cases SET state = $1, close_reason = $2, feedback_paused_at = $3, feedback_by = $4 WHERE id = $5")
        .bind(next.as_str())
        .bind(&close_reason)
        .bind(paused_at)
        .bind(feedback_by)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let mut detail = format!("{} -> {}", current.as_str(), next.as_str());
    if let Some(r) = close_reason.as_deref().or(reason) {
        detail.push_str(&format!(" ({r})"));
    }
    add_event(
        &mut tx,
        sealer,
        id,
        now,
        "transition",
        who.actor,
        &detail,
        None,
    )
    .await?;
    let audit_detail = format!("{} -> {}", current.as_str(), next.as_str());
    audit::record(
        &mut tx,
        sealer,
        &who.entry("transition", reference, &audit_detail),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// An internal note on the timeline.
pub async fn note(
    conn: &mut AnyConnection,
    sealer: &Sealer,
    reference: &str,
    text: &str,
    who: &Who<'_>,
    now: i64,
) -> Result<(), CaseError> {
    let begin = begin_write(conn);
    let mut tx = sqlx::Connection::begin_with(&mut *conn, begin).await?;
    let row: Option<(i64,)> = sqlx::query_as("SELECT id FROM cases WHERE reference = $1")
        .bind(reference)
        .fetch_optional(&mut *tx)
        .await?;
    let (id,) = row.ok_or_else(|| CaseError::NotFound(reference.to_owned()))?;
    add_event(&mut tx, sealer, id, now, "note", who.actor, text, None).await?;
    audit::record(
        &mut tx,
        sealer,
        &who.entry("note", reference, "internal note added"),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Flags a case as a personal-data breach: the authority must be told by
/// `notify_by` (GDPR art. 33: 72 hours from awareness). Flagging twice
/// keeps the first deadline.
pub async fn flag_breach(
    conn: &mut AnyConnection,
    sealer: &Sealer,
    reference: &str,
    notify_by: i64,
    who: &Who<'_>,
    now: i64,
) -> Result<i64, CaseError> {
    let begin = begin_write(conn);
    let mut tx = sqlx::Connection::begin_with(&mut *conn, begin).await?;
    let row: Option<(i64, Option<i64>)> =
        sqlx::query_as("SELECT id, breach_notify_by FROM cases WHERE reference = $1")
            .bind(reference)
            .fetch_optional(&mut *tx)
            .await?;
    let (id, existing) = row.ok_or_else(|| CaseError::NotFound(reference.to_owned()))?;
    if let Some(due) = existing {
        return Ok(due);
    }
    sqlx::query("UPDATE cases SET breach_notify_by = $1 WHERE id = $2")
        .bind(notify_by)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    add_event(
        &mut tx,
        sealer,
        id,
        now,
        "breach",
        who.actor,
        "flagged as a personal-data breach; notify the authority",
        None,
    )
    .await?;
    audit::record(
        &mut tx,
        sealer,
        &who.entry("breach", reference, "flagged as a personal-data breach"),
    )
    .await?;
    tx.commit().await?;
    Ok(notify_by)
}

/// The organisation a case belongs to.
pub async fn org_of(pool: &AnyPool, reference: &str) -> Result<String, CaseError> {
    let row: Option<(String,)> = sqlx::query_as("SELECT org FROM cases WHERE reference = $1")
        .bind(reference)
        .fetch_optional(pool)
        .await?;
    row.map(|r| r.0)
        .ok_or_else(|| CaseError::NotFound(reference.to_owned()))
}

/// `BEGIN IMMEDIATE` on SQLite (take the write lock up front, so a read
/// never has to be upgraded), plain `BEGIN` on PostgreSQL.
pub fn begin_write(conn: &AnyConnection) -> &'static str {
    if conn.backend_name().eq_ignore_ascii_case("sqlite") {
        "BEGIN IMMEDIATE"
    } else {
        "BEGIN"
    }
}
