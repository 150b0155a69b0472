//! Browser sessions of signed-in analysts.
//!
//! The cookie holds 256 random bits; the database keeps only their SHA-256,
//! so a copy of the database opens no session. Sessions end after
//! `session_idle_seconds` without a request, `session_absolute_seconds` after
//! sign-in, or at sign-out. The cookie is HttpOnly and SameSite=Strict, and
//! Secure unless the interface runs in dev mode on loopback. Every form
//! carries the session's CSRF token, compared in constant time.

use super::saml::{Roles, VerifiedAssertion};
use super::tokens::{hash, random_hex};
use sqlx::{AnyConnection, Row};

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
/// SAML module can make one); returns the cookie value.
pub async fn create(
    conn: &mut AnyConnection,
    who: &VerifiedAssertion,
    display: &str,
    roles: &Roles,
    now: i64,
) -> Result<Option<String>, sqlx::Error> {
    let (Some(token), Some(csrf)) = (random_hex(32), random_hex(32)) else {
        return Ok(None);
    };
    sqlx::query(
        "INSERT INTO web_sessions (hash, actor, display, roles, csrf, created_at, last_seen)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(hash(&token))
    .bind(who.name_id())
    .bind(display)
    .bind(serde_json::to_string(roles).unwrap_or_default())
    .bind(csrf)
    .bind(now)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(Some(token))
}

/// The session for cookie value `token`, refreshed; expired ones are
/// deleted.
pub async fn load(
    conn: &mut AnyConnection,
    token: &str,
    life: Lifetimes,
    now: i64,
) -> Result<Result<Session, NoSession>, sqlx::Error> {
    let h = hash(token);
    let Some(r) = sqlx::query(
        "SELECT actor, display, roles, csrf, created_at, last_seen FROM web_sessions WHERE hash = $1",
    )
    .bind(&h)
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(Err(NoSession::Missing));
    };
    let created: i64 = r.try_get("created_at")?;
    let last_seen: i64 = r.try_get("last_seen")?;
    if now - last_seen >= life.idle || now - created >= life.absolute {
        end(conn, &h).await?;
        return Ok(Err(NoSession::Expired));
    }
    // Written at most once a minute (or a quarter of the idle time, if
    // shorter): the idle clock need not be finer.
    if now - last_seen >= (life.idle / 4).clamp(1, 60) {
        sqlx::query("UPDATE web_sessions SET last_seen = $1 WHERE hash = $2")
            .bind(now)
            .bind(&h)
            .execute(&mut *conn)
            .await?;
    }
    Ok(Ok(Session {
        hash: h,
        actor: r.try_get("actor")?,
        display: r.try_get("display")?,
        roles: serde_json::from_str(&r.try_get::<String, _>("roles")?).unwrap_or_default(),
        csrf: r.try_get("csrf")?,
    }))
}

/// Ends the session with this hash.
pub async fn end(conn: &mut AnyConnection, session_hash: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM web_sessions WHERE hash = $1")
        .bind(session_hash)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Deletes sessions past either limit.
pub async fn sweep(conn: &mut AnyConnection, life: Lifetimes, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM web_sessions WHERE last_seen <= $1 OR created_at <= $2")
        .bind(now - life.idle)
        .bind(now - life.absolute)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Constant-time comparison of a submitted CSRF token with the session's.
pub fn csrf_ok(session: &Session, submitted: &str) -> bool {
    let (a, b) = (session.csrf.as_bytes(), submitted.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The `Set-Cookie` value for a new session.
pub fn set_cookie(token: &str, secure: bool, life: Lifetimes) -> String {
    format!(
        "{}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        cookie_name(secure),
        life.absolute,
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that removes the cookie.
pub fn clear_cookie(secure: bool) -> String {
    format!(
        "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
        cookie_name(secure),
        if secure { "; Secure" } else { "" }
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
    format!(
        "{}={request_id}; Path=/; HttpOnly; Max-Age={lifetime}; {}",
        request_cookie_name(secure),
        if secure {
            "SameSite=None; Secure"
        } else {
            "SameSite=Lax"
        }
    )
}

/// The request id this browser started, from a `Cookie` header.
pub fn request_from_header(header: &str, secure: bool) -> Option<&str> {
    cookie(header, request_cookie_name(secure))
}

fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|part| {
        let (k, v) = part.trim().split_once('=')?;
        (k == name && !v.is_empty()).then_some(v)
    })
}

/// The session cookie's value in a `Cookie` header.
pub fn from_header(header: &str, secure: bool) -> Option<&str> {
    cookie(header, cookie_name(secure))
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
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.ends_with("Secure"));
        assert!(!set_cookie("t", false, life).contains("Secure"));
    }
}
