//! The command line through its public door: configuration errors are
//! precise, and `messages list` reads the same configuration as `serve`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_disclosure-mx");

fn run(dir: &std::path::Path, config: &str, args: &[&str]) -> (bool, String, String) {
    let path = dir.join("c.toml");
    std::fs::write(&path, config).unwrap();
    let out = Command::new(BIN)
        .args(args)
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_misspelt_key_fails_naming_the_file_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, err) = run(dir.path(), "[limits]\nmax_mesage_size = 5\n", &["serve"]);
    assert!(!ok);
    assert!(err.contains("c.toml"), "{err}");
    assert!(err.contains("max_mesage_size"), "{err}");
}

#[test]
fn invalid_values_are_refused_with_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, err) = run(dir.path(), "[smtp]\nhostname = \"bad host\"\n", &["serve"]);
    assert!(!ok);
    assert!(err.contains("smtp.hostname"), "{err}");
    let (ok, _, err) = run(dir.path(), "[tls]\ncert_file = \"/x.pem\"\n", &["serve"]);
    assert!(!ok);
    assert!(
        err.contains("cert_file and key_file must be set together"),
        "{err}"
    );
}

#[test]
fn an_unsupported_store_url_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "data_dir = {:?}\n[store]\nurl = \"mysql://localhost/dmx\"\n",
        dir.path().join("data")
    );
    let (ok, _, err) = run(dir.path(), &config, &["messages", "list"]);
    assert!(!ok);
    assert!(err.contains("is not supported: use sqlite:PATH"), "{err}");
}

#[test]
fn messages_list_on_a_new_store_is_empty_json_and_a_table_header() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!("data_dir = {:?}\n", dir.path().join("data"));
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    let (ok, out, err) = run(dir.path(), &config, &["messages", "list", "--json"]);
    assert!(ok, "{err}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out).unwrap(),
        serde_json::json!([])
    );
    let (ok, out, _) = run(dir.path(), &config, &["messages", "list"]);
    assert!(ok);
    assert!(out.starts_with("QUEUE ID"), "{out}");
}

#[test]
fn environment_overrides_apply_after_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, "[store]\nurl = \"sqlite:/nonexistent/dir/x.db\"\n").unwrap();
    let out = Command::new(BIN)
        .args(["messages", "list", "--json", "--config"])
        .arg(&path)
        .env(
            "DISCLOSURE_MX_STORE_URL",
            format!("sqlite:{}", dir.path().join("env.db").display()),
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("env.db").exists());
}

#[test]
fn a_bad_policy_stops_start_up_naming_the_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/policies/netcompany.toml"
    ))
    .unwrap();
    std::fs::write(
        policies.join("broken.toml"),
        shipped.replace(
            "feedback_within = \"15 business days\"",
            "feedback_within = \"soon\"",
        ),
    )
    .unwrap();
    let config = format!(
        "data_dir = {:?}\npolicies_dir = {policies:?}\n",
        dir.path().join("data")
    );
    let (ok, _, err) = run(dir.path(), &config, &["serve"]);
    assert!(!ok);
    assert!(err.contains("broken.toml"), "{err}");
    assert!(err.contains("`service_levels.feedback_within`"), "{err}");
    assert!(
        !dir.path().join("data/listening").exists(),
        "never listened"
    );
}

#[test]
fn with_no_policy_and_no_accept_for_nothing_would_be_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "data_dir = {:?}\npolicies_dir = {:?}\n",
        dir.path().join("data"),
        dir.path().join("missing")
    );
    let (ok, _, err) = run(dir.path(), &config, &["serve"]);
    assert!(!ok);
    assert!(err.contains("no recipient would be accepted"), "{err}");
}

#[test]
fn policies_check_shows_each_organisation_and_its_deadlines() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "policies_dir = {:?}\n",
        concat!(env!("CARGO_MANIFEST_DIR"), "/policies")
    );
    let (ok, out, err) = run(dir.path(), &config, &["policies", "check"]);
    assert!(ok, "{err}");
    assert!(out.contains("Magenta (magenta)"), "{out}");
    assert!(
        out.contains("receipt within:  2 business days; feedback within: 2 weeks"),
        "{out}"
    );
    assert!(out.contains("Netcompany (netcompany)"), "{out}");
    assert!(
        out.contains("subject flags:   Responsible disclosure"),
        "{out}"
    );
    assert!(
        out.contains("feedback within: 15 business days (preferred)"),
        "{out}"
    );
    assert_eq!(
        out.matches("received now ->  acknowledge by ").count(),
        2,
        "{out}"
    );
}

#[test]
fn config_show_is_the_effective_configuration_with_secrets_masked() {
    let dir = tempfile::tempdir().unwrap();
    // A credential file, as systemd's LoadCredential= provides one.
    let secret = dir.path().join("hook-secret");
    std::fs::write(&secret, "a-webhook-secret-of-some-length\n").unwrap();
    let url = dir.path().join("store-url");
    std::fs::write(&url, "postgres://dmx:pg-password@db.example/dmx\n").unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        format!(
            "[limits]\nmax_errors = 5\n[[webhooks]]\nname = \"tracker\"\nurl = \"https://t.example/hook\"\nsecret_file = {secret:?}\n"
        ),
    )
    .unwrap();
    let show = |envs: &[(&str, String)]| {
        let out = Command::new(BIN)
            .args(["config", "show", "--config"])
            .arg(&config)
            .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, out, err) = show(&[
        ("DISCLOSURE_MX_LIMITS_IDLE_TIMEOUT", "60".into()),
        ("DISCLOSURE_MX_STORE_URL_FILE", url.display().to_string()),
    ]);
    assert!(ok, "{err}");
    let shown: toml::Table = toml::from_str(&out).unwrap();
    assert_eq!(
        shown["limits"]["max_errors"].as_integer(),
        Some(5),
        "the file"
    );
    assert_eq!(
        shown["limits"]["idle_timeout"].as_integer(),
        Some(60),
        "the environment"
    );
    assert_eq!(
        shown["limits"]["max_recipients"].as_integer(),
        Some(100),
        "a default"
    );
    assert_eq!(shown["webhooks"][0]["secret"].as_str(), Some("********"));
    assert!(
        shown["store"]["url"]
            .as_str()
            .unwrap()
            .contains("db.example")
    );
    for secret in ["pg-password", "a-webhook-secret"] {
        assert!(!out.contains(secret), "{secret} shown: {out}");
    }
    // A misspelt variable is an error, like a misspelt key.
    let (ok, _, err) = show(&[("DISCLOSURE_MX_LIMIT_MAX_ERRORS", "3".into())]);
    assert!(
        !ok && err.contains("DISCLOSURE_MX_LIMIT_MAX_ERRORS: no such key"),
        "{err}"
    );
    // The defaults are the documented example.
    let out = Command::new(BIN)
        .args(["config", "defaults"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        include_str!("../deploy/disclosure-mx.toml")
    );
}
