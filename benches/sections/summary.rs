//! The regression guard: every figure with its target, as a one-screen
//! table at the end of `make bench` and as `target/bench/summary.json`
//! (an array of `{"name", "value", "unit", "target", "met"}`), so runs can
//! be compared. Ratios against a peer in the same run are the figures that
//! count; absolute ones vary with the machine.

use std::sync::Mutex;

/// What a figure must reach.
#[derive(Clone, Copy)]
pub enum Target {
    AtLeast(f64),
    AtMost(f64),
    /// A count that must come out exact (messages received against sent).
    Exactly(f64),
    /// Shown for context, no target.
    None,
}

struct Figure {
    name: String,
    value: f64,
    unit: &'static str,
    target: Target,
}

static FIGURES: Mutex<Vec<Figure>> = Mutex::new(Vec::new());

/// Records a figure for the summary.
pub fn record(name: impl Into<String>, value: f64, unit: &'static str, target: Target) {
    FIGURES.lock().unwrap().push(Figure {
        name: name.into(),
        value,
        unit,
        target,
    });
}

fn met(f: &Figure) -> Option<bool> {
    match f.target {
        Target::AtLeast(t) => Some(f.value >= t),
        Target::AtMost(t) => Some(f.value <= t),
        Target::Exactly(t) => Some(f.value == t),
        Target::None => None,
    }
}

fn target_text(t: Target) -> String {
    match t {
        Target::AtLeast(v) => format!(">= {v}"),
        Target::AtMost(v) => format!("<= {v}"),
        Target::Exactly(v) => format!("= {v}"),
        Target::None => String::new(),
    }
}

/// Prints the table and writes the JSON; the figures missed are listed
/// last.
pub fn finish() {
    let figures = FIGURES.lock().unwrap();
    if figures.is_empty() {
        return;
    }
    println!("\n== summary ({} figures) ==", figures.len());
    println!(
        "{:<58} {:>12} {:<8} {:>10}  ",
        "figure", "value", "unit", "target"
    );
    for f in figures.iter() {
        let mark = match met(f) {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "",
        };
        println!(
            "{:<58} {:>12.2} {:<8} {:>10}  {mark}",
            f.name,
            f.value,
            f.unit,
            target_text(f.target)
        );
    }
    let missed: Vec<&str> = figures
        .iter()
        .filter(|f| met(f) == Some(false))
        .map(|f| f.name.as_str())
        .collect();
    if missed.is_empty() {
        println!("every target met");
    } else {
        println!("targets missed: {}", missed.join("; "));
    }
    let json: Vec<serde_json::Value> = figures
        .iter()
        .map(|f| {
            let target = match f.target {
                Target::AtLeast(v) | Target::AtMost(v) | Target::Exactly(v) => {
                    serde_json::json!(v)
                }
                Target::None => serde_json::Value::Null,
            };
            serde_json::json!({
                "name": f.name,
                "value": (f.value * 1000.0).round() / 1000.0,
                "unit": f.unit,
                "target": target,
                "target_kind": match f.target {
                    Target::AtLeast(_) => "at-least",
                    Target::AtMost(_) => "at-most",
                    Target::Exactly(_) => "exactly",
                    Target::None => "none",
                },
                "met": met(f),
            })
        })
        .collect();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("summary.json");
    std::fs::write(&path, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    println!("written: {}", path.display());
}
