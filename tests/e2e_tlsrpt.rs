//! TLS reports (RFC 8460) mailed to the TLS-RPT address: accepted,
//! recorded for the delivery-health view, not made cases; the sending
//! MTAs' details sealed; a mail that is no report is quarantined.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{INTAKE_ON, Opts, Server, b64, deliver_from, wait_until};
use serde_json::Value;
use std::io::Write;
use std::time::Duration;

const TLS_RPT: &str = "tls-reports@magenta.example";

fn report_json() -> String {
    serde_json::json!({
        "organization-name": "Sender Example Inc.",
        "date-range": {
            "start-datetime": "2026-11-28T00:00:00Z",
            "end-datetime": "2026-11-28T23:59:59Z"
        },
        "contact-info": "smtp-tls-reporting@sender.example",
        "report-id": "2026-11-28T00:00:00Z_magenta.example",
        "policies": [{
            "policy": {
                "policy-type": "sts",
                "policy-string": ["version: STSv1", "mode: testing", "mx: mx.test", "max_age: 604800"],
                "policy-domain": "magenta.example",
                "mx-host": ["mx.test"]
            },
            "summary": {
                "total-successful-session-count": 100,
                "total-failure-session-count": 3
            },
            "failure-details": [
                {
                    "result-type": "certificate-expired",
                    "sending-mta-ip": "192.0.2.99",
                    "receiving-mx-hostname": "mx.test",
                    "failed-session-count": 2
                },
                {
                    "result-type": "starttls-not-supported",
                    "sending-mta-ip": "192.0.2.98",
                    "receiving-mx-hostname": "mx.test",
                    "failed-session-count": 1
                }
            ]
        }]
    })
    .to_string()
}

fn report_mail() -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(report_json().as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    format!(
        "From: noreply-smtp-tls-reporting@sender.example\r\nTo: {TLS_RPT}\r\n\
         Subject: Report Domain: magenta.example Submitter: sender.example Report-ID: <r1@sender.example>\r\n\
         Message-ID: <r1@sender.example>\r\nTLS-Report-Domain: magenta.example\r\nTLS-Report-Submitter: sender.example\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=\"tlsrpt\"; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\nThis is an aggregate TLS report from sender.example\r\n\
         --b\r\nContent-Type: application/tlsrpt+gzip\r\nContent-Transfer-Encoding: base64\r\n\
         Content-Disposition: attachment; filename=\"sender.example!magenta.example!1796256000!1796342399.json.gz\"\r\n\r\n\
         {}\r\n--b--\r\n",
        b64(&gz)
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_reports_become_delivery_health_not_cases() {
    let server = Server::start(Opts {
        intake: INTAKE_ON,
        extra: format!("[mta_sts]\ntls_rpt = [\"mailto:{TLS_RPT}\"]\n"),
        ..Opts::default()
    });
    deliver_from(
        &server,
        "noreply-smtp-tls-reporting@sender.example",
        TLS_RPT,
        &report_mail(),
    )
    .await;
    deliver_from(
        &server,
        "someone@sender.example",
        TLS_RPT,
        b"From: someone@sender.example\r\nTo: tls-reports@magenta.example\r\nSubject: hello\r\n\r\nnot a report\r\n",
    )
    .await;
    wait_until("both settled", Duration::from_secs(30), || {
        server
            .messages()
            .iter()
            .all(|m| m["state"] == "filed" || m["state"] == "quarantined")
    });
    let messages = server.messages();
    let states: Vec<&str> = messages
        .iter()
        .map(|m| m["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["filed", "quarantined"], "{messages:?}");
    let (_, out, _) = server.cli(&["cases", "list", "--json"], None);
    let cases: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert!(
        cases.iter().all(|c| c["kind"] == "unparsed"),
        "a TLS report is no case: {out}"
    );

    let (ok, out, err) = server.cli(&["delivery", "health", "--json", "--days", "36500"], None);
    assert!(ok, "{err}");
    let rows: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(rows.len(), 1, "{out}");
    let h = &rows[0];
    assert_eq!(h["organization"], "Sender Example Inc.");
    assert_eq!(h["policy_domain"], "magenta.example");
    assert_eq!(
        (h["successful"].as_u64(), h["failed"].as_u64()),
        (Some(100), Some(3))
    );
    assert_eq!(
        h["failures"],
        serde_json::json!([["certificate-expired", 2], ["starttls-not-supported", 1]])
    );
    let (ok, table, _) = server.cli(&["delivery", "health", "--days", "36500"], None);
    assert!(ok && table.contains("certificate-expired 2"), "{table}");
    // About the MX, not an organisation's cases: operators only.
    let (ok, _, err) = server.cli(&["--for-org", "magenta", "delivery", "health"], None);
    assert!(!ok, "{err}");
    // The sending MTAs' addresses are sealed at rest.
    let db = server.database_bytes();
    assert!(
        !db.windows(10).any(|w| w == b"192.0.2.99"),
        "a sending MTA's address in clear"
    );
}
