//! Browser sessions of signed-in analysts.
//!
//! The cookie holds 256 random bits; the database keeps only their SHA-256,
//! so a copy of the database opens no session. Sessions end after
//! `session_idle_seconds` without a request, `session_absolute_seconds` after
//! sign-in, or at sign-out. The cookie is HttpOnly and SameSite=Strict, and
//! Secure unless the interface runs in dev mode on loopback. Every form
//! carries the session's CSRF token, compared in constant time.

use super::saml::{Roles, VerifiedAssertion};
use super::secrets::{hash, random_hex};
use crate::store::sessions::{self, StoredSession};
use crate::store::{Store, StoreError};
use cookie::{Cookie, SameSite};

/// The cookie name: `__Host-` (Secure, no Domain, Path=/) when Secure.
pub fn cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-dmx_session"
    } else {
        "dmx_session"
    }
}

/// How long sessions live.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    pub idle: i64,
    pub absolute: i64,
}

/// A live session, as loaded for a request.
#[derive(Debug, Clone)]
pub struct Session {
    pub hash: String,
    pub actor: String,
    /// What the IdP signed us in with, for single logout.
    pub name_id: String,
    pub name_id_format: Option<String>,
    pub session_index: Option<String>,
    pub display: String,
    pub roles: Roles,
    pub csrf: String,
}

/// Why there is no session.
#[derive(Debug, PartialEq, Eq)]
pub enum NoSession {
    Missing,
    Expired,
}

/// Creates a session for the person a verified assertion names (only the
/// SAML module can make one), known as `actor`; returns the cookie value.
pub async fn create(
    store: &Store,
    who: &VerifiedAssertion,
    actor: &str,
    display: &str,
    roles: &Roles,
    now: i64,
) -> Result<Option<String>, StoreError> {
    let (Some(token), Some(csrf)) = (random_hex(32), random_hex(32)) else {
        return Ok(None);
    };
    let stored = StoredSession {
        actor: actor.to_owned(),
        name_id: who.name_id().to_owned(),
        name_id_format: who.name_id_format().map(str::to_owned),
        session_index: who.session_index().map(str::to_owned),
        display: display.to_owned(),
        roles: serde_json::to_string(roles).unwrap_or_default(),
        csrf,
        created_at: now,
        last_seen: now,
    };
    sessions::insert(store, &hash(&token), &stored).await?;
    Ok(Some(token))
}

/// The session for cookie value `token`, refreshed; expired ones are
/// deleted.
pub async fn load(
    store: &Store,
    token: &str,
    life: Lifetimes,
    now: i64,
) -> Result<Result<Session, NoSession>, StoreError> {
    let h = hash(token);
    let Some(s) = sessions::find(store, &h).await? else {
        return Ok(Err(NoSession::Missing));
    };
    if now - s.last_seen >= life.idle || now - s.created_at >= life.absolute {
        sessions::delete(store, &h).await?;
        return Ok(Err(NoSession::Expired));
    }
    // Written at most once a minute (or a quarter of the idle time, if
    // shorter): the idle clock need not be finer.
    if now - s.last_seen >= (life.idle / 4).clamp(1, 60) {
        sessions::touch(store, &h, now).await?;
    }
    Ok(Ok(Session {
        hash: h,
        actor: s.actor,
        name_id: s.name_id,
        name_id_format: s.name_id_format,
        session_index: s.session_index,
        display: s.display,
        roles: serde_json::from_str(&s.roles).unwrap_or_default(),
        csrf: s.csrf,
    }))
}

/// Ends the session with this hash.
pub async fn end(store: &Store, session_hash: &str) -> Result<(), StoreError> {
    sessions::delete(store, session_hash).await
}

/// Deletes sessions past either limit.
pub async fn sweep(store: &Store, life: Lifetimes, now: i64) -> Result<(), StoreError> {
    sessions::sweep(store, now - life.idle, now - life.absolute).await
}

/// Constant-time comparison of a submitted CSRF token with the session's.
pub fn csrf_ok(session: &Session, submitted: &str) -> bool {
    use subtle::ConstantTimeEq as _;
    session.csrf.as_bytes().ct_eq(submitted.as_bytes()).into()
}

/// A cookie of ours: HttpOnly, Path=/, Secure when `secure`.
fn ours(
    name: &'static str,
    value: String,
    same_site: SameSite,
    max_age: i64,
    secure: bool,
) -> String {
    Cookie::build((name, value))
        .path("/")
        .http_only(true)
        .same_site(same_site)
        .max_age(cookie::time::Duration::seconds(max_age))
        .secure(secure)
        .build()
        .to_string()
}

/// The `Set-Cookie` value for a new session.
pub fn set_cookie(token: &str, secure: bool, life: Lifetimes) -> String {
    ours(
        cookie_name(secure),
        token.to_owned(),
        SameSite::Strict,
        life.absolute,
        secure,
    )
}

/// The `Set-Cookie` value that removes the cookie.
pub fn clear_cookie(secure: bool) -> String {
    ours(
        cookie_name(secure),
        String::new(),
        SameSite::Strict,
        0,
        secure,
    )
}

/// The cookie naming the sign-in request this browser started.
fn request_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-dmx_authn"
    } else {
        "dmx_authn"
    }
}

/// `Set-Cookie` for the request this browser starts. The IdP's answer
/// comes back as a cross-site POST, which carries only `SameSite=None`
/// cookies (and those must be Secure); on plain-HTTP loopback the dev IdP
/// is same-site, so `Lax` suffices. It holds only the request id.
pub fn set_request_cookie(request_id: &str, secure: bool, lifetime: i64) -> String {
    let same_site = if secure {
        SameSite::None
    } else {
        SameSite::Lax
    };
    ours(
        request_cookie_name(secure),
        request_id.to_owned(),
        same_site,
        lifetime,
        secure,
    )
}

/// The request id this browser started, from a `Cookie` header.
pub fn request_from_header(header: &str, secure: bool) -> Option<&str> {
    value(header, request_cookie_name(secure))
}

/// The value of cookie `name` in a `Cookie` header, if set and not empty.
fn value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    Cookie::split_parse(header)
        .filter_map(Result::ok)
        .find(|c| c.name() == name && !c.value().is_empty())
        .and_then(|c| c.value_raw())
}

/// The session cookie's value in a `Cookie` header.
pub fn from_header(header: &str, secure: bool) -> Option<&str> {
    value(header, cookie_name(secure))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_is_found_among_others_and_flags_follow_mode() {
        assert_eq!(from_header("a=1; dmx_session=abc; b=2", false), Some("abc"));
        assert_eq!(from_header("dmx_session=abc", true), None);
        assert_eq!(from_header("__Host-dmx_session=x", true), Some("x"));
        let life = Lifetimes {
            idle: 60,
            absolute: 3600,
        };
        let c = set_cookie("t", true, life);
        assert!(
            c.starts_with("__Host-dmx_session=t;")
                && c.contains("HttpOnly")
                && c.contains("SameSite=Strict")
                && c.contains("Secure")
                && c.contains("Path=/")
                && c.contains("Max-Age=3600"),
            "{c}"
        );
        assert!(!set_cookie("t", false, life).contains("Secure"));
        let r = set_request_cookie("id", true, 300);
        assert!(r.contains("SameSite=None") && r.contains("Secure"), "{r}");
        assert!(clear_cookie(false).contains("Max-Age=0"));
    }
}
