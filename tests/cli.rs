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
