//! The house rules of `ARCHITECTURE.md` that the sources themselves can show: which
//! module names which outside crate, and that the modules' imports form no cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The library's sources: module path (`harness/imports/model`) → text, tests cut off.
fn modules() -> BTreeMap<String, String> {
    let root = flue_tests::workspace().join("host/src");
    let mut files = Vec::new();
    collect(&root, &mut files);
    files
        .into_iter()
        .map(|path| {
            let relative = path.strip_prefix(&root).unwrap().with_extension("");
            let mut name = relative.to_string_lossy().replace('\\', "/");
            for tail in ["/mod", "lib"] {
                if let Some(parent) = name.strip_suffix(tail) {
                    name = parent.trim_end_matches('/').to_string();
                }
            }
            let text = std::fs::read_to_string(&path).unwrap();
            (name, without_tests(&text))
        })
        .collect()
}

/// `text` without the items marked `#[cfg(test)]` (a test module, a test helper): each
/// is cut from its attribute to the end of its body, or to its `;`.
fn without_tests(text: &str) -> String {
    let mut code = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("#[cfg(test)]") {
        code.push_str(&rest[..at]);
        let item = &rest[at..];
        let end = match (item.find('{'), item.find(';')) {
            (Some(open), Some(semi)) if semi < open => semi + 1,
            (Some(open), _) => open + matching_brace(&item[open..]) + 1,
            (None, Some(semi)) => semi + 1,
            (None, None) => item.len(),
        };
        rest = &item[end.min(item.len())..];
    }
    code.push_str(rest);
    code
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

/// The top-level folder or file a module lives in: `server`, `runtime`, `lib`.
fn area(module: &str) -> &str {
    match module.split('/').next() {
        Some("") | None => "lib",
        Some(first) => first,
    }
}

#[test]
fn only_its_own_module_names_wasmtime_axum_sql_or_an_http_status() {
    let rules: [(&str, &[&str], &[&str]); 4] = [
        ("wasmtime", &["wasmtime::", "wasmtime_wasi::"], &["runtime"]),
        ("axum", &["axum::", "StatusCode"], &["server"]),
        ("SQL", &["rusqlite::", "sqlx::"], &["store"]),
        ("an HTTP status table", &["status_of("], &["server"]),
    ];
    for (what, marks, owners) in rules {
        for (module, code) in modules() {
            let named = marks.iter().find(|mark| code.contains(*mark));
            if let Some(mark) = named {
                assert!(
                    owners.contains(&area(&module)),
                    "{module} names {what} ({mark}); only {owners:?} may"
                );
            }
        }
    }
}

/// The modules each module imports with `crate::` or `super::` paths (groups in braces
/// included), resolved to the longest module path that exists. A module's own
/// ancestors are left out: a child naming its parent is how Rust nests modules.
fn imports(modules: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph = BTreeMap::new();
    for (module, code) in modules {
        let is_folder = modules.keys().any(|m| m.starts_with(&format!("{module}/")));
        let mut seen = BTreeSet::new();
        for path in paths(code) {
            let mut parts: Vec<&str> = path.split("::").collect();
            let mut base: Vec<&str> = match parts.first() {
                Some(&"crate") => Vec::new(),
                _ => {
                    let mut base: Vec<&str> = module.split('/').filter(|s| !s.is_empty()).collect();
                    if !is_folder {
                        base.pop();
                    }
                    base
                }
            };
            parts.remove(0);
            while parts.first() == Some(&"super") {
                base.pop();
                parts.remove(0);
            }
            base.extend(parts);
            let target = (0..=base.len())
                .rev()
                .map(|n| base[..n].join("/"))
                .find(|candidate| modules.contains_key(candidate));
            if let Some(target) = target
                && !target.is_empty()
                && target != *module
                && !module.starts_with(&format!("{target}/"))
            {
                seen.insert(target);
            }
        }
        graph.insert(module.clone(), seen);
    }
    graph
}

/// Every `crate::…` and `super::…` path in `code`, with `use` groups expanded.
fn paths(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (at, _) in code
        .match_indices("crate::")
        .chain(code.match_indices("super::"))
    {
        let rest = &code[at..];
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        let path = rest[..end].trim_end_matches(':');
        if rest[end..].starts_with('{') && rest[..end].ends_with("::") {
            let close = matching_brace(&rest[end..]);
            for item in expand(&rest[end + 1..end + close]) {
                found.push(format!("{path}::{item}"));
            }
        }
        found.push(path.to_string());
    }
    found
}

fn matching_brace(text: &str) -> usize {
    let mut depth = 0;
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    text.len()
}

/// `a, b::{c, d}, e as f` → `a`, `b::c`, `b::d`, `e`.
fn expand(group: &str) -> Vec<String> {
    let (mut items, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&group[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&group[start..]);
    let mut out = Vec::new();
    for item in items {
        let item: String = item.split_whitespace().collect::<Vec<_>>().join(" ");
        let item = item.split(" as ").next().unwrap_or("").trim().to_string();
        if item.is_empty() {
            continue;
        }
        match item.split_once("::{") {
            Some((head, tail)) => {
                for inner in expand(tail.trim_end_matches('}')) {
                    out.push(format!("{head}::{inner}"));
                }
            }
            None => out.push(item),
        }
    }
    out
}

#[test]
fn the_modules_import_one_another_without_a_cycle() {
    let graph = imports(&modules());
    assert!(
        graph["harness/conversation"].contains("harness/toolbox"),
        "the reader sees imports: {:?}",
        graph["harness/conversation"]
    );
    // Depth-first search; a module met again while still on the path closes a cycle.
    fn visit<'a>(
        module: &'a str,
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) {
        if done.contains(module) {
            return;
        }
        if let Some(at) = path.iter().position(|m| *m == module) {
            panic!("an import cycle: {} → {module}", path[at..].join(" → "));
        }
        path.push(module);
        for next in &graph[module] {
            visit(next, graph, path, done);
        }
        path.pop();
        done.insert(module);
    }
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        visit(module, &graph, &mut Vec::new(), &mut done);
    }
}
