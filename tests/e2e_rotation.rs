//! Master-key rotation while the service runs, killed with SIGKILL at five
//! random points and resumed: at every point every case still opens, and
//! at the end the old key file is gone, the service restarted with only
//! the new key reads everything exactly as before, the audit chain
//! verifies and search still finds what it found.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{BIN, INTAKE_ON, Opts, Server, deliver_from, fixture};
use rand::Rng;
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

fn shows(server: &Server) -> BTreeMap<String, Value> {
    let (ok, out, err) = server.cli(&["cases", "list", "--json"], None);
    assert!(ok, "{err}");
    let list: Vec<Value> = serde_json::from_str(&out).unwrap();
    list.iter()
        .map(|c| {
            let r = c["reference"].as_str().unwrap().to_owned();
            (r.clone(), server.case_json(&r))
        })
        .collect()
}

fn key_files(server: &Server) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(server.data_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("master.key"))
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_killed_five_times_loses_nothing() {
    let mut server = Server::start(Opts {
        intake: INTAKE_ON,
        ..Opts::default()
    });
    let reports = [
        "en-netcompany-xss.eml",
        "da-magenta-idor.eml",
        "screenshots-netcompany.eml",
        "anonymous-magenta.eml",
    ];
    for (i, name) in reports.iter().enumerate() {
        let to = if i % 2 == 0 {
            "security@netcompany.example"
        } else {
            "security@magenta.example"
        };
        deliver_from(&server, "alice@researcher.example", to, &fixture(name)).await;
    }
    server.wait_filed(reports.len());
    let before = shows(&server);
    let first = before.keys().next().unwrap().clone();
    let (ok, search_before, err) =
        server.cli(&["cases", "list", "--json", "--search", "XSS"], None);
    assert!(ok, "{err}");
    let original_key = std::fs::read_to_string(server.data_dir().join("master.key")).unwrap();

    // SIGKILL at five random points, each after a random delay; between
    // kills the store opens and a case reads back unchanged.
    let mut rng = rand::thread_rng();
    let mut kills = 0;
    let mut attempts = 0;
    let mut mid_rotation = 0;
    while kills < 5 {
        attempts += 1;
        assert!(attempts < 60, "the rotation kept finishing before the kill");
        let mut child = Command::new(BIN)
            .args(["keys", "rotate", "--batch", "1", "--config"])
            .arg(server.config_path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.gen_range(0..150)));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            kills += 1;
        }
        let _ = child.wait();
        // A kill between the key switch and the retirement leaves the old
        // key kept beside the new one.
        if key_files(&server).len() > 1 {
            mid_rotation += 1;
        }
        assert_eq!(
            server.case_json(&first),
            before[&first],
            "after kill {kills}"
        );
        if kills == 2 {
            // Mail keeps arriving mid-rotation.
            deliver_from(
                &server,
                "bob@researcher.example",
                "security@netcompany.example",
                &fixture("forwarded-netcompany.eml"),
            )
            .await;
        }
    }

    assert!(
        mid_rotation >= 2,
        "only {mid_rotation} of {kills} kills landed mid-rotation"
    );
    eprintln!("{kills} kills, {mid_rotation} mid-rotation, {attempts} attempts");

    // To the end.
    let (ok, out, err) = server.cli(&["keys", "rotate", "--batch", "3"], None);
    assert!(ok, "{out}{err}");
    assert!(out.contains("retired and deleted"), "{out}");
    assert_eq!(
        key_files(&server),
        ["master.key"],
        "the old keys are deleted"
    );
    let new_key = std::fs::read_to_string(server.data_dir().join("master.key")).unwrap();
    assert_ne!(new_key, original_key);

    // Only the new key exists now: a fresh start must read everything.
    server.kill9();
    server.restart();
    let filed = server.wait_filed(reports.len() + 1);
    assert_eq!(filed.len(), reports.len() + 1);
    let after = shows(&server);
    // The report that came mid-rotation may be a likely duplicate of
    // earlier ones; apart from that, every case reads exactly as before,
    // and every duplicate found before (through the blind index) still is.
    for (reference, shown) in &before {
        let (mut was, mut now) = (shown.clone(), after[reference].clone());
        let (dup_was, dup_now) = (was["duplicates"].take(), now["duplicates"].take());
        assert_eq!(now, was, "{reference} changed");
        for d in dup_was.as_array().unwrap() {
            assert!(
                dup_now
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|n| n["reference"] == d["reference"]),
                "{reference}: duplicate {} lost",
                d["reference"]
            );
        }
    }
    let (ok, out, err) = server.cli(&["audit", "verify"], None);
    assert!(ok, "{out}{err}");
    let (_, search_after, _) = server.cli(&["cases", "list", "--json", "--search", "XSS"], None);
    assert_eq!(search_after, search_before, "search finds the same cases");
    let (_, audit, _) = server.cli(&["audit", "list", "--json"], None);
    assert!(audit.contains("key-rotated"), "{audit}");
    // Nothing in the database is left under any other key: raw messages
    // of every case read back.
    for reference in before.keys() {
        let (ok, _, err) = server.cli(&["cases", "raw", reference], None);
        assert!(ok, "{reference}: {err}");
    }
}
