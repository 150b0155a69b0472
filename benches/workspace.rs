//! Seeds a store with realistic cases for the workspace bench
//! (`benches/workspace.sh`): `cargo bench --bench workspace -- CASES`, with
//! `DISCLOSURE_MX_DATA_DIR` naming the data directory (the store and its
//! master key are made there, as `serve` would).
//!
//! Every case goes through the store's own write path — the case row with
//! its sealed fields, assets, suggestions, the report's text as the first
//! message of its conversation, the timeline — and the blind search index
//! (`cases::search::index_case`), in transactions of 250 cases like
//! intake's batches. One case also gets a 200-message conversation. The
//! texts are drawn from a vocabulary with a Zipf-like spread, so common
//! words are common and each case has words of its own (`markerN`).
#![allow(clippy::expect_used)]

use disclosure_mx::cases::search;
use disclosure_mx::config::Config;
use disclosure_mx::model::case::{CaseKind, CaseState};
use disclosure_mx::model::report::{Asset, Language, ReportFields};
use disclosure_mx::model::thread::MessageKind;
use disclosure_mx::store::Store;
use disclosure_mx::store::cases::{self as case_store, NewCase, NewMessage};
use std::time::Instant;

/// A small, fast, deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Roughly Zipf: low indexes far more often.
    fn zipf(&mut self, n: usize) -> usize {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        ((n as f64).powf(u) - 1.0) as usize
    }
}

const VULNS: &[&str] = &[
    "stored XSS",
    "reflected XSS",
    "SQL injection",
    "IDOR",
    "open redirect",
    "SSRF",
    "missing authorization",
    "exposed backup",
    "weak TLS configuration",
    "subdomain takeover",
];
const HOSTS: &[&str] = &[
    "www.netcompany.example",
    "support.netcompany.example",
    "files.netcompany.example",
    "api.netcompany.example",
    "mitid.magenta.example",
    "shop.magenta.example",
    "portal.magenta.example",
];
const STEMS: &[&str] = &[
    "account",
    "admin",
    "agent",
    "api",
    "attacker",
    "auth",
    "backup",
    "browser",
    "cache",
    "callback",
    "comment",
    "cookie",
    "customer",
    "data",
    "endpoint",
    "export",
    "field",
    "file",
    "header",
    "invoice",
    "login",
    "mail",
    "order",
    "page",
    "parameter",
    "password",
    "payload",
    "portal",
    "profile",
    "query",
    "redirect",
    "request",
    "response",
    "script",
    "search",
    "server",
    "session",
    "token",
    "upload",
    "user",
];

/// Some 5,000 distinct words: stems with endings and numbers, like the
/// long tail of real reports.
fn vocabulary() -> Vec<String> {
    let mut v: Vec<String> = [
        "the", "a", "of", "to", "and", "in", "is", "it", "that", "for", "on", "with", "as", "this",
        "be", "by", "an", "can", "any", "which", "when", "from", "all", "not",
    ]
    .iter()
    .map(|w| (*w).to_owned())
    .collect();
    for stem in STEMS {
        v.push((*stem).to_owned());
        for end in ["s", "ed", "ing", "er", "able"] {
            v.push(format!("{stem}{end}"));
        }
        for n in 0..120 {
            v.push(format!("{stem}{n}"));
        }
    }
    v
}

fn sentence(rng: &mut Rng, vocab: &[String], words: usize) -> String {
    let mut s: Vec<&str> = (0..words)
        .map(|_| vocab[rng.zipf(vocab.len())].as_str())
        .collect();
    s.push(".");
    s.join(" ")
}

fn paragraph(rng: &mut Rng, vocab: &[String], sentences: usize) -> String {
    (0..sentences)
        .map(|_| {
            let n = 8 + rng.below(12);
            sentence(rng, vocab, n)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn case(rng: &mut Rng, vocab: &[String], n: usize, start: i64) -> NewCase {
    let org = if rng.below(10) < 6 {
        "netcompany"
    } else {
        "magenta"
    };
    let vuln = VULNS[rng.below(VULNS.len())];
    let host = HOSTS[rng.below(HOSTS.len())];
    let received_at = start + (n as i64) * 600 + rng.below(600) as i64;
    let sentences = 3 + rng.below(4);
    let description = format!(
        "The {vuln} on https://{host}/ lets an attacker reach other customers' data; marker{n}. {}",
        paragraph(rng, vocab, sentences)
    );
    let steps = (1..=3 + rng.below(3))
        .map(|i| {
            let words = 6 + rng.below(8);
            format!("{i}. {}", sentence(rng, vocab, words))
        })
        .collect::<Vec<_>>()
        .join("\n");
    let impact = paragraph(rng, vocab, 2);
    let mitigation = paragraph(rng, vocab, 1);
    let cve = (rng.below(10) == 0).then(|| format!("CVE-2026-{}", 1000 + rng.below(50_000)));
    let fields = ReportFields {
        description: Some(description.clone()),
        steps: Some(steps.clone()),
        impact: Some(impact.clone()),
        mitigation: Some(mitigation.clone()),
        contact: Some("e-mail".into()),
        channel: Some("email".into()),
        cve_ids: cve.iter().cloned().collect(),
        cwe_ids: vec![format!("CWE-{}", [79, 89, 639, 918, 601][rng.below(5)])],
        assets: vec![Asset {
            value: format!("https://{host}/"),
            in_scope: true,
        }],
        language: Some(Language::En),
        ..ReportFields::default()
    };
    let text = format!(
        "Hello,\n\nDescription: {description}\n\nSteps to reproduce:\n{steps}\n\nImpact: {impact}\n\nMitigation: {mitigation}\n\nRegards,\nresearcher{}\n",
        rng.below(5000)
    );
    NewCase {
        org: org.into(),
        state: [
            CaseState::New,
            CaseState::Acknowledged,
            CaseState::Triaged,
            CaseState::Closed,
        ][rng.below(4)],
        reference_prefix: if org == "netcompany" { "NC" } else { "MAG" }.into(),
        kind: CaseKind::Disclosure,
        subject: format!("Responsible disclosure: {vuln} in {host}"),
        reporter_name: Some(format!("Researcher {}", rng.below(5000))),
        reporter_address: Some(format!("r{}@researcher.example", rng.below(5000))),
        anonymous: false,
        fields,
        suggestions: Vec::new(),
        tls_version: Some("TLSv1.3".into()),
        tls_cipher: Some("TLS13_AES_256_GCM_SHA384".into()),
        authentication_results: None,
        message_id: Some(format!("<seed-{n}@researcher.example>")),
        received_at,
        acknowledge_by: received_at + 2 * 86_400,
        feedback_by: received_at + 14 * 86_400,
        message_row: 0,
        evidence: Vec::new(),
        unparsed_reason: None,
        text: Some(text),
        sender: "r@researcher.example".into(),
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let total: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let config = Config::load(None).expect("config");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        std::fs::create_dir_all(&config.data_dir).expect("data dir");
        let store = Store::open(
            &config.store.url,
            &config.data_dir,
            &config.store.key_path(&config.data_dir),
        )
        .await
        .expect("store");
        let sealer = store.sealer();
        let vocab = vocabulary();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let start = jiff::Timestamp::now().as_second() - (total as i64) * 600;
        let began = Instant::now();
        let mut conversation_case = None;
        for chunk in (0..total).collect::<Vec<_>>().chunks(250) {
            let mut tx = store.write().await.expect("tx");
            for &n in chunk {
                let new = case(&mut rng, &vocab, n, start);
                let (id, reference) = case_store::insert(&mut tx, sealer, &new).await.expect("insert");
                search::index_case(&mut tx, sealer, id, &new, "192.0.2.1")
                    .await
                    .expect("index");
                if n == total / 2 {
                    conversation_case = Some((id, reference, new.org.clone()));
                }
            }
            tx.commit().await.expect("commit");
        }
        let seeded = began.elapsed();
        let (id, reference, org) = conversation_case.expect("a case in the middle");
        let mut tx = store.write().await.expect("tx");
        for i in 0..200 {
            let m = NewMessage {
                kind: MessageKind::FollowUp,
                message_row: None,
                at: start + (total as i64) * 300 + i * 60,
                from_reporter: i % 2 == 0,
                token: true,
                sender: "r@researcher.example".into(),
                subject: format!("Re: [{reference}] Responsible disclosure ({i})"),
                text: paragraph(&mut rng, &vocab, 4),
                tls_version: Some("TLSv1.3".into()),
            };
            case_store::add_follow_up(&mut tx, sealer, id, &m, &[]).await.expect("follow-up");
            search::index(&mut tx, sealer, &org, id, &[&m.subject, &m.text])
                .await
                .expect("index");
        }
        // Everything went through the index: no rebuild at start-up.
        disclosure_mx::store::search::mark_indexed(&mut tx, search::INDEX_VERSION)
            .await
            .expect("mark");
        tx.commit().await.expect("commit");
        store.close().await;
        println!(
            "seeded {total} cases in {:.1} s ({:.0} cases/s); {reference} has a 200-message conversation",
            seeded.as_secs_f64(),
            total as f64 / seeded.as_secs_f64()
        );
        println!("conversation-case {reference}");
    });
}
