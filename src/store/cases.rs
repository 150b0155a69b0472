//! The cases repository: case rows, their sealed fields, assets,
//! suggestions, evidence, timeline and conversation. It persists what the
//! cases service decided and reads it back; it holds no rule of its own.

use super::seal::{Label, Sealer};
use super::{StoreError, WriteTx};
use crate::model::archive::ArchiveInfo;
use crate::model::case::{CaseKind, CaseState, EventKind};
use crate::model::report::{Language, ReportFields, Suggestion};
use serde::Serialize;
use sqlx::AnyPool;
use sqlx::Row;

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
pub fn case_field<'a>(reference: &'a str, column: &'a str) -> Label<'a> {
    Label::CaseField(reference, column)
}

/// AAD for a case's sealed child rows (events, assets).
pub fn case_child(case_id: i64, table: &str) -> Label<'_> {
    Label::CaseChild(case_id, table)
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
    hex::encode(b)
}

/// AAD for a sealed property of an evidence object.
fn evidence_field<'a>(object: &'a str, column: &'a str) -> Label<'a> {
    Label::EvidenceField(object, column)
}

/// Stores one evidence object, sealed: its content, name, types and
/// archive inspection (entry names are report content). Only whether it
/// is a locked archive stays clear, for the case's state. Returns its row
/// id.
pub async fn insert_evidence(
    tx: &mut WriteTx<'_>,
    sealer: &Sealer,
    case_id: i64,
    e: &NewEvidence,
    parent: Option<i64>,
    opened_at: Option<i64>,
) -> Result<i64, StoreError> {
    let object = object_id();
    let aad = Label::Evidence(&object);
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
    .bind(sealer.seal_opt(evidence_field(&object, "name"), e.name.as_deref()))
    .bind(sealer.seal_text(evidence_field(&object, "declared_type"), &e.declared_type))
    .bind(sealer.seal_opt(evidence_field(&object, "sniffed_type"), e.sniffed_type.as_deref()))
    .bind(e.data.len() as i64)
    .bind(i64::from(e.forwarded))
    .bind(sealer.seal(aad, &e.data))
    .bind(sealer.seal_opt(evidence_field(&object, "archive"), archive.as_deref()))
    .bind(parent)
    .bind(opened_at)
    .bind(&object)
    .bind(i64::from(locked))
    .bind(e.conversation_id)
    .persistent(false)
    .fetch_one(tx.conn())
    .await?;
    Ok(row.try_get("id")?)
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
            |column: &str, v: Option<&str>| sealer.seal_opt(case_field(reference, column), v);
        let cvss = f.cvss.as_ref().and_then(|c| serde_json::to_string(c).ok());
        SealedFields {
            channel: seal("channel", f.channel.as_deref()),
            contact: seal("contact", f.contact.as_deref()),
            description: seal("description", f.description.as_deref()),
            steps: seal("steps", f.steps.as_deref()),
            impact: seal("impact", f.impact.as_deref()),
            mitigation: seal("mitigation", f.mitigation.as_deref()),
            language: seal("language", f.language.map(|l| l.as_str())),
            cve_ids: sealer.seal_text(case_field(reference, "cve_ids"), &json(&f.cve_ids)),
            cwe_ids: sealer.seal_text(case_field(reference, "cwe_ids"), &json(&f.cwe_ids)),
            cvss: seal("cvss", cvss.as_deref()),
        }
    }
}

/// Writes the report-derived fields of case `id`, sealed, and its assets.
pub(crate) async fn write_fields(
    tx: &mut WriteTx<'_>,
    sealer: &Sealer,
    id: i64,
    reference: &str,
    f: &ReportFields,
) -> Result<(), StoreError> {
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
    .execute(tx.conn())
    .await?;
    for a in &f.assets {
        insert_asset(tx, sealer, id, &a.value, a.in_scope).await?;
    }
    Ok(())
}

pub(crate) async fn insert_asset(
    tx: &mut WriteTx<'_>,
    sealer: &Sealer,
    case_id: i64,
    value: &str,
    in_scope: bool,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO case_assets (case_id, value, in_scope) VALUES ($1, $2, $3)")
        .bind(case_id)
        .bind(sealer.seal_text(case_child(case_id, "asset"), value))
        .bind(i64::from(in_scope))
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Suggestions are sealed whole: which class a report matched, and on
/// which phrase, is report content.
async fn insert_suggestions(
    tx: &mut WriteTx<'_>,
    sealer: &Sealer,
    case_id: i64,
    suggestions: &[Suggestion],
) -> Result<(), StoreError> {
    let aad = case_child(case_id, "suggestion");
    for s in suggestions {
        sqlx::query("INSERT INTO case_suggestions (case_id, kind, name, label, matched) VALUES ($1, $2, $3, $4, $5)")
            .bind(case_id)
            .bind(sealer.seal_text(aad, &s.kind))
            .bind(sealer.seal_text(aad, &s.name))
            .bind(sealer.seal_text(aad, &s.label))
            .bind(sealer.seal_text(aad, &s.matched))
            .execute(tx.conn())
            .await?;
    }
    Ok(())
}

/// Inserts the case with a fresh reference (`PREFIX-YEAR-NNNN`, per
/// organisation and year) inside the caller's transaction.
pub async fn insert(
    tx: &mut WriteTx<'_>,
    sealer: &Sealer,
    c: &NewCase,
) -> Result<(i64, String), StoreError> {
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
    .fetch_one(tx.conn())
    .await?;
    let reference = format!("{}-{year}-{n:04}", c.reference_prefix);
    let seal = |column: &str, v: Option<&str>| sealer.seal_opt(case_field(&reference, column), v);
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
    .fetch_one(tx.conn())
    .await?
    .try_get::<i64, _>("id")?;
    for a in &c.fields.assets {
        insert_asset(tx, sealer, id, &a.value, a.in_scope).await?;
    }
    insert_suggestions(tx, sealer, id, &c.suggestions).await?;
    for e in &c.evidence {
        insert_evidence(tx, sealer, id, e, None, None).await?;
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
        tx,
        sealer,
        id,
        c.received_at,
        EventKind::Received,
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
    tx: &mut WriteTx<'_>,
    sealer: &Sealer,
    id: i64,
    reference: &str,
    c: &NewCase,
    now: i64,
) -> Result<(), StoreError> {
    let seal = |column: &str, v: Option<&str>| sealer.seal_opt(case_field(reference, column), v);
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
    .execute(tx.conn())
    .await?;
    write_fields(tx, sealer, id, reference, &c.fields).await?;
    insert_suggestions(tx, sealer, id, &c.suggestions).await?;
    for e in &c.evidence {
        insert_evidence(tx, sealer, id, e, None, None).await?;
    }
    add_event(
        tx,
        sealer,
        id,
        now,
        EventKind::Parsed,
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
    tx: &mut WriteTx<'_>,
    sealer: &Sealer,
    case_id: i64,
    f: &FollowUp,
    attachments: &[NewEvidence],
) -> Result<i64, StoreError> {
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
    .bind(sealer.seal_text(aad, &f.sender))
    .bind(sealer.seal_text(aad, &f.subject))
    .bind(sealer.seal_text(aad, &f.text))
    .bind(&f.tls_version)
    .fetch_one(tx.conn())
    .await?
    .try_get("id")?;
    for e in attachments {
        let e = NewEvidence {
            conversation_id: Some(id),
            ..e.clone()
        };
        insert_evidence(tx, sealer, case_id, &e, None, None).await?;
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
        tx,
        sealer,
        case_id,
        f.at,
        EventKind::Correspondence,
        "intake",
        &detail,
        Some(f.message_row),
    )
    .await?;
    Ok(id)
}

#[allow(clippy::too_many_arguments)]
pub async fn add_event(
    tx: &mut WriteTx<'_>,
    sealer: &Sealer,
    case_id: i64,
    at: i64,
    kind: EventKind,
    actor: &str,
    detail: &str,
    message_row: Option<i64>,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO case_events (case_id, at, kind, actor, detail, message_id) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(case_id)
        .bind(at)
        .bind(kind.as_str())
        .bind(actor)
        .bind(sealer.seal_text(case_child(case_id, "event"), detail))
        .bind(message_row)
        .execute(tx.conn())
        .await?;
    sqlx::query("UPDATE cases SET updated_at = $1 WHERE id = $2")
        .bind(at)
        .bind(case_id)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// An evidence row (without its content) as shown to analysts.
fn evidence_info(r: &sqlx::any::AnyRow, sealer: &Sealer) -> Result<EvidenceInfo, StoreError> {
    let object: String = r
        .try_get::<Option<String>, _>("object_id")?
        .unwrap_or_default();
    Ok(EvidenceInfo {
        id: r.try_get("id")?,
        name: sealer.open_opt(evidence_field(&object, "name"), r.try_get("name")?)?,
        parent_id: r.try_get("parent_id")?,
        archive: sealer
            .open_opt(evidence_field(&object, "archive"), r.try_get("archive")?)?
            .and_then(|a| serde_json::from_str(&a).ok()),
        opened_at: r.try_get("opened_at")?,
        kind: r.try_get("kind")?,
        declared_type: sealer.open_text(
            evidence_field(&object, "declared_type"),
            &r.try_get::<String, _>("declared_type")?,
        )?,
        sniffed_type: sealer.open_opt(
            evidence_field(&object, "sniffed_type"),
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
    case_id: i64,
    object: &str,
) -> Result<Option<(EvidenceInfo, Vec<u8>)>, StoreError> {
    let Some(r) = sqlx::query(
        "SELECT id, kind, name, declared_type, sniffed_type, size, forwarded, parent_id,
                archive, opened_at, object_id, conversation_id, data
         FROM case_evidence WHERE case_id = $1 AND object_id = $2",
    )
    .bind(case_id)
    .bind(object)
    .fetch_optional(pool)
    .await?
    else {
        return Ok(None);
    };
    let data = sealer.open(Label::Evidence(object), &r.try_get::<Vec<u8>, _>("data")?)?;
    let info = evidence_info(&r, sealer)?;
    Ok(Some((info, data)))
}

/// The case id for a reference within one organisation.
pub async fn find(
    tx: &mut WriteTx<'_>,
    org: &str,
    reference: &str,
) -> Result<Option<i64>, StoreError> {
    let row: Option<(i64,)> =
        sqlx::query_as("SELECT id FROM cases WHERE org = $1 AND reference = $2")
            .bind(org)
            .bind(reference)
            .fetch_optional(tx.conn())
            .await?;
    Ok(row.map(|r| r.0))
}

/// One line of `cases list`.
#[derive(Debug, Clone, Serialize)]
pub struct CaseSummary {
    pub reference: String,
    pub org: String,
    pub kind: CaseKind,
    pub state: CaseState,
    pub subject: String,
    pub received_at: i64,
    pub acknowledge_by: i64,
    pub feedback_by: i64,
    pub overdue: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub org: Option<String>,
    pub state: Option<CaseState>,
    pub kind: Option<CaseKind>,
    pub overdue: bool,
}

fn overdue(state: CaseState, ack_by: i64, feedback_by: i64, paused: bool, now: i64) -> bool {
    state.is_open() && ((!state.acknowledged() && now > ack_by) || (!paused && now > feedback_by))
}

fn kind_of(name: &str) -> Result<CaseKind, StoreError> {
    CaseKind::parse(name).ok_or_else(|| StoreError::Corrupt(format!("unknown case kind {name:?}")))
}

/// The cases matching `filter` whose organisation `visible` accepts,
/// oldest first. Only those rows' subjects are opened.
pub async fn list(
    pool: &AnyPool,
    sealer: &Sealer,
    filter: &Filter,
    visible: &(dyn Fn(&str) -> bool + Sync),
    now: i64,
) -> Result<Vec<CaseSummary>, StoreError> {
    let rows = sqlx::query(
        "SELECT reference, org, kind, state, subject, received_at, acknowledge_by, feedback_by,
                feedback_paused_at
         FROM cases WHERE ($1 IS NULL OR org = $1) AND ($2 IS NULL OR state = $2)
             AND ($3 IS NULL OR kind = $3) ORDER BY id",
    )
    .bind(&filter.org)
    .bind(filter.state.map(CaseState::as_str))
    .bind(filter.kind.map(CaseKind::as_str))
    .fetch_all(pool)
    .await?;
    let mut out = Vec::new();
    for r in rows {
        let org: String = r.try_get("org")?;
        if !visible(&org) {
            continue;
        }
        let state = state_of(&r.try_get::<String, _>("state")?)?;
        let ack_by: i64 = r.try_get("acknowledge_by")?;
        let feedback_by: i64 = r.try_get("feedback_by")?;
        let paused = r.try_get::<Option<i64>, _>("feedback_paused_at")?.is_some();
        let is_overdue = overdue(state, ack_by, feedback_by, paused, now);
        if filter.overdue && !is_overdue {
            continue;
        }
        let reference: String = r.try_get("reference")?;
        let subject = sealer.open_text(
            case_field(&reference, "subject"),
            &r.try_get::<String, _>("subject")?,
        )?;
        out.push(CaseSummary {
            reference,
            org,
            kind: kind_of(&r.try_get::<String, _>("kind")?)?,
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
    pub kind: EventKind,
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

/// Everything about case `id`, opened; None if there is no such case.
pub async fn show(
    pool: &AnyPool,
    sealer: &Sealer,
    id: i64,
    now: i64,
) -> Result<Option<CaseDetail>, StoreError> {
    let Some(row) = sqlx::query("SELECT * FROM cases WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?
    else {
        return Ok(None);
    };
    let reference: String = row.try_get("reference")?;
    let reference = reference.as_str();
    let state = state_of(&row.try_get::<String, _>("state")?)?;
    let paused: Option<i64> = row.try_get("feedback_paused_at")?;
    let ack_by: i64 = row.try_get("acknowledge_by")?;
    let feedback_by: i64 = row.try_get("feedback_by")?;
    let field = |column: &str| -> Result<Option<String>, StoreError> {
        Ok(sealer.open_opt(case_field(reference, column), row.try_get(column)?)?)
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
                        .open_text(case_child(id, "asset"), &r.try_get::<String, _>("value")?)?,
                    in_scope: r.try_get::<i64, _>("in_scope")? != 0,
                })
            })
            .collect::<Result<_, StoreError>>()?;
    let suggestions = sqlx::query(
        "SELECT kind, name, label, matched FROM case_suggestions WHERE case_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| {
        let aad = case_child(id, "suggestion");
        let open = |c: &str| -> Result<String, StoreError> {
            Ok(sealer.open_text(aad, &r.try_get::<String, _>(c)?)?)
        };
        Ok(Suggestion {
            kind: open("kind")?,
            name: open("name")?,
            label: open("label")?,
            matched: open("matched")?,
        })
    })
    .collect::<Result<_, StoreError>>()?;
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
    .collect::<Result<_, StoreError>>()?;
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
            kind: EventKind::parse(&r.try_get::<String, _>("kind")?)
                .ok_or_else(|| StoreError::Corrupt("a timeline entry of an unknown kind".into()))?,
            actor: r.try_get("actor")?,
            detail: sealer
                .open_text(case_child(id, "event"), &r.try_get::<String, _>("detail")?)?,
        })
    })
    .collect::<Result<_, StoreError>>()?;
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
        let open = |c: &str| -> Result<String, StoreError> {
            Ok(sealer.open_text(aad, &r.try_get::<String, _>(c)?)?)
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
    .collect::<Result<_, StoreError>>()?;
    let f = open_fields(&row, sealer, reference)?;
    Ok(Some(CaseDetail {
        summary: CaseSummary {
            reference: reference.to_owned(),
            org: row.try_get("org")?,
            kind: kind_of(&row.try_get::<String, _>("kind")?)?,
            overdue: overdue(state, ack_by, feedback_by, paused.is_some(), now),
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
    }))
}

/// A case's id and organisation, by reference.
pub async fn locate(pool: &AnyPool, reference: &str) -> Result<Option<(i64, String)>, StoreError> {
    Ok(
        sqlx::query_as("SELECT id, org FROM cases WHERE reference = $1")
            .bind(reference)
            .fetch_optional(pool)
            .await?,
    )
}

/// Where a case stands in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifecycle {
    pub state: CaseState,
    /// Set while the feedback clock is paused ("needs information").
    pub paused_at: Option<i64>,
    pub feedback_by: i64,
}

fn state_of(name: &str) -> Result<CaseState, StoreError> {
    CaseState::parse(name)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown case state {name:?}")))
}

pub async fn lifecycle(tx: &mut WriteTx<'_>, id: i64) -> Result<Lifecycle, StoreError> {
    let (state, paused_at, feedback_by): (String, Option<i64>, i64) =
        sqlx::query_as("SELECT state, feedback_paused_at, feedback_by FROM cases WHERE id = $1")
            .bind(id)
            .fetch_one(tx.conn())
            .await?;
    Ok(Lifecycle {
        state: state_of(&state)?,
        paused_at,
        feedback_by,
    })
}

pub async fn set_lifecycle(
    tx: &mut WriteTx<'_>,
    id: i64,
    l: &Lifecycle,
    close_reason: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE cases SET state = $1, close_reason = $2, feedback_paused_at = $3, feedback_by = $4 WHERE id = $5")
        .bind(l.state.as_str())
        .bind(close_reason)
        .bind(l.paused_at)
        .bind(l.feedback_by)
        .bind(id)
        .execute(tx.conn())
        .await?;
    Ok(())
}

pub async fn breach_notify_by(tx: &mut WriteTx<'_>, id: i64) -> Result<Option<i64>, StoreError> {
    let (due,): (Option<i64>,) = sqlx::query_as("SELECT breach_notify_by FROM cases WHERE id = $1")
        .bind(id)
        .fetch_one(tx.conn())
        .await?;
    Ok(due)
}

pub async fn set_breach_notify_by(
    tx: &mut WriteTx<'_>,
    id: i64,
    due: i64,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE cases SET breach_notify_by = $1 WHERE id = $2")
        .bind(due)
        .bind(id)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// What a reply to the reporter is built from, opened.
pub struct ReplyFacts {
    pub subject: String,
    pub reporter_address: Option<String>,
    /// The report's Message-ID, to thread under.
    pub message_id: Option<String>,
}

pub async fn reply_facts(
    tx: &mut WriteTx<'_>,
    sealer: &Sealer,
    id: i64,
    reference: &str,
) -> Result<ReplyFacts, StoreError> {
    let row = sqlx::query("SELECT subject, reporter_address, message_id FROM cases WHERE id = $1")
        .bind(id)
        .fetch_one(tx.conn())
        .await?;
    let field = |column: &str| -> Result<Option<String>, StoreError> {
        Ok(sealer.open_opt(case_field(reference, column), row.try_get(column)?)?)
    };
    Ok(ReplyFacts {
        subject: field("subject")?.unwrap_or_default(),
        reporter_address: field("reporter_address")?,
        message_id: field("message_id")?,
    })
}

/// Marks an archive opened (or refused with `problem`, kept beside its
/// inspection record): it no longer holds the case.
pub async fn mark_opened(
    tx: &mut WriteTx<'_>,
    sealer: &Sealer,
    id: i64,
    object: &str,
    now: i64,
    problem: Option<&str>,
) -> Result<(), StoreError> {
    let aad = evidence_field(object, "archive");
    let (stored,): (Option<String>,) =
        sqlx::query_as("SELECT archive FROM case_evidence WHERE id = $1")
            .bind(id)
            .fetch_one(tx.conn())
            .await?;
    let mut info: serde_json::Value = sealer
        .open_opt(aad, stored)?
        .and_then(|a| serde_json::from_str(&a).ok())
        .unwrap_or_default();
    if let Some(problem) = problem {
        info["refused"] = serde_json::Value::String(problem.to_owned());
    }
    sqlx::query(
        "UPDATE case_evidence SET opened_at = $1, archive_locked = 0, archive = $2 WHERE id = $3",
    )
    .bind(now)
    .bind(sealer.seal_text(aad, &info.to_string()))
    .bind(id)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// The report-derived fields of the case in `row`, opened (assets aside):
/// the one reading of what `SealedFields` writes.
fn open_fields(
    row: &sqlx::any::AnyRow,
    sealer: &Sealer,
    reference: &str,
) -> Result<ReportFields, StoreError> {
    let field = |column: &str| -> Result<Option<String>, StoreError> {
        Ok(sealer.open_opt(case_field(reference, column), row.try_get(column)?)?)
    };
    let ids = |column: &str| -> Result<Vec<String>, StoreError> {
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
        language: field("language")?.and_then(|l| Language::parse(&l)),
    })
}

/// Fills the fields of a case that are still empty from `found` (report
/// text found inside an archive), sealed like those intake writes; adds
/// ids and assets not yet known. Returns which were filled.
pub async fn fill_empty_fields(
    tx: &mut WriteTx<'_>,
    sealer: &Sealer,
    case_id: i64,
    reference: &str,
    found: &ReportFields,
) -> Result<Vec<&'static str>, StoreError> {
    let row = sqlx::query(
        "SELECT description, steps, impact, mitigation, contact, channel, language, cvss, cve_ids, cwe_ids
         FROM cases WHERE id = $1",
    )
    .bind(case_id)
    .fetch_one(tx.conn())
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
            .fetch_all(tx.conn())
            .await?;
    let existing: Vec<String> = existing
        .into_iter()
        .map(|(v,)| sealer.open_text(aad, &v))
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
    write_fields(tx, sealer, case_id, reference, &merged).await?;
    Ok(filled)
}

/// The reference of case `id`.
pub async fn reference_of(tx: &mut WriteTx<'_>, id: i64) -> Result<String, StoreError> {
    let (reference,): (String,) = sqlx::query_as("SELECT reference FROM cases WHERE id = $1")
        .bind(id)
        .fetch_one(tx.conn())
        .await?;
    Ok(reference)
}

/// The case of organisation `org` that one of our messages with
/// Message-ID `ours` (`<…>`) was sent for: a mail answering it belongs
/// there.
pub async fn answered_by(
    tx: &mut WriteTx<'_>,
    ours: &str,
    org: &str,
) -> Result<Option<(i64, String)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT c.id, c.reference FROM outbox o JOIN cases c ON c.id = o.case_id
         WHERE o.message_id = $1 AND c.org = $2 LIMIT 1",
    )
    .bind(ours)
    .bind(org)
    .fetch_optional(tx.conn())
    .await?)
}

/// The reporter's address of case `id`, opened.
pub async fn reporter_address(
    tx: &mut WriteTx<'_>,
    sealer: &Sealer,
    id: i64,
    reference: &str,
) -> Result<Option<String>, StoreError> {
    let (stored,): (Option<String>,) =
        sqlx::query_as("SELECT reporter_address FROM cases WHERE id = $1")
            .bind(id)
            .fetch_one(tx.conn())
            .await?;
    Ok(sealer.open_opt(case_field(reference, "reporter_address"), stored)?)
}

/// Why an `unparsed` case's message still cannot be parsed.
pub async fn set_unparsed_reason(
    tx: &mut WriteTx<'_>,
    id: i64,
    reason: &str,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE cases SET unparsed_reason = $1 WHERE id = $2 AND kind = 'unparsed'")
        .bind(reason)
        .bind(id)
        .execute(tx.conn())
        .await?;
    Ok(())
}
