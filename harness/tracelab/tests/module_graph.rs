//! No crate of the workspace may have an import cycle between its top-level modules.
//!
//! Two modules that import each other are one module in two files: neither can be read,
//! tested or moved without the other, and the cycle only grows. Cargo refuses cycles
//! between crates but not between modules, so this test reads every workspace crate's
//! `src/` (text only: no compiler, no dependency) and builds, per crate, the graph of its
//! top-level modules, the children of `lib.rs` or `main.rs` (`src/foo.rs` and
//! `src/foo/**` are `foo`). Module A has an edge to B when a file of A names
//! `crate::B` (`$crate::B` in a macro, `crate::{B, ..}` in a group), `super::B` where that
//! `super` is the crate root, or `crate::X` for an `X` the root imports from B.
//! Comments and literals are skipped (a `crate::b` in a doc or a message imports
//! nothing), and a module's references to itself are not edges. Test code is left out
//! (`#[cfg(test)]` items and `tests.rs` files): a test that builds its fixture through
//! the command line or `synthetic` reads the crate from outside, as an integration test
//! would, and is no dependency of the module it tests.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The crates whose absence would make the check pass by reading nothing.
const EXPECTED: [&str; 5] = [
    "harness/agent",
    "harness/model",
    "harness/kernels",
    "harness/tracelab",
    "harness/guest-tests",
];

/// How many cycles a crate's report lists: past that the graph needs a look, not a list.
const MAX_CYCLES: usize = 50;

#[test]
fn no_crate_has_a_module_import_cycle() {
    let mut report = String::new();
    for krate in workspace_crates() {
        let graph = Graph::build(&read_sources(&krate.src));
        let cycles = graph.cycles();
        if cycles.is_empty() {
            continue;
        }
        let _ = writeln!(report, "{}:", krate.name);
        for cycle in &cycles {
            let _ = writeln!(report, "  {}", cycle.join(" -> "));
        }
        if cycles.len() == MAX_CYCLES {
            let _ = writeln!(report, "  (the first {MAX_CYCLES} cycles only)");
        }
        // Where each edge of a cycle comes from, so the report says what to move.
        let edges: BTreeSet<(&str, &str)> = cycles
            .iter()
            .flat_map(|c| c.windows(2).map(|w| (w[0].as_str(), w[1].as_str())))
            .collect();
        for (from, to) in edges {
            let (file, line) = &graph.edges[from][to];
            let _ = writeln!(report, "    {from} -> {to}: src/{file}:{line}");
        }
    }
    assert!(
        report.is_empty(),
        "module import cycles (move the shared items into the module that owns them, or \
         into a new leaf module):\n{report}"
    );
}

#[test]
fn the_cycle_finder_finds_planted_cycles_and_no_false_edges() {
    let mut files = vec![
        (
            "lib.rs",
            "mod a; mod b; mod c; mod d; pub use c::{Thing as Renamed, Other};",
        ),
        // A real edge, a commented one, one in a string, and an inline module whose
        // `super` is `a`, not the root.
        (
            "a.rs",
            "use crate::b::Item; // crate::c\nconst S: &str = \"crate::c\";\n\
             #[cfg(test)]\nmod tests {\n    use super::c;\n    use crate::d::{f, g};\n}\n\
             #[cfg(test)]\nuse crate::c::Fixture;\n",
        ),
        // In `b/mod.rs`, `super` is the root: edges to `a` and `c`, in a group.
        ("b/mod.rs", "use super::{a, c::Other};\nmod inner;\n"),
        // In `b/inner.rs`, `super` is `b` itself; `crate::b` is `b` too.
        (
            "b/inner.rs",
            "use super::helper;\nuse crate::{self as root, b::x};\n",
        ),
        // A `'"'` char literal that a naive lexer would take for a string, swallowing
        // the edge after it; lifetimes; raw strings; nested block comments.
        (
            "c.rs",
            "fn q<'a>(s: &'a str) -> char { '\"' }\nfn r() { super::d::f(); }\n\
             const T: &str = r#\"crate::a\"#; /* crate::a /* nested */ crate::a */\n\
             const U: char = '\\''; const V: &str = \"\\\"crate::a\";\n",
        ),
        // Through the root's re-export (`Renamed` is `c::Thing`), after a raw string
        // whose `\"` does not escape its end.
        (
            "d.rs",
            "const W: &str = r\"C:\\\";\nfn f() -> crate::Renamed {\n    loop {}\n}\n",
        ),
    ];
    let graph = Graph::build(&owned(&files));
    let edges: Vec<String> = graph
        .edges
        .iter()
        .flat_map(|(from, to)| {
            to.iter()
                .map(move |(to, at)| format!("{from}->{to}@{at:?}"))
        })
        .collect();
    assert_eq!(
        edges,
        [
            r#"a->b@("a.rs", 1)"#,
            r#"b->a@("b/mod.rs", 1)"#,
            r#"b->c@("b/mod.rs", 1)"#,
            r#"c->d@("c.rs", 2)"#,
            r#"d->c@("d.rs", 2)"#,
        ]
    );
    assert_eq!(
        graph.cycles(),
        [vec!["a", "b", "a"], vec!["c", "d", "c"]],
        "every cycle, once, from its least module"
    );

    // A cycle through three modules (one edge from a macro), and none in a chain.
    files.push(("e.rs", "use crate::f;"));
    files.push(("f.rs", "use crate::g::X;"));
    files.push((
        "g.rs",
        "macro_rules! h {\n    () => {\n        $crate::e::run()\n    };\n}\n",
    ));
    assert!(Graph::build(&owned(&files)).cycles().contains(&vec![
        "e".to_string(),
        "f".into(),
        "g".into(),
        "e".into()
    ]));
    let acyclic = [
        ("a.rs", "use crate::b;"),
        ("b.rs", "use crate::c;"),
        ("c.rs", ""),
    ];
    assert_eq!(
        Graph::build(&owned(&acyclic)).cycles(),
        Vec::<Vec<String>>::new()
    );
}

#[test]
fn the_real_crates_are_read() {
    let crates = workspace_crates();
    for expected in EXPECTED {
        assert!(
            crates.iter().any(|c| c.name == expected),
            "{expected} is not among the workspace members read"
        );
    }
    let agent = crates
        .iter()
        .find(|c| c.name == "harness/agent")
        .expect("the agent crate");
    let graph = Graph::build(&read_sources(&agent.src));
    assert!(
        graph.nodes.len() >= 10,
        "the agent has {} top-level modules: {:?}",
        graph.nodes.len(),
        graph.nodes
    );
    let edges: usize = graph.edges.values().map(BTreeMap::len).sum();
    assert!(
        edges >= 10,
        "the agent's modules import each other {edges} times"
    );
}

/// A workspace member with Rust sources.
struct Crate {
    /// Its directory, relative to the workspace root (as `members` lists it).
    name: String,
    src: PathBuf,
}

/// The workspace's members, read from the root `Cargo.toml`'s `members = [..]`.
fn workspace_crates() -> Vec<Crate> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).expect("workspace Cargo.toml");
    let members = manifest
        .split_once("\nmembers = [")
        .and_then(|(_, rest)| rest.split_once(']'))
        .expect("a `members = [..]` list in the workspace Cargo.toml")
        .0;
    members
        .lines()
        .map(|l| l.split('#').next().unwrap_or_default())
        .flat_map(|l| l.split(','))
        .map(|m| m.trim().trim_matches('"'))
        .filter(|m| !m.is_empty())
        .map(|m| Crate {
            name: m.to_string(),
            src: root.join(m).join("src"),
        })
        .filter(|c| c.src.join("lib.rs").exists() || c.src.join("main.rs").exists())
        .collect()
}

/// Every `.rs` file under `src`: its path below `src` (`/`-separated) and its text, in
/// path order. `src/bin/` is skipped: each file there is a crate root of its own.
fn read_sources(src: &Path) -> Vec<(String, String)> {
    fn walk(dir: &Path, rel: &str, out: &mut Vec<(String, String)>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .expect("a UTF-8 name");
            let rel = format!("{rel}{name}");
            if path.is_dir() {
                if rel != "bin" {
                    walk(&path, &format!("{rel}/"), out);
                }
            } else if name.ends_with(".rs") && name != "tests.rs" {
                let text = std::fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                out.push((rel, text));
            }
        }
    }
    let mut out = Vec::new();
    walk(src, "", &mut out);
    out.sort();
    out
}

fn owned(files: &[(&str, &str)]) -> Vec<(String, String)> {
    files
        .iter()
        .map(|(p, t)| (p.to_string(), t.to_string()))
        .collect()
}

/// One crate's top-level modules and the imports between them.
#[derive(Debug)]
struct Graph {
    nodes: BTreeSet<String>,
    /// from → to → the first file and line that makes the edge.
    edges: BTreeMap<String, BTreeMap<String, (String, usize)>>,
}

impl Graph {
    /// From a crate's sources, as `read_sources` gives them.
    fn build(files: &[(String, String)]) -> Graph {
        let is_root = |p: &str| p == "lib.rs" || p == "main.rs";
        let module_path = |p: &str| -> Vec<String> {
            let mut parts: Vec<String> = p.split('/').map(str::to_string).collect();
            if let Some(last) = parts.last_mut() {
                *last = last.trim_end_matches(".rs").to_string();
            }
            if parts.len() > 1 && parts.last().is_some_and(|l| l == "mod") {
                parts.pop();
            }
            parts
        };
        let nodes: BTreeSet<String> = files
            .iter()
            .filter(|(p, _)| !is_root(p))
            .map(|(p, _)| module_path(p)[0].clone())
            .collect();
        // Names the root imports from a module (`pub use run::{run, Completion}`): another
        // module's `crate::Completion` is an import from `run`.
        let mut reexports = BTreeMap::new();
        for (_, text) in files.iter().filter(|(p, _)| is_root(p)) {
            for (path, name) in root_imports(&tokens(text)) {
                let path = match path.first().map(String::as_str) {
                    Some("crate" | "self") => &path[1..],
                    _ => &path[..],
                };
                if path.len() > 1 && nodes.contains(&path[0]) && name != "_" {
                    reexports.insert(name, path[0].clone());
                }
            }
        }
        let mut edges: BTreeMap<String, BTreeMap<String, (String, usize)>> = BTreeMap::new();
        for (file, text) in files.iter().filter(|(p, _)| !is_root(p)) {
            let path = module_path(file);
            for (head, line) in root_references(&tokens(text), path.len()) {
                let target = if nodes.contains(&head) {
                    Some(&head)
                } else {
                    reexports.get(&head)
                };
                if let Some(target) = target.filter(|t| **t != path[0]) {
                    edges
                        .entry(path[0].clone())
                        .or_default()
                        .entry(target.clone())
                        .or_insert_with(|| (file.clone(), line));
                }
            }
        }
        Graph { nodes, edges }
    }

    /// Every elementary cycle, each once, from its least module (`a -> b -> a`); at most
    /// `MAX_CYCLES`.
    fn cycles(&self) -> Vec<Vec<String>> {
        let next = |n: &str| -> Vec<&str> {
            self.edges
                .get(n)
                .map(|to| to.keys().map(String::as_str).collect())
                .unwrap_or_default()
        };
        let reach = |from: &str| -> BTreeSet<&str> {
            let mut seen = BTreeSet::new();
            let mut todo = vec![from];
            while let Some(n) = todo.pop() {
                for m in next(n) {
                    if seen.insert(m) {
                        todo.push(m);
                    }
                }
            }
            seen
        };
        let reaches: BTreeMap<&str, BTreeSet<&str>> =
            self.nodes.iter().map(|n| (n.as_str(), reach(n))).collect();
        let mut out = Vec::new();
        for start in &self.nodes {
            // Only modules after `start` that lie on a cycle with it: a cycle is found
            // from its least module alone.
            let allowed: BTreeSet<&str> = reaches[start.as_str()]
                .iter()
                .copied()
                .filter(|m| *m > start.as_str() && reaches[m].contains(start.as_str()))
                .collect();
            let mut path = vec![start.as_str()];
            let mut stack = vec![next(start).into_iter()];
            while let Some(it) = stack.last_mut() {
                if out.len() == MAX_CYCLES {
                    return out;
                }
                match it.next() {
                    Some(m) if m == start => {
                        let mut cycle: Vec<String> = path.iter().map(|s| s.to_string()).collect();
                        cycle.push(start.clone());
                        out.push(cycle);
                    }
                    Some(m) if allowed.contains(m) && !path.contains(&m) => {
                        path.push(m);
                        stack.push(next(m).into_iter());
                    }
                    Some(_) => {}
                    None => {
                        stack.pop();
                        path.pop();
                    }
                }
            }
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    PathSep,
    Punct(char),
}

type Tokens = Vec<(Tok, usize)>;

fn tok(toks: &[(Tok, usize)], k: usize) -> Option<&Tok> {
    toks.get(k).map(|(t, _)| t)
}

fn is_ident(t: Option<&Tok>, word: &str) -> bool {
    matches!(t, Some(Tok::Ident(w)) if w == word)
}

/// The first segment of each path that starts at the crate root, with its line:
/// `crate::x`, `$crate::x`, `crate::{x, y::z}`, and `super::x` (or `super::super::x`)
/// where those `super`s climb to the root. `depth` is how deep the file's module is
/// (`a.rs` and `a/mod.rs` 1, `a/b.rs` 2); inline `mod m { .. }` blocks add to it.
fn root_references(toks: &[(Tok, usize)], depth: usize) -> Vec<(String, usize)> {
    let masked = test_items(toks);
    let mut out = Vec::new();
    let mut braces = 0usize;
    // The brace depth just inside each open inline module.
    let mut inline: Vec<usize> = Vec::new();
    for (k, (t, _)) in toks.iter().enumerate() {
        if masked[k] {
            continue;
        }
        let continues = k > 0 && tok(toks, k - 1) == Some(&Tok::PathSep);
        match t {
            Tok::Punct('{') => braces += 1,
            Tok::Punct('}') => {
                if inline.last() == Some(&braces) {
                    inline.pop();
                }
                braces = braces.saturating_sub(1);
            }
            Tok::Ident(w)
                if w == "mod"
                    && matches!(tok(toks, k + 1), Some(Tok::Ident(_)))
                    && tok(toks, k + 2) == Some(&Tok::Punct('{')) =>
            {
                inline.push(braces + 1);
            }
            Tok::Ident(w)
                if (w == "crate" || w == "$crate")
                    && !continues
                    && tok(toks, k + 1) == Some(&Tok::PathSep) =>
            {
                out.extend(heads(toks, k + 2));
            }
            Tok::Ident(w) if w == "super" && !continues => {
                let mut j = k;
                let mut ups = 0;
                while is_ident(tok(toks, j), "super") && tok(toks, j + 1) == Some(&Tok::PathSep) {
                    ups += 1;
                    j += 2;
                }
                if ups > 0 && ups == depth + inline.len() {
                    out.extend(heads(toks, j));
                }
            }
            _ => {}
        }
    }
    out
}

/// Which tokens belong to a `#[cfg(test)]` item: from the attribute to the end of the
/// item (its `;`, or the `}` that closes its first block).
fn test_items(toks: &[(Tok, usize)]) -> Vec<bool> {
    let mut masked = vec![false; toks.len()];
    let attr = [
        Tok::Punct('#'),
        Tok::Punct('['),
        Tok::Ident("cfg".into()),
        Tok::Punct('('),
        Tok::Ident("test".into()),
        Tok::Punct(')'),
        Tok::Punct(']'),
    ];
    let mut k = 0;
    while k < toks.len() {
        let at_attr = attr
            .iter()
            .enumerate()
            .all(|(i, a)| tok(toks, k + i) == Some(a));
        if !at_attr {
            k += 1;
            continue;
        }
        let mut j = k + attr.len();
        let mut level = 0usize;
        while let Some(t) = tok(toks, j) {
            match t {
                Tok::Punct('{') => level += 1,
                Tok::Punct('}') => {
                    level = level.saturating_sub(1);
                    if level == 0 {
                        break;
                    }
                }
                Tok::Punct(';') if level == 0 => break,
                _ => {}
            }
            j += 1;
        }
        let end = j.min(toks.len() - 1);
        masked[k..=end].iter_mut().for_each(|m| *m = true);
        k = end + 1;
    }
    masked
}

/// The first segment of the path, or of each branch of the group, at `toks[k]`.
fn heads(toks: &[(Tok, usize)], k: usize) -> Vec<(String, usize)> {
    match toks.get(k) {
        Some((Tok::Ident(w), line)) if w != "self" => vec![(w.clone(), *line)],
        Some((Tok::Punct('{'), _)) => {
            let mut out = Vec::new();
            let mut k = k + 1;
            loop {
                out.extend(heads(toks, k));
                // On to the next branch at this level.
                let mut level = 0usize;
                loop {
                    match tok(toks, k) {
                        None => return out,
                        Some(Tok::Punct('{')) => level += 1,
                        Some(Tok::Punct('}')) if level == 0 => return out,
                        Some(Tok::Punct('}')) => level -= 1,
                        Some(Tok::Punct(',')) if level == 0 => break,
                        _ => {}
                    }
                    k += 1;
                }
                k += 1;
            }
        }
        _ => Vec::new(),
    }
}

/// The root file's own `use` items (not those inside functions or inline modules):
/// each imported path and the name it binds.
fn root_imports(toks: &[(Tok, usize)]) -> Vec<(Vec<String>, String)> {
    let mut out = Vec::new();
    let mut braces = 0usize;
    for (k, (t, _)) in toks.iter().enumerate() {
        match t {
            Tok::Punct('{') => braces += 1,
            Tok::Punct('}') => braces = braces.saturating_sub(1),
            Tok::Ident(w) if w == "use" && braces == 0 => {
                use_leaves(toks, k + 1, Vec::new(), &mut out);
            }
            _ => {}
        }
    }
    out
}

/// Expands the use tree at `toks[k..]`, under `path`, into its leaves; returns the index
/// after the tree.
fn use_leaves(
    toks: &[(Tok, usize)],
    mut k: usize,
    mut path: Vec<String>,
    out: &mut Vec<(Vec<String>, String)>,
) -> usize {
    loop {
        match tok(toks, k) {
            Some(Tok::PathSep) => k += 1,
            Some(Tok::Ident(w)) => {
                path.push(w.clone());
                k += 1;
                if tok(toks, k) == Some(&Tok::PathSep) {
                    k += 1;
                    continue;
                }
                let name = match tok(toks, k + 1) {
                    Some(Tok::Ident(alias)) if is_ident(tok(toks, k), "as") => {
                        k += 2;
                        alias.clone()
                    }
                    // `a::{self}` binds `a`.
                    _ if w == "self" && path.len() > 1 => path[path.len() - 2].clone(),
                    _ => w.clone(),
                };
                out.push((path, name));
                return k;
            }
            Some(Tok::Punct('{')) => {
                k += 1;
                loop {
                    match tok(toks, k) {
                        None => return k,
                        Some(Tok::Punct('}')) => return k + 1,
                        Some(Tok::Punct(',')) => k += 1,
                        _ => {
                            let after = use_leaves(toks, k, path.clone(), out);
                            k = after.max(k + 1);
                        }
                    }
                }
            }
            // A glob binds names this test cannot list without compiling.
            _ => return k + 1,
        }
    }
}

/// Rust source as the tokens a path is made of, each with its line: identifiers (with
/// `$crate`), `::` and single punctuation. Comments, strings, chars and numbers are
/// dropped, lifetimes reduced to their name.
fn tokens(src: &str) -> Tokens {
    let mut lx = Lexer {
        c: src.chars().collect(),
        i: 0,
        line: 1,
    };
    let mut out = Vec::new();
    while let Some(ch) = lx.at(0) {
        let line = lx.line;
        match ch {
            '/' if lx.at(1) == Some('/') => {
                while lx.at(0).is_some_and(|c| c != '\n') {
                    lx.bump();
                }
            }
            '/' if lx.at(1) == Some('*') => lx.skip_block_comment(),
            '"' => lx.skip_string(),
            '\'' => lx.skip_char_or_lifetime(),
            c if c.is_ascii_digit() => {
                lx.word();
            }
            c if c == '_' || c.is_alphabetic() => {
                let word = lx.word();
                let raw = matches!(word.as_str(), "r" | "br" | "cr");
                match lx.at(0) {
                    Some('"') if raw => lx.skip_raw_string(0),
                    Some('"') if word == "b" || word == "c" => lx.skip_string(),
                    Some('\'') if word == "b" => lx.skip_char_or_lifetime(),
                    Some('#') if raw => {
                        let hashes = (0..).take_while(|&n| lx.at(n) == Some('#')).count();
                        if lx.at(hashes) == Some('"') {
                            (0..hashes).for_each(|_| lx.bump());
                            lx.skip_raw_string(hashes);
                        } else if word == "r" {
                            // A raw identifier, `r#type`.
                            lx.bump();
                            out.push((Tok::Ident(lx.word()), line));
                        } else {
                            out.push((Tok::Ident(word), line));
                        }
                    }
                    _ => out.push((Tok::Ident(word), line)),
                }
            }
            '$' if lx.at(1).is_some_and(|c| c == '_' || c.is_alphabetic()) => {
                lx.bump();
                out.push((Tok::Ident(format!("${}", lx.word())), line));
            }
            ':' if lx.at(1) == Some(':') => {
                lx.bump();
                lx.bump();
                out.push((Tok::PathSep, line));
            }
            c => {
                if !c.is_whitespace() {
                    out.push((Tok::Punct(c), line));
                }
                lx.bump();
            }
        }
    }
    out
}

struct Lexer {
    c: Vec<char>,
    i: usize,
    line: usize,
}

impl Lexer {
    fn at(&self, k: usize) -> Option<char> {
        self.c.get(self.i + k).copied()
    }

    fn bump(&mut self) {
        if self.at(0) == Some('\n') {
            self.line += 1;
        }
        self.i += 1;
    }

    /// An identifier, keyword or number (with its suffix).
    fn word(&mut self) -> String {
        let mut s = String::new();
        while let Some(c) = self.at(0).filter(|c| *c == '_' || c.is_alphanumeric()) {
            s.push(c);
            self.bump();
        }
        s
    }

    /// From `/*` past its `*/`; block comments nest.
    fn skip_block_comment(&mut self) {
        let mut depth = 0usize;
        while let Some(c) = self.at(0) {
            if c == '/' && self.at(1) == Some('*') {
                depth += 1;
                self.bump();
            } else if c == '*' && self.at(1) == Some('/') {
                depth -= 1;
                self.bump();
                if depth == 0 {
                    self.bump();
                    return;
                }
            }
            self.bump();
        }
    }

    /// From the opening `"` past the closing one, escapes honoured.
    fn skip_string(&mut self) {
        self.bump();
        while let Some(c) = self.at(0) {
            self.bump();
            match c {
                '\\' => self.bump(),
                '"' => return,
                _ => {}
            }
        }
    }

    /// From the opening `"` of a raw string past its `"` and `hashes` `#`s.
    fn skip_raw_string(&mut self, hashes: usize) {
        self.bump();
        while let Some(c) = self.at(0) {
            self.bump();
            if c == '"' && (0..hashes).all(|n| self.at(n) == Some('#')) {
                (0..hashes).for_each(|_| self.bump());
                return;
            }
        }
    }

    /// From a `'`: past a char literal (`'x'`, `'\n'`, `'\u{1F600}'`), or past the quote
    /// alone of a lifetime or label, whose name then reads as an identifier.
    fn skip_char_or_lifetime(&mut self) {
        if self.at(1) == Some('\\') {
            self.bump();
            self.bump();
            self.bump();
            while self.at(0).is_some_and(|c| c != '\'') {
                self.bump();
            }
            self.bump();
        } else if self.at(2) == Some('\'') {
            (0..3).for_each(|_| self.bump());
        } else {
            self.bump();
        }
    }
}
