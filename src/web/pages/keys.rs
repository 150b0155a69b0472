//! The organisations' decryption keys, for administrators: each OpenPGP
//! key's fingerprint and state, and unlocking a passphrase-protected one
//! for the running service (`cases::keys`).

use super::*;
use crate::cases::keys::KeyStatus;
use zeroize::Zeroizing;

#[derive(Template)]
#[template(path = "keys.html")]
struct KeysPage {
    base: Base,
    keys: Vec<KeyStatus>,
    notice: Option<String>,
    error: Option<String>,
}

pub(crate) async fn page(State(ui): State<S>, a: Analyst) -> Result<Response, UiError> {
    let p = reporters::admin_principal(&a)?;
    Ok(render(&KeysPage {
        base: a.base("Decryption keys", &ui),
        keys: ui.cases.key_status(&p),
        notice: None,
        error: None,
    }))
}

#[derive(Deserialize)]
pub(crate) struct UnlockForm {
    csrf: String,
    org: String,
    passphrase: Zeroizing<String>,
}

pub(crate) async fn unlock(
    State(ui): State<S>,
    a: Analyst,
    Form(f): Form<UnlockForm>,
) -> Result<Response, UiError> {
    a.check_csrf(&f.csrf)?;
    let p = reporters::admin_principal(&a)?;
    let (notice, error, status) = match ui.cases.unlock_key(&p, &f.org, f.passphrase).await {
        Ok(done) => (
            Some(format!(
                "{} unlocked; {} report(s) queued to decrypt.",
                done.org, done.requeued
            )),
            None,
            StatusCode::OK,
        ),
        Err(e @ crate::cases::CaseError::WrongPassphrase(_)) => {
            (None, Some(e.to_string()), StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(e) => return Err(e.into()),
    };
    Ok((
        status,
        render(&KeysPage {
            base: a.base("Decryption keys", &ui),
            keys: ui.cases.key_status(&p),
            notice,
            error,
        }),
    )
        .into_response())
}
