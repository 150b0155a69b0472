//! The case list: the principal's organisations only, filtered, with the
//! clock that matters for each case.

use super::*;

// ---------------------------------------------------------------- list

#[derive(Deserialize, Default)]
pub(crate) struct ListQuery {
    #[serde(default)]
    org: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    overdue: Option<String>,
    #[serde(default)]
    awaiting: Option<String>,
    #[serde(default)]
    unflagged: Option<String>,
    #[serde(default)]
    mine: Option<String>,
}

struct ListFilterView {
    org: String,
    state: String,
    overdue: bool,
    awaiting: bool,
    unflagged: bool,
    mine: bool,
}

struct Row {
    reference: String,
    org: String,
    kind: &'static str,
    state: &'static str,
    subject: String,
    received: String,
    clock: String,
    overdue: bool,
}

#[derive(Template)]
#[template(path = "cases.html")]
struct ListPage {
    base: Base,
    rows: Vec<Row>,
    orgs: Vec<String>,
    states: Vec<&'static str>,
    f: ListFilterView,
}

pub(crate) async fn list(
    State(ui): State<S>,
    a: Analyst,
    Query(q): Query<ListQuery>,
) -> Result<Response, UiError> {
    let now = now();
    let f = ListFilterView {
        overdue: q.overdue.is_some(),
        awaiting: q.awaiting.is_some(),
        unflagged: q.unflagged.is_some(),
        mine: q.mine.is_some(),
        org: q.org,
        state: q.state,
    };
    let state = if f.awaiting {
        Some(CaseState::AwaitingPassword)
    } else if f.state.is_empty() {
        None
    } else {
        Some(state_named(&f.state)?)
    };
    let filter = Filter {
        org: Some(f.org.clone()).filter(|o| !o.is_empty()),
        state,
        kind: f.unflagged.then_some(CaseKind::Unflagged),
        overdue: f.overdue,
        assignee: f.mine.then(|| a.session.actor.clone()),
    };
    let rows = ui
        .cases
        .list(&a.principal(), &filter)
        .await?
        .into_iter()
        .map(|c| {
            let clock = if !c.state.is_open() {
                "closed".to_owned()
            } else if !c.state.acknowledged() {
                format!("receipt: {}", self::clock(c.acknowledge_by, now))
            } else {
                format!("feedback: {}", self::clock(c.feedback_by, now))
            };
            Row {
                received: when(c.received_at),
                reference: c.reference,
                org: c.org,
                kind: c.kind.as_str(),
                state: c.state.as_str(),
                subject: c.subject,
                clock,
                overdue: c.overdue,
            }
        })
        .collect();
    Ok(render(&ListPage {
        base: a.base("Cases", &ui),
        rows,
        orgs: a.session.roles.orgs.iter().cloned().collect(),
        states: CaseState::ALL.iter().map(|s| s.as_str()).collect(),
        f,
    }))
}
