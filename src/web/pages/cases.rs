//! The case list: the principal's organisations only, filtered or
//! searched, 50 cases a page, with the clock that matters for each case.

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
    #[serde(default)]
    breach: Option<String>,
    /// Only cases with a regulatory clock in this state.
    #[serde(default)]
    clock: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    before: String,
    #[serde(default)]
    q: String,
    #[serde(default)]
    after: Option<String>,
}

/// Cases per page.
pub const PAGE: u32 = 50;

struct ListFilterView {
    org: String,
    state: String,
    overdue: bool,
    awaiting: bool,
    unflagged: bool,
    mine: bool,
    breach: bool,
    clock: String,
    since: String,
    before: String,
    q: String,
}

impl ListFilterView {
    /// The filters as a query string, for the next page's link.
    fn query(&self) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("org", self.org.as_str()),
            ("state", &self.state),
            ("clock", &self.clock),
            ("since", &self.since),
            ("before", &self.before),
            ("q", &self.q),
        ] {
            if !v.is_empty() {
                q.append_pair(k, v);
            }
        }
        for (k, on) in [
            ("overdue", self.overdue),
            ("awaiting", self.awaiting),
            ("unflagged", self.unflagged),
            ("mine", self.mine),
            ("breach", self.breach),
        ] {
            if on {
                q.append_pair(k, "1");
            }
        }
        q.finish()
    }
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
    /// The earliest regulatory deadline not met, and whether it passed.
    regulatory: Option<String>,
    regulatory_overdue: bool,
}

#[derive(Template)]
#[template(path = "cases.html")]
struct ListPage {
    base: Base,
    rows: Vec<Row>,
    total: i64,
    /// The next page's URL, if there is one.
    next: Option<String>,
    /// This is not the first page.
    paged: bool,
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
        breach: q.breach.is_some(),
        org: q.org,
        state: q.state,
        clock: q.clock,
        since: q.since,
        before: q.before,
        q: q.q,
    };
    let day = |s: &str| (!s.is_empty()).then(|| instant(s)).transpose();
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
        breach: f.breach,
        clock: Some(f.clock.as_str())
            .filter(|c| !c.is_empty())
            .map(crate::cases::clock_state_named)
            .transpose()?,
        received_from: day(&f.since)?,
        received_until: day(&f.before)?,
        ..Filter::default()
    };
    let page = Page {
        after: q.after.clone().filter(|c| !c.is_empty()),
        limit: Some(PAGE),
    };
    let listing = ui
        .cases
        .list(&a.principal(), &filter, Some(&f.q), &page)
        .await?;
    let next = listing.next.as_ref().map(|c| match f.query() {
        q if q.is_empty() => format!("/cases?after={}", c.encode()),
        q => format!("/cases?{q}&after={}", c.encode()),
    });
    let rows = listing
        .cases
        .into_iter()
        .map(|c| {
            let clock = if !c.state.is_open() {
                "closed".to_owned()
            } else if c.feedback_given_at.is_some() {
                "feedback given".to_owned()
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
                regulatory: c.clock_due.map(|d| {
                    if c.clock_overdue {
                        format!("was due {}", when(d))
                    } else {
                        format!("due {}", self::clock(d, now))
                    }
                }),
                regulatory_overdue: c.clock_overdue,
            }
        })
        .collect();
    Ok(render(&ListPage {
        base: a.base("Cases", &ui),
        rows,
        total: listing.total,
        next,
        paged: page.after.is_some(),
        orgs: a.session.roles.orgs.iter().cloned().collect(),
        states: CaseState::ALL.iter().map(|s| s.as_str()).collect(),
        f,
    }))
}
