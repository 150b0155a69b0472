//! The layering rules, checked on the source: only `src/store/` speaks SQL
//! (no `sqlx` anywhere else), and no two top-level modules import each
//! other, directly or round a longer loop. A module's imports are the
//! `crate::<module>` paths in its files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file under `src/` belongs to (None for the crate
/// root files).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel.components().next()?.as_os_str().to_str()?.to_owned();
    match first.as_str() {
        "lib.rs" | "main.rs" => None,
        name => Some(name.trim_end_matches(".rs").to_owned()),
    }
}

/// Every `crate::name` in `text`.
fn crate_paths(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("crate::") {
        let before = rest[..i].chars().next_back();
        rest = &rest[i + "crate::".len()..];
        // `disclosure_mx::` or a longer identifier ending in `crate`.
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            out.insert(name);
        }
    }
    out
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn only_the_store_speaks_sql() {
    let src = src();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let store = src.join("store");
    let offenders: Vec<String> = files
        .iter()
        .filter(|f| !f.starts_with(&store))
        .flat_map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            text.lines()
                .enumerate()
                .filter(|(_, l)| l.contains("sqlx::") || l.contains("use sqlx"))
                .map(|(n, l)| format!("{}:{}: {}", f.display(), n + 1, l.trim()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        offenders.is_empty(),
        "SQL belongs in src/store/:\n{}",
        offenders.join("\n")
    );
}

/// The module graph: who imports whom.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = src();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let Some(module) = module_of(&src, f) else {
            continue;
        };
        let text = std::fs::read_to_string(f).unwrap();
        let deps = graph.entry(module.clone()).or_default();
        for dep in crate_paths(&text) {
            if dep != module {
                deps.insert(dep);
            }
        }
    }
    let known: BTreeSet<String> = graph.keys().cloned().collect();
    for deps in graph.values_mut() {
        deps.retain(|d| known.contains(d));
    }
    graph
}

/// A cycle through `graph`, if there is one, as the modules on it.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == node) {
            let mut loop_ = path[at..].to_vec();
            loop_.push(node.to_owned());
            return Some(loop_);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, graph, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(found) = visit(node, graph, &mut Vec::new(), &mut done) {
            return Some(found);
        }
    }
    None
}

#[test]
fn no_two_top_level_modules_import_each_other() {
    let graph = graph();
    assert!(graph.len() >= 10, "modules found: {graph:?}");
    if let Some(found) = cycle(&graph) {
        panic!(
            "import cycle: {}\nthe graph: {graph:#?}",
            found.join(" -> ")
        );
    }
    // The layers the design names, checked by name as well.
    let imports = |a: &str, b: &str| graph.get(a).is_some_and(|d| d.contains(b));
    for below in ["policy", "model"] {
        assert!(
            graph[below].is_empty(),
            "{below} imports {:?}",
            graph[below]
        );
    }
    for (lower, upper) in [
        ("smtp", "store"),
        ("smtp", "intake"),
        ("smtp", "cases"),
        ("store", "cases"),
        ("intake", "store"),
        ("intake", "cases"),
        ("cases", "web"),
        ("cases", "cli"),
    ] {
        assert!(!imports(lower, upper), "{lower} must not import {upper}");
    }
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let g = |edges: &[(&str, &str)]| {
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (a, b) in edges {
            graph.entry((*a).into()).or_default().insert((*b).into());
            graph.entry((*b).into()).or_default();
        }
        graph
    };
    assert_eq!(cycle(&g(&[("a", "b"), ("b", "c")])), None);
    assert_eq!(
        cycle(&g(&[("a", "b"), ("b", "c"), ("c", "a")])),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    assert_eq!(
        crate_paths("use crate::store::{Store}; x = mycrate::no; crate::cases::open"),
        ["cases".to_owned(), "store".to_owned()].into()
    );
}
