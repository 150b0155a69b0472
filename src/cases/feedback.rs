//! Writing to the reporter: free replies, and the status updates the
//! policies promise (`policy::feedback`), drafted from the policy's
//! template in the report's language for the analyst to edit. Both go
//! through the outbox and the relay, threaded under the report with a
//! reply token, and the first of them stops the feedback clock.

use super::input::ReplyText;
use super::principal::{Authorized, Case};
use super::service::{Cases, Change, record};
use super::{CaseError, EventKind};
use crate::model::report::Language;
use crate::policy::feedback::FeedbackKind;
use crate::store::audit::AuditAction;
use crate::store::cases::{self as repo, triage};
use serde::Serialize;

/// A status update as drafted, before the analyst edits it.
#[derive(Debug, Clone, Serialize)]
pub struct Draft {
    pub kind: FeedbackKind,
    /// `en` or `da`: the report's language.
    pub language: &'static str,
    pub subject: String,
    pub text: String,
}

/// The subject of our messages about a case: its reference, then the
/// report's subject (control characters dropped, 120 characters at most).
fn subject(reference: &str, report_subject: &str) -> String {
    let quoted: String = report_subject
        .chars()
        .filter(|c| !c.is_control())
        .take(120)
        .collect();
    format!("Re: [{reference}] {quoted}")
}

impl Cases {
    /// Queues `text` to the reporter, threaded under their report, and
    /// records it in the timeline. Returns the address it goes to.
    pub async fn reply(
        &self,
        case: &Authorized<Case>,
        text: &ReplyText,
    ) -> Result<String, CaseError> {
        self.write_to_reporter(
            case,
            "reply",
            text,
            Change {
                event: EventKind::Reply,
                timeline: text.as_str(),
                action: AuditAction::Reply,
                audit: "reply queued to the reporter",
            },
        )
        .await
    }

    /// The status update `kind` for `case`, from its policy's template in
    /// the report's language, with the reference, organisation and (for a
    /// closed case) the reason filled in.
    pub async fn feedback_draft(
        &self,
        case: &Authorized<Case>,
        kind: FeedbackKind,
    ) -> Result<Draft, CaseError> {
        let policy = self
            .policies
            .get(&case.org)
            .ok_or_else(|| CaseError::NoPolicy(case.org.clone()))?;
        let sealer = self.store.sealer();
        let mut tx = self.store.write().await?;
        let standing = triage::standing(&mut tx, sealer, case.id, &case.reference).await?;
        let facts = repo::reply_facts(&mut tx, sealer, case.id, &case.reference).await?;
        let reason = triage::close_reason(&mut tx, case.id).await?;
        tx.commit().await?;
        let danish = standing.language.as_deref().and_then(Language::parse) == Some(Language::Da);
        let text = policy
            .feedback
            .template(kind, danish)
            .trim()
            .replace("{reference}", &case.reference)
            .replace("{organisation}", &policy.name)
            .replace(
                "{reason}",
                reason
                    .as_deref()
                    .unwrap_or(if danish { "(årsag)" } else { "(reason)" }),
            );
        Ok(Draft {
            kind,
            language: if danish { "da" } else { "en" },
            subject: subject(&case.reference, &facts.subject),
            text,
        })
    }

    /// Sends status update `kind` with `text` (the draft, edited or not).
    pub async fn send_feedback(
        &self,
        case: &Authorized<Case>,
        kind: FeedbackKind,
        text: &ReplyText,
    ) -> Result<String, CaseError> {
        let what = format!("status update ({}) queued to the reporter", kind.as_str());
        let timeline = format!("status update ({}):\n{}", kind.as_str(), text.as_str());
        self.write_to_reporter(
            case,
            "feedback",
            text,
            Change {
                event: EventKind::Feedback,
                timeline: &timeline,
                action: AuditAction::Feedback,
                audit: &what,
            },
        )
        .await
    }

    /// Queues `text` as `kind` (`reply` or `feedback`) to the reporter,
    /// threaded, stops the feedback clock if it runs, and records `change`.
    async fn write_to_reporter(
        &self,
        case: &Authorized<Case>,
        kind: &'static str,
        text: &ReplyText,
        change: Change<'_>,
    ) -> Result<String, CaseError> {
        let sealer = self.store.sealer();
        let now = self.now();
        let mut tx = self.store.write().await?;
        let facts = repo::reply_facts(&mut tx, sealer, case.id, &case.reference).await?;
        let to = facts.reporter_address.ok_or(CaseError::NoAddress)?;
        let message_id = format!(
            "<{}.{}@{}>",
            case.reference,
            repo::object_id(),
            self.hostname
        );
        let parent = facts
            .message_id
            .map(|m| format!("<{}>", m.trim_matches(['<', '>'])));
        crate::outbound::enqueue_reply(
            &mut tx,
            sealer,
            &crate::outbound::Outgoing {
                kind,
                case_id: case.id,
                to: &to,
                subject: &subject(&case.reference, &facts.subject),
                body: text.as_str(),
                message_id: &message_id,
                in_reply_to: parent.as_deref(),
            },
            now,
        )
        .await
        .map_err(|e| CaseError::Outbound(e.to_string()))?;
        triage::feedback_given(&mut tx, case.id, now).await?;
        record(&mut tx, sealer, case, &case.principal().who(), now, change).await?;
        tx.commit().await?;
        Ok(to)
    }
}
