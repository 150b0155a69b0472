//! Environment overrides for every key, and secrets from files.
//!
//! The documented example (`deploy/disclosure-mx.toml`, tested to equal the
//! defaults) names every key, set or commented out; each has a variable:
//! `DISCLOSURE_MX_` and its path in capitals, `_` between the parts
//! (`[limits] max_errors` is `DISCLOSURE_MX_LIMITS_MAX_ERRORS`). The value
//! is typed like the example's (lists comma-separated). `NAME_FILE` reads
//! the value from a file instead — systemd's `LoadCredential=` puts
//! credentials in such files — and the secrets (`SECRETS`) may also be
//! given as `<key>_file` in the configuration file itself. An unknown
//! `DISCLOSURE_MX_` variable is an error, as an unknown key is: a misspelt
//! override must not silently do nothing.
//!
//! It works on the TOML tree before deserialisation, so every value is
//! checked by the same types as the file's.

use super::ConfigError;
use toml::{Table, Value};

/// The documented example: every key, with its default.
pub const EXAMPLE: &str = include_str!("../../deploy/disclosure-mx.toml");

const PREFIX: &str = "DISCLOSURE_MX_";

/// Variables of ours that are not configuration keys.
const NOT_KEYS: &[&str] = &[
    // The master key itself (`store::seal`), never in a file.
    "DISCLOSURE_MX_MASTER_KEY",
];

/// Keys that hold secrets: shown masked by `config show`, and accepted as
/// `<key>_file` (the path of a file holding the value). The store URL may
/// carry the database password; a webhook's secret signs its requests.
pub const SECRETS: &[&[&str]] = &[&["store", "url"], &["webhooks", "secret"]];

/// Every documented key path with a sample of its value: the default where
/// the example sets one, else the commented example value. Keys of arrays
/// of tables (`[[webhooks]]`, `[[saml.roles]]`) have no variable.
pub fn documented() -> Vec<(Vec<String>, Value)> {
    let mut out = Vec::new();
    let mut section: Vec<String> = Vec::new();
    let mut in_array = false;
    for line in EXAMPLE.lines() {
        let uncommented = line.trim_start_matches('#').trim();
        if let Some(h) = uncommented.strip_prefix("[[") {
            section = h
                .trim_end_matches("]]")
                .split('.')
                .map(str::to_owned)
                .collect();
            in_array = true;
            continue;
        }
        if let Some(h) = uncommented.strip_prefix('[') {
            if let Some(h) = h.split(']').next() {
                section = h.split('.').map(str::to_owned).collect();
                in_array = false;
            }
            continue;
        }
        if in_array {
            continue;
        }
        let Some((key, rest)) = uncommented.split_once('=') else {
            continue;
        };
        let key = key.trim();
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            continue;
        }
        // The value, without a trailing comment.
        let Ok(sample) = toml::from_str::<Table>(&format!("v = {}", rest.trim()))
            .or_else(|_| {
                let value = rest.split(" #").next().unwrap_or(rest).trim();
                toml::from_str::<Table>(&format!("v = {value}"))
            })
            .map(|mut t| t.remove("v").unwrap_or(Value::Boolean(false)))
        else {
            continue;
        };
        let mut path = section.clone();
        path.push(key.to_owned());
        if !out.iter().any(|(p, _)| *p == path) {
            out.push((path, sample));
        }
    }
    out
}

pub fn env_name(path: &[String]) -> String {
    format!("{PREFIX}{}", path.join("_").to_ascii_uppercase())
}

/// `raw` as a TOML value shaped like `sample`.
fn typed(name: &str, raw: &str, sample: &Value) -> Result<Value, ConfigError> {
    let bad = |what: &str| ConfigError::EnvVar {
        name: name.to_owned(),
        reason: format!("expected {what}"),
    };
    Ok(match sample {
        Value::Boolean(_) => Value::Boolean(match raw.trim() {
            "1" | "true" | "yes" => true,
            "0" | "false" | "no" => false,
            _ => return Err(bad("true or false")),
        }),
        Value::Integer(_) => Value::Integer(raw.trim().parse().map_err(|_| bad("an integer"))?),
        Value::Float(_) => Value::Float(raw.trim().parse().map_err(|_| bad("a number"))?),
        Value::Array(items) => {
            let element = items
                .first()
                .cloned()
                .unwrap_or(Value::String(String::new()));
            Value::Array(
                raw.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| typed(name, s, &element))
                    .collect::<Result<_, _>>()?,
            )
        }
        _ => Value::String(raw.to_owned()),
    })
}

fn set(table: &mut Table, path: &[String], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut t = table;
    for p in parents {
        let entry = t
            .entry(p.clone())
            .or_insert_with(|| Value::Table(Table::new()));
        if !entry.is_table() {
            *entry = Value::Table(Table::new());
        }
        let Value::Table(next) = entry else { return };
        t = next;
    }
    t.insert(last.clone(), value);
}

/// A file's content as a value: its text without the final newline.
fn read_value_file(name: &str, path: &str) -> Result<String, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::EnvVar {
        name: name.to_owned(),
        reason: format!("cannot read {path}: {e}"),
    })?;
    Ok(text.trim_end_matches(['\r', '\n']).to_owned())
}

/// Applies the `DISCLOSURE_MX_` variables `vars` holds onto `table`.
/// Returns the names it applied.
pub fn overlay(
    table: &mut Table,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<Vec<String>, ConfigError> {
    let keys = documented();
    let mut applied = Vec::new();
    for (name, raw) in vars {
        if !name.starts_with(PREFIX)
            || NOT_KEYS.contains(&name.as_str())
            || name.starts_with("DISCLOSURE_MX_TEST_")
        {
            continue;
        }
        let (key_name, raw) = match name.strip_suffix("_FILE") {
            Some(base) if keys.iter().any(|(p, _)| env_name(p) == base) => {
                (base.to_owned(), read_value_file(&name, &raw)?)
            }
            _ => (name.clone(), raw),
        };
        let Some((path, sample)) = keys.iter().find(|(p, _)| env_name(p) == key_name) else {
            return Err(ConfigError::EnvVar {
                name,
                reason: "no such key (see `disclosure-mx config defaults`)".into(),
            });
        };
        set(table, path, typed(&name, &raw, sample)?);
        applied.push(name);
    }
    Ok(applied)
}

/// Replaces each secret's `<key>_file` in `table` by the file's content.
pub fn secret_files(table: &mut Table) -> Result<(), ConfigError> {
    fn visit(t: &mut Table, path: &[&str]) -> Result<(), ConfigError> {
        let Some((first, rest)) = path.split_first() else {
            return Ok(());
        };
        if rest.is_empty() {
            let file_key = format!("{first}_file");
            if let Some(v) = t.remove(&file_key) {
                let Value::String(file) = v else {
                    return Err(ConfigError::EnvVar {
                        name: file_key,
                        reason: "expected a path".into(),
                    });
                };
                if t.contains_key(*first) {
                    return Err(ConfigError::EnvVar {
                        name: file_key,
                        reason: format!("{first} and {first}_file are both set"),
                    });
                }
                t.insert(
                    (*first).to_owned(),
                    Value::String(read_value_file(first, &file)?),
                );
            }
            return Ok(());
        }
        match t.get_mut(*first) {
            Some(Value::Table(next)) => visit(next, rest),
            Some(Value::Array(items)) => {
                for item in items {
                    if let Value::Table(next) = item {
                        visit(next, rest)?;
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
    for path in SECRETS {
        visit(table, path)?;
    }
    Ok(())
}

/// `table` with every secret replaced by `********` (a URL keeps its
/// scheme, user and host, so ops can still read where it points).
pub fn masked(mut table: Table) -> Table {
    fn visit(t: &mut Table, path: &[&str]) {
        let Some((first, rest)) = path.split_first() else {
            return;
        };
        match t.get_mut(*first) {
            Some(Value::String(s)) if rest.is_empty() => *s = mask(s),
            Some(Value::Table(next)) => visit(next, rest),
            Some(Value::Array(items)) => {
                for item in items {
                    if let Value::Table(next) = item {
                        visit(next, rest);
                    }
                }
            }
            _ => {}
        }
    }
    for path in SECRETS {
        visit(&mut table, path);
    }
    table
}

fn mask(value: &str) -> String {
    match url::Url::parse(value) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("********"));
            u.to_string()
        }
        Ok(u) if u.scheme() == "sqlite" => value.to_owned(),
        _ if value.starts_with("sqlite:") => value.to_owned(),
        _ => "********".into(),
    }
}

/// `over` merged onto `base`, tables recursively.
pub fn merged(mut base: Table, over: Table) -> Table {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(Value::Table(b)), Value::Table(o)) => {
                let inner = std::mem::take(b);
                *b = merged(inner, o);
            }
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
    base
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn every_documented_key_has_a_variable() {
        let keys = documented();
        let names: Vec<String> = keys.iter().map(|(p, _)| env_name(p)).collect();
        for expected in [
            "DISCLOSURE_MX_DATA_DIR",
            "DISCLOSURE_MX_SMTP_LISTEN",
            "DISCLOSURE_MX_LIMITS_MAX_ERRORS",
            "DISCLOSURE_MX_LIMITS_GREETING_DELAY",
            "DISCLOSURE_MX_SENDER_AUTH_NAMESERVERS",
            "DISCLOSURE_MX_WEB_LISTEN",
            "DISCLOSURE_MX_SAML_IDP_METADATA",
            "DISCLOSURE_MX_SAML_ORGANIZATION_NAME",
            "DISCLOSURE_MX_METRICS_LISTEN",
            "DISCLOSURE_MX_MTA_STS_MODE",
            "DISCLOSURE_MX_LOG_LEVEL",
        ] {
            assert!(names.iter().any(|n| n == expected), "{expected} missing");
        }
        assert!(
            !names
                .iter()
                .any(|n| n.starts_with("DISCLOSURE_MX_WEBHOOKS_")),
            "arrays of tables have none"
        );
    }

    #[test]
    fn typed_like_the_example_and_unknown_names_refused() {
        let mut t = Table::new();
        let applied = overlay(
            &mut t,
            vars(&[
                ("DISCLOSURE_MX_LIMITS_MAX_ERRORS", "3"),
                ("DISCLOSURE_MX_LIMITS_GREETING_DELAY", "0.25"),
                ("DISCLOSURE_MX_SMTP_LISTEN", "127.0.0.1:25, [::1]:25"),
                ("DISCLOSURE_MX_SMTP_ALLOW_PLAINTEXT", "yes"),
                ("DISCLOSURE_MX_TEST_BACKEND", "ignored"),
                ("HOME", "ignored"),
            ]),
        )
        .unwrap();
        assert_eq!(applied.len(), 4);
        let c: super::super::Config = Value::Table(t).try_into().unwrap();
        assert_eq!(c.limits.max_errors, 3);
        assert_eq!(c.limits.greeting_delay.as_millis(), 250);
        assert_eq!(c.smtp.listen.len(), 2);
        assert!(c.smtp.allow_plaintext);
        let err = overlay(
            &mut Table::new(),
            vars(&[("DISCLOSURE_MX_LIMIT_MAX_ERRORS", "3")]),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("DISCLOSURE_MX_LIMIT_MAX_ERRORS"),
            "{err}"
        );
        let err = overlay(
            &mut Table::new(),
            vars(&[("DISCLOSURE_MX_LIMITS_MAX_ERRORS", "x")]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("an integer"), "{err}");
    }

    #[test]
    fn secrets_from_files_and_masked() {
        let dir = tempfile::tempdir().unwrap();
        let url = dir.path().join("url");
        std::fs::write(&url, "postgres://dmx:s3cret@db.example/dmx\n").unwrap();
        let mut t: Table = toml::from_str(&format!(
            "[store]\nurl_file = {url:?}\n[[webhooks]]\nname = 'a'\nurl = 'https://h.example/'\nsecret_file = {url:?}\n"
        ))
        .unwrap();
        secret_files(&mut t).unwrap();
        assert_eq!(
            t["store"]["url"].as_str(),
            Some("postgres://dmx:s3cret@db.example/dmx")
        );
        let shown = toml::to_string(&masked(t)).unwrap();
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("db.example"), "{shown}");
        let mut t = Table::new();
        overlay(
            &mut t,
            vars(&[("DISCLOSURE_MX_STORE_URL_FILE", url.to_str().unwrap())]),
        )
        .unwrap();
        assert_eq!(
            t["store"]["url"].as_str(),
            Some("postgres://dmx:s3cret@db.example/dmx")
        );
    }
}
