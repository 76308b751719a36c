//! The dependency graph between the top-level modules of `src/` has no
//! cycles, and is exactly the one written down here ([`ALLOWED`]): a new
//! dependency between modules, or one that goes away, fails this test until
//! the list (and `ARCHITECTURE.md`) says so.
//!
//! How the graph is read: every file of the library is parsed with `syn`,
//! starting at `src/lib.rs` and following `mod` items. A module `a` depends
//! on `b` when code under `a` names a path `crate::b::…` (or
//! `crate::Name` where the crate root re-exports `Name` from `b`), or a
//! `super::…` path that leaves `a` for `b`; paths inside macro invocations
//! count too (their tokens are scanned for `crate :: name`). Comments and
//! doc comments, doc links included, do not count: they are not code and
//! `syn` sees them only as attributes, which are not scanned. Code under
//! `#[cfg(test)]` (a test module, or a test-only item) is read separately:
//! unit tests may use any module that does not itself depend on the tested
//! one (no cycle through test code either), or an edge listed in
//! [`TEST_ONLY`] with its reason.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use proc_macro2::{TokenStream, TokenTree};
use syn::punctuated::Punctuated;
use syn::visit::Visit;

/// Who may use whom outside tests: the layering of `ARCHITECTURE.md`,
/// bottom first. Every edge listed is used; a module uses nothing else.
const ALLOWED: &[(&str, &[&str])] = &[
    // The shared vocabulary (spans, stage ids, time) and the duration
    // grammar: they use nothing.
    ("primitives", &[]),
    ("slab", &[]),
    ("time", &[]),
    ("value", &[]),
    // The crate-internal serde of the state an engine snapshot holds (and
    // the tagged form of values it writes).
    ("persist", &["value"]),
    ("error", &["primitives"]),
    ("event", &["value"]),
    // `Record`'s serde writes its values tagged, through `persist`.
    ("record", &["event", "persist", "value"]),
    // What `#[derive(Event)]` builds on.
    ("event_value", &["event", "value"]),
    ("expr", &["event", "persist", "primitives", "value"]),
    // The IR and its static checks.
    ("pattern", &["event", "expr", "primitives", "time", "value"]),
    ("nfa", &["error", "event", "expr", "pattern", "primitives"]),
    (
        "matcher",
        &[
            "event",
            "expr",
            "nfa",
            "pattern",
            "persist",
            "primitives",
            "slab",
            "value",
        ],
    ),
    // The language: text → IR; `load` compiles each pattern to an NFA once
    // so that what the compiler rejects is a diagnostic at its name.
    (
        "dsl",
        &[
            "error",
            "event",
            "expr",
            "nfa",
            "pattern",
            "primitives",
            "record",
            "time",
            "value",
        ],
    ),
    // The Rust builder: typed `Pattern<E>`; `where_expr` texts are parsed
    // with the language.
    (
        "builder",
        &[
            "dsl",
            "error",
            "event",
            "expr",
            "pattern",
            "primitives",
            "record",
            "value",
        ],
    ),
    // A snapshot fingerprints each pattern by its canonical text
    // (`dsl::explain`).
    (
        "engine",
        &[
            "builder",
            "dsl",
            "error",
            "event",
            "matcher",
            "nfa",
            "pattern",
            "persist",
            "primitives",
            "record",
            "slab",
            "value",
        ],
    ),
    ("rules", &["dsl", "engine", "error", "pattern"]),
    (
        "io",
        &["engine", "error", "event", "primitives", "record", "value"],
    ),
    // The engine on timely dataflow (feature `timely`): the top layer.
    (
        "dataflow",
        &[
            "engine",
            "error",
            "event",
            "pattern",
            "primitives",
            "record",
            "value",
        ],
    ),
];

/// Dependencies of test code on a module that depends on the tested one
/// (a cycle through tests only), each with its reason.
const TEST_ONLY: &[(&str, &str, &str)] = &[
    (
        "expr",
        "io",
        "the expression tests build records from JSON text, as `cepheid run` does",
    ),
    (
        "expr",
        "dsl",
        "the tests of the expression language write expressions as text",
    ),
];

/// Cycles being removed by work in progress; each entry is an edge allowed
/// for now (in code and tests) although it closes a cycle. Remove an entry
/// when its edge is gone (this test says so).
const KNOWN_CYCLES: &[(&str, &str, &str)] = &[];

/// Where a dependency was seen: file and path as written.
type Seen = Vec<String>;

#[derive(Default)]
struct Graph {
    /// `(from, to)` → where, in code that is not test-only.
    code: BTreeMap<(String, String), Seen>,
    /// `(from, to)` → where, in `#[cfg(test)]` code.
    tests: BTreeMap<(String, String), Seen>,
}

/// The crate root: its modules and what it re-exports from which module.
struct Root {
    modules: BTreeSet<String>,
    reexports: BTreeMap<String, String>,
}

impl Root {
    /// The top-level module a path `crate::name::…` reaches.
    fn module_of(&self, name: &str) -> Option<String> {
        if self.modules.contains(name) {
            Some(name.to_string())
        } else {
            self.reexports.get(name).cloned()
        }
    }
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn parse(path: &Path) -> syn::File {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Is this attribute `#[cfg(test)]`, or a `cfg` that requires `test`
/// (`all(test, …)`)?
fn is_cfg_test(attr: &syn::Attribute) -> bool {
    fn requires_test(meta: &syn::Meta) -> bool {
        match meta {
            syn::Meta::Path(path) => path.is_ident("test"),
            syn::Meta::List(list) if list.path.is_ident("all") => list
                .parse_args_with(Punctuated::<syn::Meta, syn::Token![,]>::parse_terminated)
                .map(|metas| metas.iter().any(requires_test))
                .unwrap_or(false),
            _ => false,
        }
    }
    attr.path().is_ident("cfg")
        && attr
            .parse_args::<syn::Meta>()
            .map(|meta| requires_test(&meta))
            .unwrap_or(false)
}

fn item_attrs(item: &syn::Item) -> &[syn::Attribute] {
    use syn::Item::*;
    match item {
        Const(i) => &i.attrs,
        Enum(i) => &i.attrs,
        ExternCrate(i) => &i.attrs,
        Fn(i) => &i.attrs,
        ForeignMod(i) => &i.attrs,
        Impl(i) => &i.attrs,
        Macro(i) => &i.attrs,
        Mod(i) => &i.attrs,
        Static(i) => &i.attrs,
        Struct(i) => &i.attrs,
        Trait(i) => &i.attrs,
        TraitAlias(i) => &i.attrs,
        Type(i) => &i.attrs,
        Union(i) => &i.attrs,
        Use(i) => &i.attrs,
        _ => &[],
    }
}

fn root() -> Root {
    let file = parse(&src().join("lib.rs"));
    let mut modules = BTreeSet::new();
    let mut reexports = BTreeMap::new();
    for item in &file.items {
        match item {
            // Inline modules of the root (`__derive`, what derived code
            // names) only re-export: they are no layer of their own.
            syn::Item::Mod(m) if m.content.is_none() => {
                modules.insert(m.ident.to_string());
            }
            syn::Item::Use(u) => {
                let mut leaves = Vec::new();
                use_leaves(&u.tree, &mut Vec::new(), &mut leaves);
                for (path, name) in leaves {
                    if let (Some(first), Some(name)) = (path.first(), name) {
                        reexports.insert(name, first.clone());
                    }
                }
            }
            _ => {}
        }
    }
    Root { modules, reexports }
}

/// Every path of a `use` tree, as its segments and the name it is bound
/// to (`None` for a glob).
fn use_leaves(
    tree: &syn::UseTree,
    prefix: &mut Vec<String>,
    out: &mut Vec<(Vec<String>, Option<String>)>,
) {
    match tree {
        syn::UseTree::Path(p) => {
            prefix.push(p.ident.to_string());
            use_leaves(&p.tree, prefix, out);
            prefix.pop();
        }
        syn::UseTree::Name(n) => {
            let mut path = prefix.clone();
            path.push(n.ident.to_string());
            out.push((path, Some(n.ident.to_string())));
        }
        syn::UseTree::Rename(r) => {
            let mut path = prefix.clone();
            path.push(r.ident.to_string());
            out.push((path, Some(r.rename.to_string())));
        }
        syn::UseTree::Glob(_) => out.push((prefix.clone(), None)),
        syn::UseTree::Group(g) => {
            for tree in &g.items {
                use_leaves(tree, prefix, out);
            }
        }
    }
}

/// Reads one module's items (a file or an inline `mod`).
struct Reader<'a> {
    root: &'a Root,
    graph: &'a mut Graph,
    /// The module path, top-level module first (`["builder", "lower"]`).
    module: Vec<String>,
    /// Where files of child modules are (`src/builder/lower/`).
    dir: PathBuf,
    /// The file, relative to `src/`, for messages.
    file: String,
    /// Inside `#[cfg(test)]` code.
    test: bool,
}

impl Reader<'_> {
    /// Records a path given as its segments.
    fn path(&mut self, segments: &[String]) {
        let Some(first) = segments.first() else {
            return;
        };
        let target = match first.as_str() {
            "crate" => match segments.get(1) {
                Some(name) => self.resolve_root(name, segments),
                None => return,
            },
            "super" => {
                let mut module = self.module.clone();
                let mut rest = segments;
                while rest.first().map(String::as_str) == Some("super") {
                    assert!(
                        module.pop().is_some(),
                        "{}: `{}` goes above the crate root",
                        self.file,
                        segments.join("::")
                    );
                    rest = &rest[1..];
                }
                match (module.first(), rest.first()) {
                    (Some(top), _) => top.clone(),
                    (None, Some(name)) => self.resolve_root(name, segments),
                    (None, None) => return,
                }
            }
            _ => return,
        };
        let from = self.module[0].clone();
        if target != from {
            let map = if self.test {
                &mut self.graph.tests
            } else {
                &mut self.graph.code
            };
            map.entry((from, target)).or_default().push(format!(
                "{}: {}",
                self.file,
                segments.join("::")
            ));
        }
    }

    fn resolve_root(&self, name: &str, segments: &[String]) -> String {
        self.root.module_of(name).unwrap_or_else(|| {
            panic!(
                "{}: `{}` names `{name}`, which is neither a module of the crate root nor \
                 re-exported there; teach this test what it is",
                self.file,
                segments.join("::")
            )
        })
    }

    /// Scans the tokens of a macro invocation for `crate :: name` and
    /// `super :: …` paths.
    fn tokens(&mut self, tokens: TokenStream) {
        let trees: Vec<TokenTree> = tokens.into_iter().collect();
        let mut i = 0;
        while i < trees.len() {
            match &trees[i] {
                TokenTree::Group(g) => self.tokens(g.stream()),
                TokenTree::Ident(id) if id == "crate" || id == "super" => {
                    let mut segments = vec![id.to_string()];
                    let mut j = i + 1;
                    while let (
                        Some(TokenTree::Punct(a)),
                        Some(TokenTree::Punct(b)),
                        Some(TokenTree::Ident(next)),
                    ) = (trees.get(j), trees.get(j + 1), trees.get(j + 2))
                    {
                        if a.as_char() != ':' || b.as_char() != ':' {
                            break;
                        }
                        segments.push(next.to_string());
                        j += 3;
                    }
                    if segments.len() > 1 {
                        self.path(&segments);
                    }
                    i = j;
                    continue;
                }
                _ => {}
            }
            i += 1;
        }
    }

    /// Reads `mod name;` from its file.
    fn file_module(&mut self, name: &str, test: bool) {
        let candidates = [
            self.dir.join(format!("{name}.rs")),
            self.dir.join(name).join("mod.rs"),
        ];
        let path = candidates
            .iter()
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("{}: no file for `mod {name};`", self.file))
            .clone();
        let file = parse(&path);
        let mut module = self.module.clone();
        module.push(name.to_string());
        let mut child = Reader {
            root: self.root,
            graph: &mut *self.graph,
            module,
            dir: self.dir.join(name),
            file: path.strip_prefix(src()).unwrap().display().to_string(),
            test,
        };
        for item in &file.items {
            child.visit_item(item);
        }
    }
}

impl<'ast> Visit<'ast> for Reader<'_> {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        let was = self.test;
        self.test |= item_attrs(item).iter().any(is_cfg_test);
        match item {
            syn::Item::Mod(m) if m.content.is_none() => {
                let test = self.test;
                self.file_module(&m.ident.to_string(), test);
            }
            syn::Item::Mod(m) => {
                self.module.push(m.ident.to_string());
                let inner = self.dir.join(m.ident.to_string());
                let dir = std::mem::replace(&mut self.dir, inner);
                syn::visit::visit_item_mod(self, m);
                self.dir = dir;
                self.module.pop();
            }
            _ => syn::visit::visit_item(self, item),
        }
        self.test = was;
    }

    fn visit_impl_item(&mut self, item: &'ast syn::ImplItem) {
        let attrs: &[syn::Attribute] = match item {
            syn::ImplItem::Const(i) => &i.attrs,
            syn::ImplItem::Fn(i) => &i.attrs,
            syn::ImplItem::Type(i) => &i.attrs,
            syn::ImplItem::Macro(i) => &i.attrs,
            _ => &[],
        };
        let was = self.test;
        self.test |= attrs.iter().any(is_cfg_test);
        syn::visit::visit_impl_item(self, item);
        self.test = was;
    }

    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        let mut leaves = Vec::new();
        use_leaves(&item.tree, &mut Vec::new(), &mut leaves);
        for (path, _) in leaves {
            self.path(&path);
        }
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        self.path(&segments);
        syn::visit::visit_path(self, path);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.tokens(mac.tokens.clone());
        syn::visit::visit_macro(self, mac);
    }

    /// Attributes (doc comments, derives, lint levels) are not code.
    fn visit_attribute(&mut self, _: &'ast syn::Attribute) {}
}

fn read_graph() -> (Root, Graph) {
    let root = root();
    let mut graph = Graph::default();
    let lib = parse(&src().join("lib.rs"));
    for item in &lib.items {
        if let syn::Item::Mod(m) = item {
            if m.content.is_some() {
                continue;
            }
            let mut reader = Reader {
                root: &root,
                graph: &mut graph,
                module: Vec::new(),
                dir: src(),
                file: "lib.rs".to_string(),
                test: item_attrs(item).iter().any(is_cfg_test),
            };
            let test = reader.test;
            reader.file_module(&m.ident.to_string(), test);
        }
    }
    (root, graph)
}

/// A cycle in `edges`, if there is one, as the modules along it.
fn find_cycle(edges: &BTreeSet<(String, String)>) -> Option<Vec<String>> {
    fn walk(
        node: &str,
        edges: &BTreeSet<(String, String)>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_string());
        for (_, to) in edges.iter().filter(|(from, _)| from == node) {
            if let Some(cycle) = walk(to, edges, stack, done) {
                return Some(cycle);
            }
        }
        stack.pop();
        done.insert(node.to_string());
        None
    }
    let nodes: BTreeSet<&String> = edges.iter().map(|(from, _)| from).collect();
    let mut done = BTreeSet::new();
    nodes
        .into_iter()
        .find_map(|node| walk(node, edges, &mut Vec::new(), &mut done))
}

fn allowed_edges() -> BTreeSet<(String, String)> {
    ALLOWED
        .iter()
        .flat_map(|(from, tos)| tos.iter().map(move |to| (from.to_string(), to.to_string())))
        .collect()
}

fn known(list: &[(&str, &str, &str)]) -> BTreeSet<(String, String)> {
    list.iter()
        .map(|(from, to, _)| (from.to_string(), to.to_string()))
        .collect()
}

#[test]
fn the_allowed_layering_has_no_cycle() {
    let allowed = allowed_edges();
    assert_eq!(find_cycle(&allowed), None, "ALLOWED has a cycle");
    for (from, to) in &allowed {
        assert!(
            ALLOWED.iter().any(|(m, _)| m == to),
            "`{from}` may use `{to}`, which is not in ALLOWED"
        );
    }
    let listed: Vec<&str> = ALLOWED.iter().map(|(m, _)| *m).collect();
    let unique: BTreeSet<&str> = listed.iter().copied().collect();
    assert_eq!(
        unique.len(),
        listed.len(),
        "a module is listed twice in ALLOWED"
    );
}

#[test]
fn every_top_level_module_is_in_the_layering() {
    let root = root();
    let listed: BTreeSet<String> = ALLOWED.iter().map(|(m, _)| m.to_string()).collect();
    assert_eq!(
        root.modules, listed,
        "the modules of src/lib.rs and those of ALLOWED differ"
    );
}

#[test]
fn modules_use_exactly_the_allowed_layers() {
    let (_, graph) = read_graph();
    let allowed = allowed_edges();
    let known = known(KNOWN_CYCLES);
    let mut problems = String::new();
    for (edge, seen) in &graph.code {
        if !allowed.contains(edge) && !known.contains(edge) {
            let _ = writeln!(
                problems,
                "`{}` uses `{}`, which ALLOWED does not let it: {}",
                edge.0,
                edge.1,
                seen.join(", ")
            );
        }
    }
    for edge in &allowed {
        if !graph.code.contains_key(edge) {
            let _ = writeln!(
                problems,
                "`{}` no longer uses `{}`: remove it from ALLOWED (and from ARCHITECTURE.md)",
                edge.0, edge.1
            );
        }
    }
    assert!(problems.is_empty(), "\n{problems}");
}

#[test]
fn the_code_graph_has_no_cycle_but_the_known_ones() {
    let (_, graph) = read_graph();
    let known = known(KNOWN_CYCLES);
    let edges: BTreeSet<(String, String)> = graph
        .code
        .keys()
        .filter(|edge| !known.contains(*edge))
        .cloned()
        .collect();
    assert_eq!(find_cycle(&edges), None);
    // A known cycle that is gone must leave the list.
    for (from, to, why) in KNOWN_CYCLES {
        let edge = (from.to_string(), to.to_string());
        assert!(
            graph.code.contains_key(&edge) || graph.tests.contains_key(&edge),
            "`{from}` no longer uses `{to}` ({why}): remove it from KNOWN_CYCLES"
        );
    }
}

#[test]
fn tests_make_no_cycle_but_the_listed_ones() {
    let (_, graph) = read_graph();
    let allowed = allowed_edges();
    let test_only = known(TEST_ONLY);
    let known = known(KNOWN_CYCLES);
    // Does `from` depend on `to` through the allowed graph?
    let reaches = |from: &str, to: &str| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_string()];
        while let Some(node) = todo.pop() {
            for (_, next) in allowed.iter().filter(|(f, _)| *f == node) {
                if next == to {
                    return true;
                }
                if seen.insert(next.clone()) {
                    todo.push(next.clone());
                }
            }
        }
        false
    };
    let mut problems = String::new();
    for (edge, seen) in &graph.tests {
        if reaches(&edge.1, &edge.0) && !test_only.contains(edge) && !known.contains(edge) {
            let _ = writeln!(
                problems,
                "tests of `{}` use `{}`, which depends on `{0}`: list it in TEST_ONLY with a \
                 reason, or test it elsewhere: {}",
                edge.0,
                edge.1,
                seen.join(", ")
            );
        }
    }
    for edge in &test_only {
        if !graph.tests.contains_key(edge) {
            let _ = writeln!(
                problems,
                "tests of `{}` no longer use `{}`: remove it from TEST_ONLY",
                edge.0, edge.1
            );
        }
    }
    assert!(problems.is_empty(), "\n{problems}");
}
