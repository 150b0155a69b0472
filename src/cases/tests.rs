//! The cases service in-process, against a temporary SQLite store, at
//! times the test sets: no binary, no socket.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::unlock::Unlocker;
use super::{
    CaseKind, CaseState, Cases, Door, ErrorClass, EventKind, NoteText, Page, Principal, Reason,
    ReplyText, Scope,
};
use crate::intake::extract::ExtractLimits;
use crate::policy::PolicySet;
use crate::store::Store;
use crate::store::audit;
use crate::store::cases::{self as repo, Filter, NewCase};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// 2026-11-30 10:00 UTC, a Monday.
const MONDAY: i64 = 1_795_946_400;

struct World {
    _dir: tempfile::TempDir,
    store: Store,
    cases: Cases,
    clock: Arc<AtomicI64>,
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        &format!("sqlite:{}", dir.path().join("t.db").display()),
        dir.path(),
        &dir.path().join("master.key"),
    )
    .await
    .unwrap();
    let policies = Arc::new(PolicySet::load_dir(std::path::Path::new("policies")).unwrap());
    let limits = ExtractLimits::default();
    let unlocker = Arc::new(Unlocker::new(
        store.clone(),
        Arc::clone(&policies),
        crate::intake::IntakeSettings::default().unlock_budget(limits.max_time),
        limits,
    ));
    let clock = Arc::new(AtomicI64::new(MONDAY));
    let at = Arc::clone(&clock);
    let cases = Cases::new(store.clone(), policies, unlocker, "mx.test".into(), 4)
        .with_clock(Arc::new(move || at.load(Ordering::SeqCst)));
    World {
        _dir: dir,
        store,
        cases,
        clock,
    }
}

async fn file(w: &World, org: &str, prefix: &str) -> String {
    let mut tx = w.store.write().await.unwrap();
    let (_, reference) = repo::insert(
        &mut tx,
        w.store.sealer(),
        &NewCase {
            org: org.into(),
            state: CaseState::New,
            reference_prefix: prefix.into(),
            kind: CaseKind::Disclosure,
            subject: "Responsible disclosure: XSS".into(),
            reporter_name: None,
            reporter_address: Some("r@example.org".into()),
            anonymous: false,
            fields: Default::default(),
            suggestions: Vec::new(),
            tls_version: Some("TLSv1.3".into()),
            tls_cipher: None,
            authentication_results: None,
            message_id: None,
            received_at: MONDAY,
            acknowledge_by: MONDAY + 86_400,
            feedback_by: MONDAY + 14 * 86_400,
            message_row: 1,
            evidence: Vec::new(),
            unparsed_reason: None,
            text: Some("The search page reflects q.".into()),
            sender: "r@example.org".into(),
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    reference
}

fn analyst(org: &str) -> Principal {
    Principal {
        id: "alice".into(),
        door: Door::Web,
        source: "127.0.0.1".into(),
        scope: Scope::Orgs([org.to_owned()].into()),
    }
}

#[tokio::test]
async fn another_organisations_case_is_answered_like_a_missing_one() {
    let w = world().await;
    let mag = file(&w, "magenta", "MAG").await;
    let e = w
        .cases
        .open(&analyst("netcompany"), &mag)
        .await
        .unwrap_err();
    let missing = w
        .cases
        .open(&analyst("netcompany"), "MAG-1999-0001")
        .await
        .unwrap_err();
    assert_eq!(e.class(), ErrorClass::NotFound);
    assert_eq!(e.to_string(), format!("no case {mag}"));
    assert_eq!(missing.to_string(), "no case MAG-1999-0001");
    assert!(w.cases.open(&analyst("magenta"), &mag).await.is_ok());
    let listed = w
        .cases
        .list(
            &analyst("netcompany"),
            &Filter::default(),
            None,
            &Page::default(),
        )
        .await
        .unwrap();
    assert!(listed.cases.is_empty(), "{listed:?}");
    assert_eq!(listed.total, 0, "not even counted");
}

#[tokio::test]
async fn the_feedback_clock_pauses_for_the_reporter_and_moves_on_by_the_pause() {
    let w = world().await;
    let nc = file(&w, "netcompany", "NC").await;
    let p = analyst("netcompany");
    let case = w.cases.open(&p, &nc).await.unwrap();
    let none = Reason::default();
    let e = w
        .cases
        .transition(&case, CaseState::Resolved, &none)
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "a new case cannot become resolved");
    w.cases
        .transition(&case, CaseState::NeedsInformation, &none)
        .await
        .unwrap();
    w.clock.fetch_add(3 * 86_400, Ordering::SeqCst);
    w.cases
        .transition(&case, CaseState::Triaged, &none)
        .await
        .unwrap();
    let d = w.cases.view(&case).await.unwrap();
    assert_eq!(d.summary.state, CaseState::Triaged);
    assert_eq!(
        d.summary.feedback_by,
        MONDAY + 17 * 86_400,
        "moved on by 3 days"
    );
    assert!(!d.feedback_paused);
    let kinds: Vec<EventKind> = d.timeline.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            EventKind::Received,
            EventKind::Transition,
            EventKind::Transition
        ]
    );
    let e = w
        .cases
        .transition(&case, CaseState::Closed, &none)
        .await
        .unwrap_err();
    assert_eq!(e.class(), ErrorClass::Invalid, "{e}");
}

#[tokio::test]
async fn the_breach_deadline_is_the_policys_and_the_first_one_stays() {
    let w = world().await;
    let nc = file(&w, "netcompany", "NC").await;
    let case = w.cases.open(&analyst("netcompany"), &nc).await.unwrap();
    let due = w.cases.flag_breach(&case).await.unwrap();
    let policies = PolicySet::load_dir(std::path::Path::new("policies")).unwrap();
    let policy = policies.get("netcompany").unwrap();
    let expected = policy
        .due(
            jiff::Timestamp::from_second(MONDAY).unwrap(),
            policy.breach_notification_within,
        )
        .as_second();
    // Netcompany is also a processor: its controller is told within 24
    // hours, the earliest notification a breach requires.
    assert_eq!(due, MONDAY + 24 * 3600);
    let clocks = w.cases.clocks(&case).await.unwrap();
    let authority = clocks
        .iter()
        .find(|c| c.clock == "gdpr-controller/authority-notification")
        .unwrap_or_else(|| panic!("{clocks:?}"));
    assert_eq!(authority.due, Some(expected));
    w.clock.fetch_add(86_400, Ordering::SeqCst);
    assert_eq!(w.cases.flag_breach(&case).await.unwrap(), due, "kept");
    let d = w.cases.view(&case).await.unwrap();
    assert_eq!(d.breach_notify_by, Some(due));
    let breaches = d
        .timeline
        .iter()
        .filter(|e| e.kind == EventKind::Breach)
        .count();
    assert_eq!(breaches, 1);
}

#[tokio::test]
async fn each_change_writes_its_timeline_and_audit_entries_together() {
    let w = world().await;
    let nc = file(&w, "netcompany", "NC").await;
    let case = w.cases.open(&analyst("netcompany"), &nc).await.unwrap();
    w.cases
        .note(&case, &NoteText::new("seen it").unwrap())
        .await
        .unwrap();
    let to = w
        .cases
        .reply(&case, &ReplyText::new("Thank you").unwrap())
        .await
        .unwrap();
    assert_eq!(to, "r@example.org");
    let trail = audit::list(w.store.pool()).await.unwrap();
    let actions: Vec<(&str, &str, &str)> = trail
        .iter()
        .map(|e| (e.action.as_str(), e.actor.as_str(), e.detail.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            ("note", "alice", "internal note added"),
            ("reply", "alice", "reply queued to the reporter"),
        ]
    );
    let d = w.cases.view(&case).await.unwrap();
    let last: Vec<(EventKind, &str)> = d
        .timeline
        .iter()
        .skip(1)
        .map(|e| (e.kind, e.detail.as_str()))
        .collect();
    assert_eq!(
        last,
        [
            (EventKind::Note, "seen it"),
            (EventKind::Reply, "Thank you")
        ]
    );
}

#[tokio::test]
async fn a_case_goes_only_to_someone_who_signed_in_for_its_organisation() {
    use crate::store::analysts::{self, Analyst};
    let w = world().await;
    let nc = file(&w, "netcompany", "NC").await;
    let other = file(&w, "netcompany", "NC").await;
    let known = |actor: &str, orgs: &[&str], admin: bool| Analyst {
        actor: actor.into(),
        display: format!("{actor} (name)"),
        orgs: orgs.iter().map(|o| (*o).to_owned()).collect(),
        admin,
    };
    analysts::signed_in(&w.store, &known("bob", &["netcompany"], false), MONDAY)
        .await
        .unwrap();
    analysts::signed_in(&w.store, &known("mallory", &["magenta"], false), MONDAY)
        .await
        .unwrap();
    analysts::signed_in(&w.store, &known("root", &[], true), MONDAY)
        .await
        .unwrap();
    let case = w.cases.open(&analyst("netcompany"), &nc).await.unwrap();

    // Nobody unknown, nobody of another organisation.
    for who in ["stranger", "mallory"] {
        let e = w.cases.assign(&case, Some(who)).await.unwrap_err();
        assert_eq!(e.class(), ErrorClass::Invalid);
        assert_eq!(
            e.to_string(),
            format!(
                "{who:?} cannot take cases of netcompany: only someone who has signed in with a role for it can"
            )
        );
    }
    // Bob can, and an admin can; once more for Bob changes nothing.
    w.cases.assign(&case, Some("bob")).await.unwrap();
    w.cases.assign(&case, Some("bob")).await.unwrap();
    let mine = Filter {
        assignee: Some("bob".into()),
        ..Filter::default()
    };
    let listed = w
        .cases
        .list(&analyst("netcompany"), &mine, None, &Page::default())
        .await
        .unwrap()
        .cases;
    assert_eq!(
        listed
            .iter()
            .map(|c| c.reference.as_str())
            .collect::<Vec<_>>(),
        [nc.as_str()],
        "only Bob's case, not {other}"
    );
    assert_eq!(listed[0].assignee.as_deref(), Some("bob"));
    // Nobody else's organisation sees it, even filtered by assignee.
    assert!(
        w.cases
            .list(&analyst("magenta"), &mine, None, &Page::default())
            .await
            .unwrap()
            .cases
            .is_empty()
    );
    w.cases.assign(&case, Some("root")).await.unwrap();
    w.cases.assign(&case, None).await.unwrap();
    assert_eq!(w.cases.view(&case).await.unwrap().summary.assignee, None);
    assert_eq!(
        w.cases
            .analysts_for("netcompany")
            .await
            .unwrap()
            .iter()
            .map(|a| a.actor.as_str())
            .collect::<Vec<_>>(),
        ["bob", "root"]
    );

    // Each change is on the timeline and in the audit trail, once.
    let d = w.cases.view(&case).await.unwrap();
    let assigned: Vec<&str> = d
        .timeline
        .iter()
        .filter(|e| e.kind == EventKind::Assign)
        .map(|e| e.detail.as_str())
        .collect();
    assert_eq!(
        assigned,
        ["assigned to bob", "assigned to root", "unassigned"]
    );
    let trail = audit::list(w.store.pool()).await.unwrap();
    let audited: Vec<(&str, &str)> = trail
        .iter()
        .filter(|e| e.action == "assign")
        .map(|e| (e.actor.as_str(), e.detail.as_str()))
        .collect();
    assert_eq!(
        audited,
        [
            ("alice", "assigned to bob"),
            ("alice", "assigned to root"),
            ("alice", "unassigned")
        ]
    );
}
