//! The shape of the code, kept by a test: no two top-level modules of a
//! crate import each other, directly or around a longer loop.
//!
//! A cycle between top-level modules (`config` reading the sinks' keys
//! while every sink imports `config` for its helpers) means neither can be
//! understood, tested or moved into a crate of its own without the other;
//! it is how "adding a sink takes seven edits in three files" starts. The
//! layers are meant to point one way: `config` calls the source and sink
//! registries, and they import only the TOML helpers.
//!
//! The test reads the sources of every crate of the workspace (`src/` and
//! `crates/*/src/`), finds each crate's top-level modules from its
//! directory layout (`src/x.rs` or `src/x/`), maps every `crate::x` and
//! `use crate::{x, ...}` in a file (comments and string literals left out)
//! to the top-level module `x` it names, and fails with the loop and the
//! lines that make it when the graph of top-level modules has one. A
//! `super::` path never leaves its top-level module, and a path into
//! another crate cannot close a loop (cargo refuses cyclic crates), so
//! neither is an edge.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// One reference from a file of module `from` to module `to`, for the message.
#[derive(Debug, Clone)]
struct Edge {
    file: PathBuf,
    line: usize,
}

/// The top-level modules of one crate and who imports whom, with one
/// place per edge to show.
#[derive(Debug, Default)]
struct Graph {
    modules: BTreeSet<String>,
    edges: BTreeMap<(String, String), Edge>,
}

#[test]
fn no_two_top_level_modules_import_each_other() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut report = Vec::new();
    let crates = crate_sources(root);
    assert!(
        crates.iter().any(|src| src.ends_with("src")),
        "no crate sources found under {}",
        root.display()
    );
    for src in crates {
        let graph = graph_of(&src);
        assert!(
            graph.modules.len() > 1,
            "{}: found fewer than two top-level modules",
            src.display()
        );
        for cycle in cycles(&graph) {
            report.push(describe(&src, &graph, &cycle, root));
        }
    }
    assert!(
        report.is_empty(),
        "top-level modules import each other; make one side depend on the other only \
         (move what both need into a module of its own, or pass it as a value):\n\n{}",
        report.join("\n\n")
    );
}

#[test]
fn the_check_finds_a_loop_through_three_modules_and_a_grouped_use() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir_all(src.join("b")).unwrap();
    fs::write(src.join("lib.rs"), "pub mod a;\npub mod b;\npub mod c;\n").unwrap();
    fs::write(
        src.join("a.rs"),
        "// crate::c in a comment is no import\nuse crate::b::Thing;\n",
    )
    .unwrap();
    fs::write(src.join("b/mod.rs"), "mod inner;\n").unwrap();
    fs::write(
        src.join("b/inner.rs"),
        "use super::x;\nuse crate::{\n    c::{self, Other},\n    d,\n};\n",
    )
    .unwrap();
    fs::write(
        src.join("c.rs"),
        "const S: &str = \"crate::b\";\nfn f<'a>(x: &'a str) -> char { let _ = x; '\"' }\nfn g() { crate::a::h(); }\n",
    )
    .unwrap();
    let graph = graph_of(&src);
    assert_eq!(
        graph.modules,
        ["a", "b", "c"].map(String::from).into_iter().collect()
    );
    let edges: Vec<(&str, &str)> = graph
        .edges
        .keys()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    assert_eq!(edges, [("a", "b"), ("b", "c"), ("c", "a")]);
    assert_eq!(graph.edges[&("b".into(), "c".into())].line, 3);
    assert_eq!(cycles(&graph), [vec!["a", "b", "c"]]);

    fs::write(src.join("c.rs"), "fn g() {}\n").unwrap();
    assert!(cycles(&graph_of(&src)).is_empty());
}

/// `src/` of the root crate and of every crate under `crates/`.
fn crate_sources(root: &Path) -> Vec<PathBuf> {
    let mut crates = vec![root.join("src")];
    if let Ok(entries) = fs::read_dir(root.join("crates")) {
        let mut more: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path().join("src"))
            .filter(|p| p.is_dir())
            .collect();
        more.sort();
        crates.extend(more);
    }
    crates.retain(|p| p.is_dir());
    crates
}

/// The top-level modules of the crate at `src` and their imports of each other.
fn graph_of(src: &Path) -> Graph {
    let mut graph = Graph::default();
    let mut files = Vec::new();
    for entry in fs::read_dir(src).unwrap() {
        let path = entry.unwrap().path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if path.is_dir() {
            graph.modules.insert(name.to_string());
            rust_files(&path, name, &mut files);
        } else if let Some(stem) = name.strip_suffix(".rs") {
            if stem != "lib" && stem != "main" {
                graph.modules.insert(stem.to_string());
                files.push((stem.to_string(), path));
            }
        }
    }
    files.sort();
    for (module, file) in files {
        let text = fs::read_to_string(&file).unwrap();
        for (line, target) in crate_references(&text) {
            if target != module && graph.modules.contains(&target) {
                graph.edges.entry((module.clone(), target)).or_insert(Edge {
                    file: file.clone(),
                    line,
                });
            }
        }
    }
    graph
}

/// Every `.rs` file under `dir`, as a part of `module`.
fn rust_files(dir: &Path, module: &str, files: &mut Vec<(String, PathBuf)>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, module, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push((module.to_string(), path));
        }
    }
}

/// The first segment after each `crate::` of `text` (each item of a
/// `crate::{...}` group), with its 1-based line.
fn crate_references(text: &str) -> Vec<(usize, String)> {
    let code = code_only(text);
    let bytes = code.as_bytes();
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(i) = code[at..].find("crate") {
        let start = at + i;
        at = start + "crate".len();
        let before_ok = start == 0 || !is_ident(bytes[start - 1]);
        let after = skip_space(&code, at);
        if !before_ok || !code[after..].starts_with("::") {
            continue;
        }
        let path = skip_space(&code, after + 2);
        let line_of = |offset: usize| code[..offset].matches('\n').count() + 1;
        if code[path..].starts_with('{') {
            for (offset, item) in group_items(&code[path + 1..]) {
                if item != "self" {
                    found.push((line_of(path + 1 + offset), item));
                }
            }
        } else {
            let ident = ident_at(&code, path);
            if !ident.is_empty() {
                found.push((line_of(start), ident));
            }
        }
    }
    found
}

/// The first identifier of each comma-separated item of a `{...}` group
/// (`text` starts after its `{`), with its offset in `text`.
fn group_items(text: &str) -> Vec<(usize, String)> {
    let mut items = Vec::new();
    let mut depth = 0usize;
    let mut expecting = true;
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => expecting = true,
            c if expecting && depth == 0 && (c.is_ascii_alphabetic() || c == '_') => {
                items.push((i, ident_at(text, i)));
                expecting = false;
            }
            _ => {}
        }
    }
    items
}

fn ident_at(text: &str, at: usize) -> String {
    text[at..]
        .bytes()
        .take_while(|&b| is_ident(b))
        .map(char::from)
        .collect()
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn skip_space(text: &str, at: usize) -> usize {
    at + text[at..].len() - text[at..].trim_start().len()
}

/// `text` with comments and the contents of string and character literals
/// blanked (newlines kept, so that line numbers stay right).
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if c == 'r' && matches!(next, Some('"') | Some('#')) && !prev_is_ident(&chars, i) {
            let hashes = chars[i + 1..].iter().take_while(|&&h| h == '#').count();
            if chars.get(i + 1 + hashes) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            i += hashes + 2;
            let close: Vec<char> = std::iter::once('"')
                .chain(std::iter::repeat_n('#', hashes))
                .collect();
            while i < chars.len() && !chars[i..].starts_with(&close) {
                out.push(blank(chars[i]));
                i += 1;
            }
            i += close.len();
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                if let Some(&c) = chars.get(i) {
                    out.push(blank(c));
                }
                i += 1;
            }
            i += 1;
        } else if c == '\'' && (next == Some('\\') || chars.get(i + 2) == Some(&'\'')) {
            // A character literal; a lifetime (`'a`) has no closing quote.
            i += if next == Some('\\') { 2 } else { 1 };
            while i < chars.len() && chars[i] != '\'' {
                i += 1;
            }
            i += 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// Whether `chars[i]` continues an identifier (so an `r` there is no raw
/// string); a `b` before it makes a raw byte string.
fn prev_is_ident(chars: &[char], i: usize) -> bool {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    match i.checked_sub(1).map(|p| chars[p]) {
        Some('b') => i >= 2 && ident(chars[i - 2]),
        Some(c) => ident(c),
        None => false,
    }
}

/// Every loop of the graph, one per strongly connected set of two or more
/// modules, as the modules along it, starting from the first by name.
fn cycles(graph: &Graph) -> Vec<Vec<String>> {
    let next = |m: &str| -> Vec<String> {
        graph
            .edges
            .keys()
            .filter(|(a, _)| a == m)
            .map(|(_, b)| b.clone())
            .collect()
    };
    let reaches = |from: &str, to: &str| -> Option<Vec<String>> {
        // Breadth first, so the loop shown is a shortest one.
        let mut paths = vec![vec![from.to_string()]];
        let mut seen = BTreeSet::from([from.to_string()]);
        while !paths.is_empty() {
            let mut longer = Vec::new();
            for path in paths {
                for n in next(path.last().unwrap()) {
                    if n == to {
                        return Some(path);
                    }
                    if seen.insert(n.clone()) {
                        let mut p = path.clone();
                        p.push(n);
                        longer.push(p);
                    }
                }
            }
            paths = longer;
        }
        None
    };
    let mut found = Vec::new();
    let mut covered = BTreeSet::new();
    for m in &graph.modules {
        if covered.contains(m) {
            continue;
        }
        if let Some(path) = reaches(m, m) {
            if path.len() > 1 {
                covered.extend(path.iter().cloned());
                found.push(path);
            }
        }
    }
    found
}

/// A loop as the operator of this test needs it: each step with the line
/// that makes it.
fn describe(src: &Path, graph: &Graph, cycle: &[String], root: &Path) -> String {
    let mut lines = vec![format!(
        "{}: {} -> {}",
        src.strip_prefix(root).unwrap_or(src).display(),
        cycle.join(" -> "),
        cycle[0]
    )];
    for (i, from) in cycle.iter().enumerate() {
        let to = &cycle[(i + 1) % cycle.len()];
        let edge = &graph.edges[&(from.clone(), to.clone())];
        lines.push(format!(
            "  {from} -> {to}: {}:{}",
            edge.file.strip_prefix(root).unwrap_or(&edge.file).display(),
            edge.line
        ));
    }
    lines.join("\n")
}
