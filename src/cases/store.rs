//! Cases in the database: creating them from intake, reading them for the
//! CLI, and the lifecycle operations. Runtime `sqlx::query` only.

use super::{CaseKind, CaseState, CloseReason};
use crate::audit::{self, Who};
use crate::intake::archive::ArchiveInfo;
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
    /// What archive inspection found, for zip and 7z attachments.
    pub archive: Option<ArchiveInfo>,
    /// The follow-up in the conversation it came with, if not the report.
    pub conversation_id: Option<i64>,
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
    /// For an `unparsed` case: why intake could not parse it.
    pub unparsed_reason: Option<String>,
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

/// AAD for a sealed property of an evidence object.
fn evidence_field(object: &str, column: &str) -> String {
    format!("evidence:{object}:{column}")
}

/// Stores one evidence object, sealed: its content, name, types and
/// archive inspection (entry names are report content). Only whether it
/// is a locked archive stays clear, for the case's state. Returns its row
/// id.
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
    let archive = e
        .archive
        .as_ref()
        .and_then(|a| serde_json::to_string(a).ok());
    let locked = e.archive.as_ref().is_some_and(ArchiveInfo::is_encrypted) && opened_at.is_none();
    let row = sqlx::query(
        "INSERT INTO case_evidence (case_id, kind, name, declared_type, sniffed_type, size, forwarded, data, archive,
             parent_id, opened_at, object_id, archive_locked, conversation_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id",
    )
    .bind(case_id)
    .bind(if e.screenshot { "screenshot" } else { "attachment" })
    .bind(sealer.seal_opt(&format!("{aad}:name"), e.name.as_deref()))
    .bind(sealer.seal_text(&evidence_field(&object, "declared_type"), &e.declared_type))
    .bind(sealer.seal_opt(&evidence_field(&object, "sniffed_type"), e.sniffed_type.as_deref()))
    .bind(e.data.len() as i64)
    .bind(i64::from(e.forwarded))
    .bind(sealer.seal(&aad, &e.data))
    .bind(sealer.seal_opt(&evidence_field(&object, "archive"), archive.as_deref()))
    .bind(parent)
    .bind(opened_at)
    .bind(&object)
    .bind(i64::from(locked))
    .bind(e.conversation_id)
    .persistent(false)
    .fetch_one(&mut *conn)
    .await?;
    row.try_get("id")
}

/// The report-derived fields of a case, sealed: the text fields, channel,
/// language, CVE and CWE ids and the CVSS score.
struct SealedFields {
    channel: Option<String>,
    contact: Option<String>,
    description: Option<String>,
    steps: Option<String>,
    impact: Option<String>,
    mitigation: Option<String>,
    language: Option<String>,
    cve_ids: String,
    cwe_ids: String,
    cvss: Option<String>,
}

impl SealedFields {
    fn new(sealer: &Sealer, reference: &str, f: &ReportFields) -> SealedFields {
        let json = |v: &Vec<String>| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
        let seal =
            |column: &str, v: Option<&str>| sealer.seal_opt(&case_field(reference, column), v);
        let cvss = f.cvss.as_ref().and_then(|c| serde_json::to_string(c).ok());
        SealedFields {
            channel: seal("channel", f.channel.as_deref()),
            contact: seal("contact", f.contact.as_deref()),
            description: seal("description", f.description.as_deref()),
            steps: seal("steps", f.steps.as_deref()),
            impact: seal("impact", f.impact.as_deref()),
            mitigation: seal("mitigation", f.mitigation.as_deref()),
            language: seal("language", f.language.map(|l| l.as_str())),
            cve_ids: sealer.seal_text(&case_field(reference, "cve_ids"), &json(&f.cve_ids)),
            cwe_ids: sealer.seal_text(&case_field(reference, "cwe_ids"), &json(&f.cwe_ids)),
            cvss: seal("cvss", cvss.as_deref()),
        }
    }
}

/// Writes the report-derived fields of case `id`, sealed, and its assets.
pub(crate) async fn write_fields(
    conn: &mut AnyConnection,
    sealer: &Sealer,
    id: i64,
    reference: &str,
    f: &ReportFields,
) -> Result<(), sqlx::Error> {
    let v = SealedFields::new(sealer, reference, f);
    sqlx::query(
        "UPDATE cases SET channel = $1, contact = $2, description = $3, steps = $4, impact = $5,
             mitigation = $6, language = $7, cve_ids = $8, cwe_ids = $9, cvss = $10,
             cvss_vector = NULL, cvss_score = NULL, cvss_severity = NULL
         WHERE id = $11",
    )
    .bind(v.channel)
    .bind(v.contact)
    .bind(v.description)
    .bind(v.steps)
    .bind(v.impact)
    .bind(v.mitigation)
    .bind(v.language)
    .bind(v.cve_ids)
    .bind(v.cwe_ids)
    .bind(v.cvss)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    for a in &f.assets {
        insert_asset(conn, sealer, id, &a.value, a.in_scope).await?;
    }
    Ok(())
}

pub(crate) async fn insert_asset(
    conn: &mut AnyConnection,
    sealer: &Sealer,
    case_id: i64,
    value: &str,
    in_scope: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO case_assets (case_id, value, in_scope) VALUES ($1, $2, $3)")
        .bind(case_id)
        .bind(sealer.seal_text(&case_child(case_id, "asset"), value))
        .bind(i64::from(in_scope))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Suggestions are sealed whole: which class a report matched, and on
/// which phrase, is report content.
async fn insert_suggestions(
    conn: &mut AnyConnection,
    sealer: &Sealer,
    case_id: i64,
    suggestions: &[Suggestion],
) -> Result<(), sqlx::Error> {
    let aad = case_child(case_id, "suggestion");
    for s in suggestions {
        sqlx::query("INSERT INTO case_suggestions (case_id, kind, name, label, matched) VALUES ($1, $2, $3, $4, $5)")
            .bind(case_id)
            .bind(sealer.seal_text(&aad, &s.kind))
            .bind(sealer.seal_text(&aad, &s.name))
            .bind(sealer.seal_text(&aad, &s.label))
            .bind(sealer.seal_text(&aad, &s.matched))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Inserts the case with a fresh reference (`PREFIX-YEAR-NNNN`, per
/// organisation and year) inside the caller's transaction.
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
    let seal = |column: &str, v: Option<&str>| sealer.seal_opt(&case_field(&reference, column), v);
    let f = SealedFields::new(sealer, &reference, &c.fields);
    // Every bound number is non-null, so the statement can be cached.
    let id = sqlx::query(
        "INSERT INTO cases (org, reference, kind, state, subject, reporter_name, reporter_address, anonymous,
             tls_version, tls_cipher, authentication_results, message_id, received_at,
             acknowledge_by, feedback_by, updated_at, unparsed_reason,
             channel, contact, description, steps, impact, mitigation, language, cve_ids, cwe_ids, cvss)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
             $18, $19, $20, $21, $22, $23, $24, $25, $26, $27) RETURNING id",
    )
    .bind(&c.org)
    .bind(&reference)
    .bind(c.kind.as_str())
    .bind(c.state.as_str())
    .bind(seal("subject", Some(&c.subject)))
    .bind(seal("reporter_name", c.reporter_name.as_deref()))
    .bind(seal("reporter_address", c.reporter_address.as_deref()))
    .bind(i64::from(c.anonymous))
    .bind(&c.tls_version)
    .bind(&c.tls_cipher)
    .bind(seal("authentication_results", c.authentication_results.as_deref()))
    .bind(seal("message_id", c.message_id.as_deref()))
    .bind(c.received_at)
    .bind(c.acknowledge_by)
    .bind(c.feedback_by)
    .bind(c.received_at)
    .bind(&c.unparsed_reason)
    .bind(f.channel)
    .bind(f.contact)
    .bind(f.description)
    .bind(f.steps)
    .bind(f.impact)
    .bind(f.mitigation)
    .bind(f.language)
    .bind(f.cve_ids)
    .bind(f.cwe_ids)
    .bind(f.cvss)
    .fetch_one(&mut *conn)
    .await?
    .try_get::<i64, _>("id")?;
    for a in &c.fields.assets {
        insert_asset(conn, sealer, id, &a.value, a.in_scope).await?;
    }
    insert_suggestions(conn, sealer, id, &c.suggestions).await?;
    for e in &c.evidence {
        insert_evidence(conn, sealer, id, e, None, None).await?;
    }
    let detail = match c.kind {
        CaseKind::Disclosure => "report received".to_owned(),
        CaseKind::Unflagged => "unflagged mail received; needs triage".to_owned(),
        CaseKind::Unparsed => format!(
            "received, but could not be parsed: {}; the raw message is kept",
            c.unparsed_reason.as_deref().unwrap_or("unknown reason")
        ),
    };
    add_event(
        conn,
        sealer,
        id,
        c.received_at,
        "received",
        "intake",
        &detail,
        Some(c.message_row),
    )
    .await?;
    Ok((id, reference))
}

/// Fills an `unparsed` case from its message, parsed at last (a retry
/// with a larger budget): kind, subject, reporter, fields, suggestions and
/// evidence. The state is left as the analysts have it.
pub async fn refile(
    conn: &mut AnyConnection,
    sealer: &Sealer,
    id: i64,
    reference: &str,
    c: &NewCase,
    now: i64,
) -> Result<(), sqlx::Error> {
    let seal = |column: &str, v: Option<&str>| sealer.seal_opt(&case_field(reference, column), v);
    sqlx::query(
        "UPDATE cases SET kind = $1, subject = $2, reporter_name = $3, reporter_address = $4, anonymous = $5,
             authentication_results = $6, message_id = $7, unparsed_reason = NULL, updated_at = $8
         WHERE id = $9",
    )
    .persistent(false)
    .bind(c.kind.as_str())
    .bind(seal("subject", Some(&c.subject)))
    .bind(seal("reporter_name", c.reporter_name.as_deref()))
    .bind(seal("reporter_address", c.reporter_address.as_deref()))
    .bind(i64::from(c.anonymous))
    .bind(seal("authentication_results", c.authentication_results.as_deref()))
    .bind(seal("message_id", c.message_id.as_deref()))
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    write_fields(conn, sealer, id, reference, &c.fields).await?;
    insert_suggestions(conn, sealer, id, &c.suggestions).await?;
    for e in &c.evidence {
        insert_evidence(conn, sealer, id, e, None, None).await?;
    }
    add_event(
        conn,
        sealer,
        id,
        now,
        "parsed",
        "intake",
        &format!("parsed on retry; now a {} case", c.kind.as_str()),
        Some(c.message_row),
    )
    .await
}

/// A follow-up mail in a case's conversation.
#[derive(Debug, Clone)]
pub struct FollowUp {
    pub message_row: i64,
    pub at: i64,
    /// It carried one of our reply tokens and came from the reporter.
    pub from_reporter: bool,
    /// It carried one of our reply tokens (a Message-ID only we know).
    pub token: bool,
    pub sender: String,
    pub subject: String,
    pub text: String,
    pub tls_version: Option<String>,
}

/// Stores a follow-up (sealed) with its attachments, and a timeline entry.
/// Returns its id in the conversation.
pub async fn add_follow_up(
    conn: &mut AnyConnection,
    sealer: &Sealer,
    case_id: i64,
    f: &FollowUp,
    attachments: &[NewEvidence],
) -> Result<i64, sqlx::Error> {
    let aad = case_child(case_id, "conversation");
    let id: i64 = sqlx::query(
        "INSERT INTO case_messages (case_id, message_row, at, from_reporter, token, sender, subject, body, tls_version)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
    )
    .persistent(false)
    .bind(case_id)
    .bind(f.message_row)
    .bind(f.at)
    .bind(i64::from(f.from_reporter))
    .bind(i64::from(f.token))
    .bind(sealer.seal_text(&aad, &f.sender))
    .bind(sealer.seal_text(&aad, &f.subject))
    .bind(sealer.seal_text(&aad, &f.text))
    .bind(&f.tls_version)
    .fetch_one(&mut *conn)
    .await?
    .try_get("id")?;
    for e in attachments {
        let e = NewEvidence {
            conversation_id: Some(id),
            ..e.clone()
        };
        insert_evidence(conn, sealer, case_id, &e, None, None).await?;
    }
    let detail = if f.from_reporter {
        format!(
            "follow-up from the reporter ({} attachment(s))",
            attachments.len()
        )
    } else if f.token {
        "follow-up NOT FROM THE REPORTER: it answers our message, from another sender".to_owned()
    } else {
        "follow-up NOT FROM THE REPORTER: it only names the reference".to_owned()
    };
    add_event(
        conn,
        sealer,
        case_id,
        f.at,
        "correspondence",
        "intake",
        &detail,
        Some(f.message_row),
    )
    .await?;
    Ok(id)
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
        parent_id: r.try_get("parent_id")?,
        archive: sealer
            .open_opt(&evidence_field(&object, "archive"), r.try_get("archive")?)?
            .and_then(|a| serde_json::from_str(&a).ok()),
        opened_at: r.try_get("opened_at")?,
        kind: r.try_get("kind")?,
        declared_type: sealer.open_text(
            &evidence_field(&object, "declared_type"),
            &r.try_get::<String, _>("declared_type")?,
        )?,
        sniffed_type: sealer.open_opt(
            &evidence_field(&object, "sniffed_type"),
            r.try_get("sniffed_type")?,
        )?,
        size: r.try_get("size")?,
        forwarded: r.try_get::<i64, _>("forwarded")? != 0,
        conversation_id: r.try_get("conversation_id")?,
        object_id: object,
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
                e.archive, e.opened_at, e.object_id, e.conversation_id, e.data
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
    /// The follow-up it came with (`conversation[].id`), if not the report.
    pub conversation_id: Option<i64>,
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
    /// For an `unparsed` case: why intake could not parse its message.
    pub unparsed_reason: Option<String>,
    /// Follow-ups after the report, oldest first.
    pub conversation: Vec<ConversationEntry>,
}

/// One follow-up mail of a case's conversation.
#[derive(Debug, Clone, Serialize)]
pub struct ConversationEntry {
    pub id: i64,
    pub at: i64,
    /// It answered one of our messages (a reply token only we and the
    /// recipient know) and came from the case's reporter. Anything else is
    /// marked "not from the reporter" and never changes the case's state.
    pub from_reporter: bool,
    /// It carried one of our reply tokens.
    pub token: bool,
    pub sender: String,
    pub subject: String,
    /// The full text, as received; shown escaped, never rendered.
    pub text: String,
    pub tls_version: Option<String>,
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
        let aad = case_child(id, "suggestion");
        let open = |c: &str| -> Result<String, CaseError> {
            Ok(sealer.open_text(&aad, &r.try_get::<String, _>(c)?)?)
        };
        Ok(Suggestion {
            kind: open("kind")?,
            name: open("name")?,
            label: open("label")?,
            matched: open("matched")?,
        })
    })
    .collect::<Result<_, CaseError>>()?;
    let evidence = sqlx::query(
        "SELECT id, kind, name, declared_type, sniffed_type, size, forwarded, parent_id, archive, opened_at,
                object_id, conversation_id
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
    let conversation = sqlx::query(
        "SELECT id, at, from_reporter, token, sender, subject, body, tls_version
         FROM case_messages WHERE case_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| {
        let aad = case_child(id, "conversation");
        let open = |c: &str| -> Result<String, CaseError> {
            Ok(sealer.open_text(&aad, &r.try_get::<String, _>(c)?)?)
        };
        Ok(ConversationEntry {
            id: r.try_get("id")?,
            at: r.try_get("at")?,
            from_reporter: r.try_get::<i64, _>("from_reporter")? != 0,
            token: r.try_get::<i64, _>("token")? != 0,
            sender: open("sender")?,
            subject: open("subject")?,
            text: open("body")?,
            tls_version: r.try_get("tls_version")?,
        })
    })
    .collect::<Result<_, CaseError>>()?;
    let f = open_fields(&row, sealer, reference)?;
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
        channel: f.channel,
        contact: f.contact,
        description: f.description,
        steps: f.steps,
        impact: f.impact,
        mitigation: f.mitigation,
        language: f.language.map(|l| l.as_str().to_owned()),
        cve_ids: f.cve_ids,
        cwe_ids: f.cwe_ids,
        cvss_vector: f.cvss.as_ref().map(|c| c.vector.clone()),
        cvss_score: f.cvss.as_ref().map(|c| c.score),
        cvss_severity: f.cvss.map(|c| c.severity),
        tls_version: row.try_get("tls_version")?,
        tls_cipher: row.try_get("tls_cipher")?,
        authentication_results: field("authentication_results")?,
        feedback_paused: paused.is_some(),
        breach_notify_by: row.try_get("breach_notify_by")?,
        assets,
        suggestions,
        evidence,
        timeline,
        unparsed_reason: row.try_get("unparsed_reason")?,
        conversation,
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
    transition_in(&mut tx, sealer, reference, next, reason, who, now).await?;
    tx.commit().await?;
    Ok(())
}

/// `transition` inside the caller's write transaction.
pub async fn transition_in(
    tx: &mut AnyConnection,
    sealer: &Sealer,
    reference: &str,
    next: CaseState,
    reason: Option<&str>,
    who: &Who<'_>,
    now: i64,
) -> Result<(), CaseError> {
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
            && (original == reference || find(tx, &org, original).await?.is_none())
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
    add_event(tx, sealer, id, now, "transition", who.actor, &detail, None).await?;
    let audit_detail = format!("{} -> {}", current.as_str(), next.as_str());
    audit::record(
        tx,
        sealer,
        &who.entry("transition", reference, &audit_detail),
    )
    .await?;
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

/// Marks an archive opened (or refused with `problem`, kept beside its
/// inspection record): it no longer holds the case.
pub async fn mark_opened(
    conn: &mut AnyConnection,
    sealer: &Sealer,
    id: i64,
    object: &str,
    now: i64,
    problem: Option<&str>,
) -> Result<(), CaseError> {
    let aad = evidence_field(object, "archive");
    let (stored,): (Option<String>,) =
        sqlx::query_as("SELECT archive FROM case_evidence WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *conn)
            .await?;
    let mut info: serde_json::Value = sealer
        .open_opt(&aad, stored)?
        .and_then(|a| serde_json::from_str(&a).ok())
        .unwrap_or_default();
    if let Some(problem) = problem {
        info["refused"] = serde_json::Value::String(problem.to_owned());
    }
    sqlx::query(
        "UPDATE case_evidence SET opened_at = $1, archive_locked = 0, archive = $2 WHERE id = $3",
    )
    .bind(now)
    .bind(sealer.seal_text(&aad, &info.to_string()))
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The report-derived fields of the case in `row`, opened (assets aside):
/// the one reading of what `SealedFields` writes.
fn open_fields(
    row: &sqlx::any::AnyRow,
    sealer: &Sealer,
    reference: &str,
) -> Result<ReportFields, CaseError> {
    let field = |column: &str| -> Result<Option<String>, CaseError> {
        Ok(sealer.open_opt(&case_field(reference, column), row.try_get(column)?)?)
    };
    let ids = |column: &str| -> Result<Vec<String>, CaseError> {
        Ok(field(column)?
            .and_then(|v| serde_json::from_str(&v).ok())
            .unwrap_or_default())
    };
    Ok(ReportFields {
        description: field("description")?,
        steps: field("steps")?,
        impact: field("impact")?,
        mitigation: field("mitigation")?,
        contact: field("contact")?,
        channel: field("channel")?,
        cve_ids: ids("cve_ids")?,
        cwe_ids: ids("cwe_ids")?,
        cvss: field("cvss")?.and_then(|c| serde_json::from_str(&c).ok()),
        assets: Vec::new(),
        language: field("language")?.and_then(|l| crate::intake::report::Language::parse(&l)),
    })
}

/// Fills the fields of a case that are still empty from `found` (report
/// text found inside an archive), sealed like those intake writes; adds
/// ids and assets not yet known. Returns which were filled.
pub async fn fill_empty_fields(
    conn: &mut AnyConnection,
    sealer: &Sealer,
    case_id: i64,
    reference: &str,
    found: &ReportFields,
) -> Result<Vec<&'static str>, CaseError> {
    let row = sqlx::query(
        "SELECT description, steps, impact, mitigation, contact, channel, language, cvss, cve_ids, cwe_ids
         FROM cases WHERE id = $1",
    )
    .bind(case_id)
    .fetch_one(&mut *conn)
    .await?;
    let mut merged = open_fields(&row, sealer, reference)?;
    let mut filled = Vec::new();
    for (name, slot, value) in [
        ("description", &mut merged.description, &found.description),
        ("steps", &mut merged.steps, &found.steps),
        ("impact", &mut merged.impact, &found.impact),
        ("mitigation", &mut merged.mitigation, &found.mitigation),
        ("contact", &mut merged.contact, &found.contact),
        ("channel", &mut merged.channel, &found.channel),
    ] {
        if slot.is_none() && value.is_some() {
            slot.clone_from(value);
            filled.push(name);
        }
    }
    if merged.cvss.is_none() && found.cvss.is_some() {
        merged.cvss.clone_from(&found.cvss);
        filled.push("cvss");
    }
    if merged.language.is_none() {
        merged.language = found.language;
    }
    for (name, list, more) in [
        ("cve_ids", &mut merged.cve_ids, &found.cve_ids),
        ("cwe_ids", &mut merged.cwe_ids, &found.cwe_ids),
    ] {
        let before = list.len();
        for id in more {
            if !list.contains(id) {
                list.push(id.clone());
            }
        }
        if list.len() > before {
            filled.push(name);
        }
    }
    let aad = case_child(case_id, "asset");
    let existing: Vec<(String,)> =
        sqlx::query_as("SELECT value FROM case_assets WHERE case_id = $1")
            .bind(case_id)
            .fetch_all(&mut *conn)
            .await?;
    let existing: Vec<String> = existing
        .into_iter()
        .map(|(v,)| sealer.open_text(&aad, &v))
        .collect::<Result<_, _>>()?;
    merged.assets = found
        .assets
        .iter()
        .filter(|a| !existing.contains(&a.value))
        .cloned()
        .collect();
    if !merged.assets.is_empty() {
        filled.push("assets");
    }
    write_fields(conn, sealer, case_id, reference, &merged).await?;
    Ok(filled)
}
