//! Filing one analysed message, in one write transaction: a new case with
//! its receipt, a follow-up in an existing case's conversation, the fill
//! of an `unparsed` case on retry — or, when it cannot be parsed, its
//! quarantine and an `unparsed` case, so a report is never lost.
//!
//! Follow-ups are told apart by who can write them. Our receipts and
//! replies carry a Message-ID with 128 random bits; a mail whose
//! In-Reply-To or References holds one answers us, and when it also comes
//! from the case's reporter it speaks for the case. A mail that only names
//! the (sequential, guessable) reference, or comes from anyone else, is
//! kept in the conversation marked "not from the reporter" and never
//! changes the case's state.

use super::inbox::{Filed, InboxError, Receipts};
use super::search;
use super::{Case, CaseKind, CaseState, EventKind, Reason};
use crate::intake::analysis::Analysis;
use crate::intake::evidence::Evidence;
use crate::model::crypto::Decryption;
use crate::model::report::Language;
use crate::model::thread::MessageKind;
use crate::outbound::{self, ReceiptFacts, Recipient};
use crate::policy::Policy;
use crate::store::audit::Who;
use crate::store::cases::{self as case_store, NewCase, NewMessage};
use crate::store::crypto as crypto_store;
use crate::store::messages::{self, Claimed};
use crate::store::outbox;
use crate::store::seal::Sealer;
use crate::store::{Store, WriteTx};

/// Files `p` as `a` says, inside the caller's write transaction.
pub(crate) async fn file(
    tx: &mut WriteTx<'_>,
    store: &Store,
    policy: &Policy,
    receipts: &Receipts,
    p: &Claimed,
    a: Analysis,
    now: i64,
) -> Result<Filed, InboxError> {
    let sealer = store.sealer();
    let encryption = a.encryption.clone();
    let (filed, case_id) = if let Some(case_id) = p.case_id {
        let reference = case_store::reference_of(tx, case_id).await?;
        let new = new_case(policy, &a, p);
        crypto_store::forget_report_text(tx, case_id, p.id).await?;
        case_store::refile(tx, sealer, case_id, &reference, &new, now).await?;
        if new.state != CaseState::AwaitingKey {
            // Decrypted now that the key is unlocked.
            crypto_store::leave_awaiting_key(tx, case_id, new.state, now).await?;
        }
        search::index_case(tx, sealer, case_id, &new, &client_ip(&p.peer)).await?;
        (Filed::Refiled { reference }, case_id)
    } else if let Some((case_id, reference, token)) = thread_of(tx, policy, &a).await? {
        let from_reporter = token && from_the_reporter(tx, sealer, case_id, &reference, &a).await?;
        let follow_up = NewMessage {
            kind: MessageKind::FollowUp,
            message_row: Some(p.id),
            at: p.received_at,
            from_reporter,
            token,
            sender: a
                .mail
                .from_address
                .clone()
                .unwrap_or_else(|| p.mail_from.clone()),
            subject: a.mail.subject.clone(),
            text: a.mail.text.clone(),
            tls_version: p.tls_version.clone(),
        };
        let attachments = evidence(&a);
        case_store::add_follow_up(tx, sealer, case_id, &follow_up, &attachments).await?;
        let texts = [follow_up.subject.as_str(), follow_up.text.as_str()];
        search::index(tx, sealer, &policy.id, case_id, &texts).await?;
        if from_reporter {
            let case = Case {
                id: case_id,
                reference: reference.clone(),
                org: policy.id.clone(),
            };
            resume_if_waiting(tx, sealer, &case, now).await?;
        }
        (
            Filed::Correspondence {
                reference,
                from_reporter,
            },
            case_id,
        )
    } else {
        let new = new_case(policy, &a, p);
        let (case_id, reference) = case_store::insert(tx, sealer, &new).await?;
        search::index_case(tx, sealer, case_id, &new, &client_ip(&p.peer)).await?;
        if new.kind == CaseKind::Disclosure {
            queue_receipt(
                tx, sealer, receipts, policy, case_id, &reference, &a, &new, p, now,
            )
            .await?;
        }
        (
            Filed::NewCase {
                reference,
                kind: new.kind,
            },
            case_id,
        )
    };
    if let Some(e) = &encryption {
        crypto_store::record(tx, sealer, p.id, case_id, e).await?;
    }
    if !messages::mark_filed(tx, p.id, case_id).await? {
        // Filed by someone else meanwhile: roll back rather than file twice.
        return Err(InboxError::AlreadyFiled(p.queue_id.clone()));
    }
    Ok(filed)
}

/// The case `a` belongs to, if any, and whether it carried a reply token:
/// first by our Message-IDs in In-Reply-To/References, then by a reference
/// named in the subject or those headers.
async fn thread_of(
    tx: &mut WriteTx<'_>,
    policy: &Policy,
    a: &Analysis,
) -> Result<Option<(i64, String, bool)>, InboxError> {
    for id in a.mail.refers_to.iter().take(50) {
        let ours = format!("<{}>", id.trim_matches(['<', '>']));
        if let Some((id, reference)) = case_store::answered_by(tx, &ours, &policy.id).await? {
            return Ok(Some((id, reference, true)));
        }
    }
    for reference in &a.references {
        if let Some(id) = case_store::find(tx, &policy.id, reference).await? {
            return Ok(Some((id, reference.clone(), false)));
        }
    }
    Ok(None)
}

/// Whether the follow-up's sender is the case's reporter (normalised).
async fn from_the_reporter(
    tx: &mut WriteTx<'_>,
    sealer: &Sealer,
    case_id: i64,
    reference: &str,
    a: &Analysis,
) -> Result<bool, InboxError> {
    let reporter = case_store::reporter_address(tx, sealer, case_id, reference).await?;
    let same = |x: Option<&str>| x.and_then(outbound::normalise).map(|(n, _)| n);
    Ok(same(reporter.as_deref()).is_some_and(|r| Some(r) == same(a.mail.from_address.as_deref())))
}

/// The reporter answered while the case waited for them: the feedback
/// clock runs again, by the lifecycle rules.
async fn resume_if_waiting(
    tx: &mut WriteTx<'_>,
    sealer: &Sealer,
    case: &Case,
    now: i64,
) -> Result<(), InboxError> {
    let state = case_store::lifecycle(tx, case.id).await?.state;
    if state == CaseState::NeedsInformation {
        let who = Who {
            actor: "intake",
            source: "mail",
        };
        let reason = Reason::new(Some("the reporter replied"))?;
        super::service::transition_in(tx, sealer, case, &who, CaseState::Triaged, &reason, now)
            .await?;
    }
    Ok(())
}

/// The attachments of `a` as evidence.
fn evidence(a: &Analysis) -> Vec<Evidence> {
    a.mail
        .attachments
        .iter()
        .zip(&a.facts)
        .map(|(at, facts)| Evidence::of_attachment(at, facts))
        .collect()
}

fn new_case(policy: &Policy, a: &Analysis, p: &Claimed) -> NewCase {
    let deadlines = policy.deadlines(
        jiff::Timestamp::from_second(p.received_at).unwrap_or(jiff::Timestamp::UNIX_EPOCH),
    );
    let mail = &a.mail;
    let anonymous = mail
        .from_address
        .as_deref()
        .is_none_or(|x| x.is_empty() || !x.contains('@'));
    let evidence = evidence(a);
    let locked = evidence.iter().any(Evidence::locked);
    let decryption = a.encryption.as_ref().map(|e| e.decryption);
    NewCase {
        org: policy.id.clone(),
        state: match decryption {
            Some(Decryption::AwaitingKey) => CaseState::AwaitingKey,
            Some(Decryption::Password) => CaseState::AwaitingPassword,
            _ if locked => CaseState::AwaitingPassword,
            _ => CaseState::New,
        },
        reference_prefix: policy.reference_prefix.clone(),
        kind: if a.flagged {
            CaseKind::Disclosure
        } else {
            CaseKind::Unflagged
        },
        subject: mail.subject.clone(),
        reporter_name: mail.from_name.clone(),
        reporter_address: mail.from_address.clone(),
        anonymous,
        fields: a.fields.clone(),
        suggestions: a.suggestions.clone(),
        tls_version: p.tls_version.clone(),
        tls_cipher: p.tls_cipher.clone(),
        // The sender's own claims prove nothing at a public MX: the case
        // shows only what we computed (`cases::authenticate`).
        authentication_results: None,
        message_id: mail.message_id.clone(),
        received_at: p.received_at,
        acknowledge_by: deadlines.acknowledge_by.as_second(),
        feedback_by: deadlines.feedback_by.as_second(),
        message_row: p.id,
        evidence,
        unparsed_reason: None,
        text: Some(report_text(mail)),
        sender: mail
            .from_address
            .clone()
            .unwrap_or_else(|| p.mail_from.clone()),
    }
}

/// The mail's text with the text of each forwarded message after it.
fn report_text(mail: &crate::intake::mime::Mail) -> String {
    let mut text = mail.text.clone();
    for f in &mail.forwarded_text {
        text.push_str("\n\n---------- forwarded message ----------\n");
        text.push_str(f);
    }
    text
}

/// The receipt, in the report's language, to the envelope sender when it
/// is the `From:` address; or a suppressed entry saying why there is none.
#[allow(clippy::too_many_arguments)]
async fn queue_receipt(
    tx: &mut WriteTx<'_>,
    sealer: &Sealer,
    receipts: &Receipts,
    policy: &Policy,
    case_id: i64,
    reference: &str,
    a: &Analysis,
    new: &NewCase,
    p: &Claimed,
    now: i64,
) -> Result<(), crate::store::StoreError> {
    let from = a.mail.from_address.as_deref().filter(|_| !new.anonymous);
    let to = match outbound::receipt_recipient(from, &p.mail_from, a.mail.auto_submitted.as_deref())
    {
        Ok(to) => to,
        Err(reason) => {
            return outbox::record_suppressed(tx, case_id, from, reason, now).await;
        }
    };
    let facts = ReceiptFacts {
        received_at: p.received_at,
        tls_version: p.tls_version.as_deref(),
        awaiting_password: new.state == CaseState::AwaitingPassword,
    };
    let danish = new.fields.language == Some(Language::Da);
    let (subject, body) = outbound::compose(policy, danish, reference, &facts);
    // 128 random bits: a follow-up quoting it answers us (a reply token).
    let message_id = format!(
        "<{reference}.{}@{}>",
        case_store::object_id(),
        receipts.hostname
    );
    let parent = a.mail.message_id.as_deref().and_then(thread_id);
    let client_ip = client_ip(&p.peer);
    outbound::enqueue_receipt(
        tx,
        sealer,
        &receipts.outbound,
        case_id,
        &Recipient {
            address: to,
            client_ip: &client_ip,
        },
        &subject,
        &body,
        &message_id,
        parent.as_deref(),
        now,
    )
    .await?;
    if receipts.hold_for_sender_auth {
        outbox::suppress_pending(tx, case_id, "receipt", super::authenticate::AWAITING).await?;
    }
    Ok(())
}

/// The reporter's Message-ID for In-Reply-To, only if it has the shape of
/// one (RFC 5322 msg-id, bounded): it goes back to them in a header.
fn thread_id(id: &str) -> Option<String> {
    let id = id.trim_matches(['<', '>']);
    let ok = id.len() <= 250
        && id.contains('@')
        && id
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b'"' | b'\\'));
    ok.then(|| format!("<{id}>"))
}

/// The IP address of a `peer` as stored (`ip:port`, `[v6]:port`).
pub(super) fn client_ip(peer: &str) -> String {
    peer.parse::<std::net::SocketAddr>()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|_| peer.to_owned())
}

/// Quarantines `p` with `reason`, inside the caller's write transaction.
/// For an organisation's mail it opens an
/// `unparsed` case (or, on a failed retry, records the failure on the one
/// it has): the raw message stays sealed in the store, the clocks run from
/// arrival, and an analyst can read it or retry. Returns the case.
pub(crate) async fn quarantine(
    tx: &mut WriteTx<'_>,
    sealer: &Sealer,
    policy: Option<&Policy>,
    p: &Claimed,
    reason: &str,
    now: i64,
) -> Result<Option<String>, InboxError> {
    if !messages::mark_quarantined(tx, p.id, reason).await? {
        return Ok(None);
    }
    let reference = match (policy, p.case_id) {
        (_, Some(case_id)) => {
            let reference = case_store::reference_of(tx, case_id).await?;
            case_store::set_unparsed_reason(tx, case_id, reason).await?;
            case_store::add_event(
                tx,
                sealer,
                case_id,
                now,
                EventKind::ParseFailed,
                "intake",
                &format!("retry failed: {reason}"),
                Some(p.id),
            )
            .await?;
            Some(reference)
        }
        (Some(policy), None) => {
            let deadlines = policy.deadlines(
                jiff::Timestamp::from_second(p.received_at).unwrap_or(jiff::Timestamp::UNIX_EPOCH),
            );
            let new = NewCase {
                org: policy.id.clone(),
                state: CaseState::New,
                reference_prefix: policy.reference_prefix.clone(),
                kind: CaseKind::Unparsed,
                subject: "(message not parsed)".into(),
                reporter_name: None,
                reporter_address: None,
                anonymous: false,
                fields: Default::default(),
                suggestions: Vec::new(),
                tls_version: p.tls_version.clone(),
                tls_cipher: p.tls_cipher.clone(),
                authentication_results: None,
                message_id: None,
                received_at: p.received_at,
                acknowledge_by: deadlines.acknowledge_by.as_second(),
                feedback_by: deadlines.feedback_by.as_second(),
                message_row: p.id,
                evidence: Vec::new(),
                unparsed_reason: Some(reason.to_owned()),
                text: None,
                sender: p.mail_from.clone(),
            };
            let (case_id, reference) = case_store::insert(tx, sealer, &new).await?;
            messages::link_case(tx, p.id, case_id).await?;
            outbox::record_suppressed(tx, case_id, None, "the message could not be parsed", now)
                .await?;
            Some(reference)
        }
        (None, None) => None,
    };
    Ok(reference)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_message_id_shapes_go_back_in_headers() {
        assert_eq!(
            thread_id("<a.b@example.org>").as_deref(),
            Some("<a.b@example.org>")
        );
        assert_eq!(thread_id("a b@example.org"), None);
        assert_eq!(thread_id("no-at-sign"), None);
        assert_eq!(thread_id(&format!("{}@x", "a".repeat(300))), None);
        assert_eq!(client_ip("192.0.2.7:2525"), "192.0.2.7");
        assert_eq!(client_ip("[2001:db8::1]:25"), "2001:db8::1");
    }
}
