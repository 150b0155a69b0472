//! Reading cases back: the list, one case whole, one evidence object —
//! opened from their seals into the read models the doors render.

use super::thread::{CaseMessage, Outbound};
use super::{case_child, case_field, evidence_field};
use crate::model::case::{CaseKind, CaseState, EventKind};
use crate::model::report::{Language, ReportFields, Suggestion};
use crate::model::thread::{FieldSources, MessageKind, ThreadEntry};
use crate::store::StoreError;
use crate::store::seal::{Label, Sealer};
use serde::Serialize;
use sqlx::AnyPool;
use sqlx::Row;

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
        locked: r.try_get::<i64, _>("archive_locked")? != 0,
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
                archive, opened_at, object_id, conversation_id, archive_locked, data
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
    /// Who works it (an analyst's stable identity), if anyone.
    pub assignee: Option<String>,
    /// Give it as `--after`/`after` for the page that follows this case.
    pub cursor: String,
    /// When the first reply or status update was queued (the feedback
    /// clock stopped then).
    pub feedback_given_at: Option<i64>,
    /// The earliest regulatory deadline not yet met (`cases::clocks`).
    pub clock_due: Option<i64>,
    /// That deadline has passed.
    pub clock_overdue: bool,
}

pub(in crate::store) fn overdue(
    state: CaseState,
    ack_by: i64,
    feedback_by: i64,
    paused: bool,
    now: i64,
) -> bool {
    state.is_open() && ((!state.acknowledged() && now > ack_by) || (!paused && now > feedback_by))
}

pub(super) fn kind_of(name: &str) -> Result<CaseKind, StoreError> {
    CaseKind::parse(name).ok_or_else(|| StoreError::Corrupt(format!("unknown case kind {name:?}")))
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
    /// An encrypted archive not opened yet: it holds the case.
    pub locked: bool,
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
    /// When the first reply or status update to the reporter was queued:
    /// the feedback clock stopped then.
    pub feedback_given_at: Option<i64>,
    pub breach_notify_by: Option<i64>,
    pub assets: Vec<AssetRow>,
    pub suggestions: Vec<Suggestion>,
    pub evidence: Vec<EvidenceInfo>,
    pub timeline: Vec<Event>,
    /// For an `unparsed` case: why intake could not parse its message.
    pub unparsed_reason: Option<String>,
    /// Follow-ups after the report, oldest first.
    pub conversation: Vec<ConversationEntry>,
    /// Where each report field's value came from: `mail`, `archive` or
    /// `analyst`.
    pub field_sources: FieldSources,
    /// The whole conversation in order: the report, follow-ups, what we
    /// sent, internal notes (assembled by the cases service).
    pub thread: Vec<ThreadEntry>,
    /// Likely duplicates within the organisation, with the reason: hints
    /// for the analyst (`cases::hints`), never acted on.
    pub duplicates: Vec<crate::model::thread::Hint>,
    /// What the case was flagged as, and since when (`cases::clocks`).
    pub flags: Vec<crate::model::clock::FlagRecord>,
    /// Its regulatory clocks, as the cases service computed them.
    pub clocks: Vec<crate::model::clock::Clock>,
    /// When retention or an erasure removed its personal data.
    pub erased_at: Option<i64>,
    /// Its encrypted mails: how each was encrypted, whether it was
    /// decrypted, and what its signature proved.
    pub encryption: Vec<crate::model::crypto::MessageEncryption>,
    /// Sender authentication as we computed it for the report (SPF, DKIM,
    /// DMARC, ARC), once assessed; `authentication_results` is its header.
    pub sender_auth: Option<crate::model::auth::Assessment>,
    /// The parts the thread is assembled from.
    #[serde(skip)]
    pub messages: Vec<CaseMessage>,
    #[serde(skip)]
    pub outbound: Vec<Outbound>,
    /// The stored mails: (id, received_at, envelope sender, TLS version).
    #[serde(skip)]
    pub mails: Vec<(i64, i64, String, Option<String>)>,
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
    let feedback_at: Option<i64> = row.try_get("feedback_at")?;
    let ack_by: i64 = row.try_get("acknowledge_by")?;
    let feedback_by: i64 = row.try_get("feedback_by")?;
    let field = |column: &str| -> Result<Option<String>, StoreError> {
        Ok(sealer.open_opt(case_field(reference, column), row.try_get(column)?)?)
    };
    let assets = assets(pool, sealer, id).await?;
    let suggestions = suggestions(pool, sealer, id).await?;
    let evidence = evidence_of(pool, sealer, id).await?;
    let timeline = timeline(pool, sealer, id).await?;
    let messages = super::thread::messages(pool, sealer, id).await?;
    let conversation = messages
        .iter()
        .filter(|m| m.kind == MessageKind::FollowUp)
        .map(CaseMessage::conversation_entry)
        .collect();
    let outbound = super::thread::outbound(pool, sealer, id).await?;
    let mails = super::thread::mails(pool, id).await?;
    let f = open_fields(&row, sealer, reference)?;
    Ok(Some(CaseDetail {
        summary: CaseSummary {
            reference: reference.to_owned(),
            org: row.try_get("org")?,
            kind: kind_of(&row.try_get::<String, _>("kind")?)?,
            overdue: overdue(
                state,
                ack_by,
                feedback_by,
                paused.is_some() || feedback_at.is_some(),
                now,
            ),
            state,
            subject: field("subject")?.unwrap_or_default(),
            received_at: row.try_get("received_at")?,
            acknowledge_by: ack_by,
            feedback_by,
            assignee: row.try_get("assignee")?,
            cursor: super::list::Cursor {
                received_at: row.try_get("received_at")?,
                reference: reference.to_owned(),
            }
            .encode(),
            feedback_given_at: feedback_at,
            clock_due: None,
            clock_overdue: false,
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
        feedback_given_at: feedback_at,
        breach_notify_by: row.try_get("breach_notify_by")?,
        assets,
        suggestions,
        evidence,
        timeline,
        unparsed_reason: row.try_get("unparsed_reason")?,
        conversation,
        field_sources: FieldSources::from_json(&row.try_get::<String, _>("field_sources")?),
        thread: Vec::new(),
        duplicates: Vec::new(),
        flags: Vec::new(),
        clocks: Vec::new(),
        erased_at: row.try_get("erased_at")?,
        encryption: Vec::new(),
        sender_auth: None,
        messages,
        outbound,
        mails,
    }))
}

async fn assets(pool: &AnyPool, sealer: &Sealer, id: i64) -> Result<Vec<AssetRow>, StoreError> {
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
        .collect()
}

async fn suggestions(
    pool: &AnyPool,
    sealer: &Sealer,
    id: i64,
) -> Result<Vec<Suggestion>, StoreError> {
    sqlx::query(
        "SELECT kind, name, label, matched FROM case_suggestions WHERE case_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| {
        let label = case_child(id, "suggestion");
        let open = |c: &str| -> Result<String, StoreError> {
            Ok(sealer.open_text(label, &r.try_get::<String, _>(c)?)?)
        };
        Ok(Suggestion {
            kind: open("kind")?,
            name: open("name")?,
            label: open("label")?,
            matched: open("matched")?,
        })
    })
    .collect()
}

async fn evidence_of(
    pool: &AnyPool,
    sealer: &Sealer,
    id: i64,
) -> Result<Vec<EvidenceInfo>, StoreError> {
    sqlx::query(
        "SELECT id, kind, name, declared_type, sniffed_type, size, forwarded, parent_id, archive, opened_at,
                object_id, conversation_id, archive_locked
         FROM case_evidence WHERE case_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| evidence_info(r, sealer))
    .collect()
}

async fn timeline(pool: &AnyPool, sealer: &Sealer, id: i64) -> Result<Vec<Event>, StoreError> {
    sqlx::query("SELECT at, kind, actor, detail FROM case_events WHERE case_id = $1 ORDER BY id")
        .bind(id)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| {
            Ok(Event {
                at: r.try_get("at")?,
                kind: EventKind::parse(&r.try_get::<String, _>("kind")?).ok_or_else(|| {
                    StoreError::Corrupt("a timeline entry of an unknown kind".into())
                })?,
                actor: r.try_get("actor")?,
                detail: sealer
                    .open_text(case_child(id, "event"), &r.try_get::<String, _>("detail")?)?,
            })
        })
        .collect()
}

pub(super) fn state_of(name: &str) -> Result<CaseState, StoreError> {
    CaseState::parse(name)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown case state {name:?}")))
}

/// The report-derived fields of the case in `row`, opened (assets aside):
/// the one reading of what `SealedFields` writes.
pub(super) fn open_fields(
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
