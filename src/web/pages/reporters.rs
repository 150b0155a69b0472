//! A person's rights, for administrators: export everything stored about
//! an address (GDPR art. 15), or erase it from every case of every
//! organisation (art. 17) after typing it twice. Both are the cases
//! service's (`crate::cases::retention`), acting across organisations.

use super::*;
use crate::cases::{Door, Principal, Scope};

#[derive(Template)]
#[template(path = "reporters.html")]
struct ReportersPage {
    base: Base,
    /// After an erasure: how many cases, and their references.
    erased: Option<(usize, String)>,
    error: Option<String>,
}

pub(crate) fn admin_principal(a: &Analyst) -> Result<Principal, UiError> {
    if !a.session.roles.admin {
        // Like the audit trail: not there for anyone else.
        return Err(UiError::NotFound);
    }
    Ok(Principal {
        id: a.session.actor.clone(),
        door: Door::Web,
        source: a.source.clone(),
        scope: Scope::All,
    })
}

pub(crate) async fn page(State(ui): State<S>, a: Analyst) -> Result<Response, UiError> {
    admin_principal(&a)?;
    Ok(render(&ReportersPage {
        base: a.base("A person's data", &ui),
        erased: None,
        error: None,
    }))
}

#[derive(Deserialize)]
pub(crate) struct AddressForm {
    csrf: String,
    address: String,
    /// For an erasure: the address again.
    #[serde(default)]
    confirm: String,
}

pub(crate) async fn export(
    State(ui): State<S>,
    a: Analyst,
    Form(f): Form<AddressForm>,
) -> Result<Response, UiError> {
    a.check_csrf(&f.csrf)?;
    let p = admin_principal(&a)?;
    let export = ui.cases.export_reporter(&p, &f.address).await?;
    let body = serde_json::to_vec_pretty(&export).map_err(|_| UiError::Internal)?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/json"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"personal-data.json\"",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response())
}

pub(crate) async fn erase(
    State(ui): State<S>,
    a: Analyst,
    Form(f): Form<AddressForm>,
) -> Result<Response, UiError> {
    a.check_csrf(&f.csrf)?;
    let p = admin_principal(&a)?;
    let base = a.base("A person's data", &ui);
    if f.confirm.trim().to_lowercase() != f.address.trim().to_lowercase() {
        return Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            render(&ReportersPage {
                base,
                erased: None,
                error: Some(
                    "Type the address twice, the same both times, to confirm the erasure.".into(),
                ),
            }),
        )
            .into_response());
    }
    let erased = ui.cases.erase_reporter(&p, &f.address).await?;
    let refs: Vec<&str> = erased.iter().map(|c| c.reference.as_str()).collect();
    Ok(render(&ReportersPage {
        base,
        erased: Some((erased.len(), refs.join(", "))),
        error: None,
    }))
}
