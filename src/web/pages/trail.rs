//! The audit trail, for administrators: verified on every view, paged,
//! filtered by actor, action and time.

use super::*;

// ---------------------------------------------------------------- audit

struct AuditRow {
    id: i64,
    when: String,
    actor: String,
    action: String,
    target: String,
    source: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    base: Base,
    entries: Vec<AuditRow>,
    verdict: String,
    intact: bool,
    query: AuditQuery,
    /// Links to the newer and older pages, with the same filters.
    newer: Option<String>,
    older: Option<String>,
}

/// The audit page's filters and page, from the query string.
#[derive(Deserialize, Default, Clone)]
pub(crate) struct AuditQuery {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    /// First day shown, `YYYY-MM-DD` (UTC).
    #[serde(default)]
    from: String,
    /// Last day shown, `YYYY-MM-DD` (UTC).
    #[serde(default)]
    to: String,
    #[serde(default)]
    page: u32,
}

impl AuditQuery {
    fn filter(&self) -> Result<audit::Filter, UiError> {
        let day = |s: &str, what: &str| -> Result<Option<i64>, UiError> {
            if s.trim().is_empty() {
                return Ok(None);
            }
            let date: jiff::civil::Date = s.trim().parse().map_err(|_| {
                UiError::BadRequest(format!("The {what} date must look like 2026-11-29."))
            })?;
            Ok(date
                .to_zoned(jiff::tz::TimeZone::UTC)
                .ok()
                .map(|z| z.timestamp().as_second()))
        };
        let text = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        Ok(audit::Filter {
            actor: text(&self.actor),
            action: text(&self.action),
            since: day(&self.from, "first")?,
            until: day(&self.to, "last")?.map(|t| t + 86_400),
        })
    }

    fn link(&self, page: u32) -> String {
        let enc = |s: &str| -> String {
            s.bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'@' | b':' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect()
        };
        format!(
            "/audit?actor={}&action={}&from={}&to={}&page={page}",
            enc(&self.actor),
            enc(&self.action),
            enc(&self.from),
            enc(&self.to)
        )
    }
}

pub(crate) async fn page(
    State(ui): State<S>,
    a: Analyst,
    Query(query): Query<AuditQuery>,
) -> Result<Response, UiError> {
    if !a.session.roles.admin {
        return Err(UiError::NotFound);
    }
    let filter = query.filter()?;
    let verdict = audit::verify(ui.store.pool(), ui.store.sealer()).await?;
    let (verdict, intact) = match verdict {
        audit::Verdict::Intact { entries } => {
            (format!("Chain intact: {entries} entries verified."), true)
        }
        audit::Verdict::Broken { at_entry, reason } => {
            (format!("CHAIN BROKEN at entry {at_entry}: {reason}"), false)
        }
    };
    let offset = i64::from(query.page) * AUDIT_PAGE_ENTRIES;
    let (entries, more) = audit::page(ui.store.pool(), &filter, AUDIT_PAGE_ENTRIES, offset).await?;
    let entries = entries
        .into_iter()
        .map(|e| AuditRow {
            id: e.id,
            when: when(e.at),
            actor: e.actor,
            action: e.action,
            target: e.target,
            source: e.source,
            detail: e.detail,
        })
        .collect();
    audit::record_now(
        &ui.store,
        &a.who()
            .entry(AuditAction::AuditView, "", "audit trail viewed (web)"),
    )
    .await?;
    Ok(render(&AuditPage {
        base: a.base("Audit trail", &ui),
        entries,
        verdict,
        intact,
        newer: (query.page > 0).then(|| query.link(query.page - 1)),
        older: more.then(|| query.link(query.page + 1)),
        query,
    }))
}
