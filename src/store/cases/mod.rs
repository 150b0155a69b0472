//! The cases repository: case rows, their sealed fields, assets,
//! suggestions, evidence, timeline and conversation. It persists what the
//! cases service decided and reads it back; it holds no rule of its own.

use super::seal::{Label, Sealer};
use super::{StoreError, WriteTx};
use crate::intake::evidence::Evidence;
use crate::model::archive::ArchiveInfo;
use crate::model::case::{CaseKind, CaseState, EventKind};
use crate::model::report::{ReportFields, Suggestion};
use crate::model::thread::{FieldSource, FieldSources, MessageKind, ReportField};
use sqlx::AnyPool;
use sqlx::Row;

mod fields;
mod list;
mod read;
mod thread;
pub mod triage;

use fields::SealedFields;
pub(crate) use fields::write_fields;
pub use fields::{fields_of, mark_opened, merge_archive_fields, write_text_fields};
pub use list::{Cursor, Filter, Listing, list};
pub(in crate::store) use read::overdue as is_overdue;
use read::state_of;
pub use read::{
    AssetRow, CaseDetail, CaseSummary, ConversationEntry, Event, EvidenceInfo, evidence, show,
};
pub use thread::{CaseMessage, Outbound, message_of_kind, raw_mail};

/// Where an evidence object sits: under an archive it came out of, with a
/// follow-up of the conversation, opened (an archive extracted with its
/// parent) at a time.
#[derive(Debug, Clone, Copy, Default)]
pub struct Placement {
    pub parent: Option<i64>,
    /// The follow-up it came with (`conversation[].id`), if not the report.
    pub conversation_id: Option<i64>,
    pub opened_at: Option<i64>,
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
    pub evidence: Vec<Evidence>,
    /// For an `unparsed` case: why intake could not parse it.
    pub unparsed_reason: Option<String>,
    /// The mail's whole text (with any forwarded messages), kept as the
    /// report's message in the conversation; none when it was not parsed.
    pub text: Option<String>,
    /// Who sent it: the From address, else the envelope sender.
    pub sender: String,
}

fn year_of(unix: i64) -> i16 {
    jiff::Timestamp::from_second(unix).map_or(1970, |t| t.to_zoned(jiff::tz::TimeZone::UTC).year())
}

/// The report's own text as the first message of the conversation, and
/// every field it gave marked as coming from the mail.
async fn keep_report_text(
    tx: &mut WriteTx<'_>,
    sealer: &Sealer,
    id: i64,
    c: &NewCase,
) -> Result<(), StoreError> {
    if let Some(text) = &c.text {
        let report = NewMessage {
            kind: MessageKind::Report,
            message_row: Some(c.message_row),
            at: c.received_at,
            from_reporter: true,
            token: false,
            sender: c.sender.clone(),
            subject: c.subject.clone(),
            text: text.clone(),
            tls_version: c.tls_version.clone(),
        };
        add_message(tx, sealer, id, &report).await?;
    }
    let sources = FieldSources::all_from(&c.fields, FieldSource::Mail);
    set_field_sources(tx, id, &sources).await
}

/// Records where each field's value came from.
pub async fn set_field_sources(
    tx: &mut WriteTx<'_>,
    id: i64,
    sources: &FieldSources,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE cases SET field_sources = $1 WHERE id = $2")
        .bind(sources.to_json())
        .bind(id)
        .execute(tx.conn())
        .await?;
    Ok(())
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
    e: &Evidence,
    at: Placement,
) -> Result<i64, StoreError> {
    let object = object_id();
    let aad = Label::Evidence(&object);
    let archive = e.archive().and_then(|a| serde_json::to_string(a).ok());
    let locked = e.archive().is_some_and(ArchiveInfo::is_encrypted) && at.opened_at.is_none();
    let row = sqlx::query(
        "INSERT INTO case_evidence (case_id, kind, name, declared_type, sniffed_type, size, forwarded, data, archive,
             parent_id, opened_at, object_id, archive_locked, conversation_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id",
    )
    .bind(case_id)
    .bind(if e.screenshot() { "screenshot" } else { "attachment" })
    .bind(sealer.seal_opt(evidence_field(&object, "name"), e.name()))
    .bind(sealer.seal_text(evidence_field(&object, "declared_type"), e.declared_type()))
    .bind(sealer.seal_opt(evidence_field(&object, "sniffed_type"), e.sniffed_type()))
    .bind(e.data().len() as i64)
    .bind(i64::from(e.forwarded()))
    .bind(sealer.seal(aad, e.data()))
    .bind(sealer.seal_opt(evidence_field(&object, "archive"), archive.as_deref()))
    .bind(at.parent)
    .bind(at.opened_at)
    .bind(&object)
    .bind(i64::from(locked))
    .bind(at.conversation_id)
    .persistent(false)
    .fetch_one(tx.conn())
    .await?;
    Ok(row.try_get("id")?)
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
        insert_evidence(tx, sealer, id, e, Placement::default()).await?;
    }
    keep_report_text(tx, sealer, id, c).await?;
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
    // A field an analyst wrote while the case was unparsed stays theirs.
    let (current, before) = fields_of(tx, sealer, id, reference).await?;
    let mut merged = c.fields.clone();
    let mut sources = FieldSources::all_from(&c.fields, FieldSource::Mail);
    for f in ReportField::ALL {
        if before.get(f) == Some(FieldSource::Analyst) {
            *f.slot(&mut merged) = f.of(&current).map(str::to_owned);
            sources.set(f, Some(FieldSource::Analyst));
        }
    }
    write_fields(tx, sealer, id, reference, &merged).await?;
    insert_suggestions(tx, sealer, id, &c.suggestions).await?;
    for e in &c.evidence {
        insert_evidence(tx, sealer, id, e, Placement::default()).await?;
    }
    keep_report_text(tx, sealer, id, c).await?;
    set_field_sources(tx, id, &sources).await?;
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

/// A message of a case: the report's text, a covering note, a report
/// found inside an archive, or a follow-up mail.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub kind: MessageKind,
    /// The stored mail it came from (none for an archive's report).
    pub message_row: Option<i64>,
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

/// Stores one message of a case, sealed; returns its id.
pub async fn add_message(
    tx: &mut WriteTx<'_>,
    sealer: &Sealer,
    case_id: i64,
    m: &NewMessage,
) -> Result<i64, StoreError> {
    let aad = case_child(case_id, "conversation");
    Ok(sqlx::query(
        "INSERT INTO case_messages (case_id, kind, message_row, at, from_reporter, token, sender, subject, body, tls_version)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
    )
    .persistent(false)
    .bind(case_id)
    .bind(m.kind.as_str())
    .bind(m.message_row)
    .bind(m.at)
    .bind(i64::from(m.from_reporter))
    .bind(i64::from(m.token))
    .bind(sealer.seal_text(aad, &m.sender))
    .bind(sealer.seal_text(aad, &m.subject))
    .bind(sealer.seal_text(aad, &m.text))
    .bind(&m.tls_version)
    .fetch_one(tx.conn())
    .await?
    .try_get("id")?)
}

/// Relabels a case's messages of kind `from` as `to` (the report's text
/// becomes a covering note when an archive holds the report).
pub async fn relabel_messages(
    tx: &mut WriteTx<'_>,
    case_id: i64,
    from: MessageKind,
    to: MessageKind,
) -> Result<u64, StoreError> {
    Ok(
        sqlx::query("UPDATE case_messages SET kind = $1 WHERE case_id = $2 AND kind = $3")
            .bind(to.as_str())
            .bind(case_id)
            .bind(from.as_str())
            .execute(tx.conn())
            .await?
            .rows_affected(),
    )
}

/// Stores a follow-up (sealed) with its attachments, and a timeline entry.
/// Returns its id in the conversation.
pub async fn add_follow_up(
    tx: &mut WriteTx<'_>,
    sealer: &Sealer,
    case_id: i64,
    f: &NewMessage,
    attachments: &[Evidence],
) -> Result<i64, StoreError> {
    let id = add_message(tx, sealer, case_id, f).await?;
    let with_it = Placement {
        conversation_id: Some(id),
        ..Placement::default()
    };
    for e in attachments {
        insert_evidence(tx, sealer, case_id, e, with_it).await?;
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
        f.message_row,
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

/// Who the case is assigned to, if anyone.
pub async fn assignee(tx: &mut WriteTx<'_>, id: i64) -> Result<Option<String>, StoreError> {
    let (who,): (Option<String>,) = sqlx::query_as("SELECT assignee FROM cases WHERE id = $1")
        .bind(id)
        .fetch_one(tx.conn())
        .await?;
    Ok(who)
}

pub async fn set_assignee(
    tx: &mut WriteTx<'_>,
    id: i64,
    assignee: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE cases SET assignee = $1 WHERE id = $2")
        .bind(assignee)
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
