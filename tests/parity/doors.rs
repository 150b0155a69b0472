//! The three doors of `e2e_parity`: each action through the CLI, the JSON
//! API (curl) and the web interface (curl), and what each answered.

use crate::common::sh;
use crate::common::web::{Client, Sso};
use serde_json::Value;
use std::process::Command;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Door {
    Cli,
    Api,
    Web,
}

pub(crate) const DOORS: [Door; 3] = [Door::Cli, Door::Api, Door::Web];

/// What a door answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    Done,
    /// A refusal: its HTTP status (the CLI has none: 0) and its page or
    /// message.
    Refused(u16, String),
}

/// An action on a case.
#[derive(Debug, Clone)]
pub(crate) enum Action {
    Note(String),
    Transition(&'static str, String),
    Breach,
    /// To an analyst (their stable identity), or back to nobody.
    Assign(Option<&'static str>),
    /// Write a report field, or clear it.
    Edit(&'static str, Option<String>),
    /// Make an unflagged case a report.
    Promote,
    /// Junk every case like this one, by a selector.
    Bulk(&'static str),
    /// A status update of this kind, with this text.
    Feedback(&'static str, &'static str),
}

pub(crate) struct Doors {
    pub(crate) sso: Sso,
    pub(crate) web: Client,
    pub(crate) token: String,
}

pub(crate) const ANALYST: &str = "alice@nc.example";
pub(crate) const OUTSIDER: &str = "mads@magenta.example";

impl Doors {
    pub(crate) fn run(&self, door: Door, reference: &str, action: &Action) -> Outcome {
        match door {
            Door::Cli => self.cli(reference, action),
            Door::Api => self.api(reference, action),
            Door::Web => self.web(reference, action),
        }
    }

    pub(crate) fn cli(&self, reference: &str, action: &Action) -> Outcome {
        let mut args = vec!["--for-org", "netcompany", "cases"];
        let stdin = match action {
            Action::Note(text) => {
                args.extend(["note", reference]);
                Some(text.as_str())
            }
            Action::Transition(state, reason) => {
                args.extend(["transition", reference, state]);
                if !reason.is_empty() {
                    args.extend(["--reason", reason.as_str()]);
                }
                None
            }
            Action::Breach => {
                args.extend(["breach", reference]);
                None
            }
            Action::Assign(to) => {
                args.extend(["assign", reference]);
                match to {
                    Some(to) => args.extend(["--to", to]),
                    None => args.push("--none"),
                }
                None
            }
            Action::Edit(field, text) => {
                args.extend(["edit", reference, field]);
                if text.is_none() {
                    args.push("--clear");
                }
                text.as_deref()
            }
            Action::Promote => {
                args.extend(["promote", reference]);
                None
            }
            Action::Bulk(by) => {
                args.extend(["bulk", reference, "--by", by]);
                None
            }
            Action::Feedback(kind, text) => {
                args.extend(["feedback", reference, kind, "--text-stdin"]);
                Some(*text)
            }
        };
        args.extend(["--actor", ANALYST]);
        let (ok, _, err) = self.sso.server.cli(&args, stdin);
        if ok {
            Outcome::Done
        } else {
            // The last line; the lines before are the test config's debug log.
            let message = err
                .lines()
                .rev()
                .find_map(|l| l.strip_prefix("error: "))
                .unwrap_or(&err);
            Outcome::Refused(0, message.to_owned())
        }
    }

    pub(crate) fn api(&self, reference: &str, action: &Action) -> Outcome {
        let (path, body) = match action {
            Action::Note(text) => ("notes", serde_json::json!({ "text": text })),
            Action::Transition(state, reason) => (
                "transition",
                serde_json::json!({ "state": state, "reason": reason }),
            ),
            // The API has no breach route: the row says so.
            Action::Breach => return Outcome::Refused(404, "no breach route".into()),
            Action::Assign(to) => ("assign", serde_json::json!({ "assignee": to })),
            Action::Edit(field, text) => (
                "fields",
                serde_json::json!({ "field": field, "text": text }),
            ),
            Action::Promote => ("promote", serde_json::json!({})),
            Action::Bulk(by) => ("bulk", serde_json::json!({ "action": "junk", "by": by })),
            Action::Feedback(kind, text) => (
                "feedback",
                serde_json::json!({ "kind": kind, "text": text }),
            ),
        };
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("body.json");
        std::fs::write(&file, body.to_string()).unwrap();
        let (ok, out) = sh(Command::new("curl")
            .args(["-sS", "-o", "-", "-w", "\n%{http_code}", "-X", "POST"])
            .args(["-H", &format!("Authorization: Bearer {}", self.token)])
            .args(["-H", "Content-Type: application/json"])
            .arg("--data-binary")
            .arg(format!("@{}", file.display()))
            .arg(format!("{}/api/v1/cases/{reference}/{path}", self.sso.base)));
        assert!(ok, "{out}");
        let (body, status) = out.trim_end().rsplit_once('\n').unwrap();
        let status: u16 = status.parse().unwrap();
        if (200..300).contains(&status) {
            Outcome::Done
        } else {
            let v: Value = serde_json::from_str(body).unwrap();
            Outcome::Refused(status, v["error"].as_str().unwrap().to_owned())
        }
    }

    pub(crate) fn web(&self, reference: &str, action: &Action) -> Outcome {
        // The session's token, from the case list (a foreign case has no
        // page to take it from).
        let csrf = self.web.csrf("/cases");
        let r = match action {
            Action::Note(text) => self.web.post(
                &format!("/cases/{reference}/notes"),
                &[("csrf", &csrf), ("text", text)],
            ),
            Action::Transition(state, reason) => self.web.post(
                &format!("/cases/{reference}/transition"),
                &[
                    ("csrf", &csrf),
                    ("state", state),
                    ("reason", reason.as_str()),
                ],
            ),
            Action::Breach => self
                .web
                .post(&format!("/cases/{reference}/breach"), &[("csrf", &csrf)]),
            Action::Assign(to) => self.web.post(
                &format!("/cases/{reference}/assign"),
                &[("csrf", &csrf), ("assignee", to.unwrap_or(""))],
            ),
            Action::Edit(field, text) => self.web.post(
                &format!("/cases/{reference}/fields"),
                &[
                    ("csrf", &csrf),
                    ("field", field),
                    ("text", text.as_deref().unwrap_or("")),
                ],
            ),
            Action::Promote => self
                .web
                .post(&format!("/cases/{reference}/promote"), &[("csrf", &csrf)]),
            Action::Bulk(by) => self.web.post(
                &format!("/cases/{reference}/bulk"),
                &[("csrf", &csrf), ("by", by)],
            ),
            Action::Feedback(kind, text) => self.web.post(
                &format!("/cases/{reference}/feedback"),
                &[("csrf", &csrf), ("kind", kind), ("text", text)],
            ),
        };
        if r.status == 303 {
            Outcome::Done
        } else {
            Outcome::Refused(r.status, r.text())
        }
    }

    pub(crate) fn show(&self, reference: &str) -> Value {
        let (ok, out, err) = self
            .sso
            .server
            .cli(&["cases", "show", reference, "--json"], None);
        assert!(ok, "{err}");
        serde_json::from_str(&out).unwrap()
    }

    pub(crate) fn audit(&self) -> Vec<Value> {
        let (ok, out, err) = self.sso.server.cli(&["audit", "list", "--json"], None);
        assert!(ok, "{err}");
        serde_json::from_str(&out).unwrap()
    }

    /// Audit entries that change something (views are reads).
    pub(crate) fn changes(&self) -> Vec<Value> {
        self.audit()
            .into_iter()
            .filter(|e| !matches!(e["action"].as_str(), Some("view" | "list" | "sign-in")))
            .collect()
    }
}

/// HTML-escaped as the page shows it.
pub(crate) fn escaped(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}
