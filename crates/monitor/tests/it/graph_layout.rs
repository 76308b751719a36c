//! The chosen rule's automaton as the page draws it, in headless chromium,
//! checked as geometry: for every pattern of the repository (its samples,
//! the alternation and risk rules) and patterns of shapes of their own
//! (several self-loops, three branches, long names, `until`, negation at
//! the end with its `window ends` edge), read from the DOM the page built:
//! - no state is drawn over another;
//! - no label (of a state, of an edge, the legend) over a state or another
//!   label;
//! - no edge through a state other than its ends, nor through a label
//!   (the `window ends` edge of `unpaid_order` ran through its end state's
//!   label: issue 41);
//! - everything inside the drawing's `viewBox`.
//!
//! Each text keeps the box the page laid it out with (`data-box`, measured
//! by the browser); the test checks that box against the text's place,
//! anchor and length before it uses it.

use cepheid_engine::Rules;
use cepheid_monitor::{Graph, Monitor};

use crate::support::browser::dump_dom;
use crate::support::{graph, root};

/// Patterns whose automata have shapes the repository's lack.
const SHAPES: &str = r#"
pattern loops_and_a_very_long_stage_name_indeed {
    match first followed by an_extremely_long_stage_name_here{2,} followed by last
    where
        first: a == 1
        an_extremely_long_stage_name_here: a == 2
        last: a == 3
}
pattern three_branches {
    within 10m
    timeouts
    match (a followed by b) or (c{2,} followed by d) or (e followed by f followed by g)
    where
        a: x == 1
        b: x == 2
        c: x == 3
        d: x == 4
        e: x == 5
        f: x == 6
        g: x == 7
}
pattern until_then_absent {
    within 5m
    timeouts
    match start followed by middle{1,} until stop not followed by cancel
    where
        start: x == 1
        middle: x == 2
        stop: x == 3
        cancel: x == 4
}
pattern optional_and_strict {
    match a next b? next c{2,4} consecutive followed by any d
    where
        a: x == 1
        b: x == 2
        c: x == 3
        d: x == 4
}
"#;

#[derive(Clone, Copy, Debug)]
struct Rect {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
}

impl Rect {
    fn parse(s: &str) -> Rect {
        let v: Vec<f64> = s.split(',').map(|n| n.parse().expect("a number")).collect();
        assert_eq!(v.len(), 4, "a box: {s}");
        Rect {
            x: v[0],
            y: v[1],
            w: v[2],
            h: v[3],
        }
    }

    /// Do the two overlap by more than `slack` on each axis?
    fn meets(&self, o: &Rect, slack: f64) -> bool {
        self.x + slack < o.x + o.w
            && o.x + slack < self.x + self.w
            && self.y + slack < o.y + o.h
            && o.y + slack < self.y + self.h
    }

    /// Is the point inside, `inset` in from each side?
    fn holds(&self, (x, y): (f64, f64), inset: f64) -> bool {
        x > self.x + inset
            && x < self.x + self.w - inset
            && y > self.y + inset
            && y < self.y + self.h - inset
    }
}

/// A text drawn: its content and its layout box.
#[derive(Debug)]
struct Label {
    text: String,
    rect: Rect,
}

#[derive(Debug)]
struct Drawing {
    view: Rect,
    legend: Label,
    /// (id, shape, label)
    nodes: Vec<(String, Rect, Label)>,
    edges: Vec<Edge>,
}

/// An edge drawn.
#[derive(Debug)]
struct Edge {
    title: String,
    from: String,
    to: String,
    /// Points along its path.
    points: Vec<(f64, f64)>,
    label: Label,
}

/// The value of attribute `name` in the tag starting `tag`.
fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let end = tag.find('>').unwrap_or(tag.len());
    let tag = &tag[..end];
    let at = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    Some(&tag[at..at + tag[at..].find('"')?])
}

/// The first `<text ...>...</text>` in `part`, with its box checked
/// against its place, anchor and length.
fn label(part: &str) -> Label {
    let at = part.find("<text").expect("a text");
    let tag = &part[at..];
    let content = &tag[tag.find('>').unwrap() + 1..tag.find("</text>").unwrap()];
    let text = content
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">");
    let rect = Rect::parse(attr(tag, "data-box").expect("a laid out text"));
    let x: f64 = attr(tag, "x").unwrap().parse().unwrap();
    let y: f64 = attr(tag, "y").unwrap().parse().unwrap();
    let left = match attr(tag, "text-anchor").unwrap_or("start") {
        "middle" => x - rect.w / 2.0,
        "end" => x - rect.w,
        _ => x,
    };
    assert!((left - rect.x).abs() < 0.2, "{text:?}: box {rect:?}, x {x}");
    assert!(
        rect.y < y && y < rect.y + rect.h,
        "{text:?}: box {rect:?}, y {y}"
    );
    let chars = text.chars().count() as f64;
    assert!(
        rect.w >= 3.5 * chars && rect.h >= 10.0,
        "{text:?}: a box too small for its text: {rect:?}"
    );
    Label { text, rect }
}

/// Points along an SVG path of absolute M, L, Q and C commands.
fn sample(d: &str) -> Vec<(f64, f64)> {
    let mut points = Vec::new();
    let mut at = (0.0, 0.0);
    let mut command = ' ';
    let mut numbers: Vec<f64> = Vec::new();
    let flush = |command: char,
                 numbers: &mut Vec<f64>,
                 at: &mut (f64, f64),
                 points: &mut Vec<(f64, f64)>| {
        let p = |i: usize| (numbers[2 * i], numbers[2 * i + 1]);
        const STEPS: usize = 60;
        match command {
            'M' => {
                *at = p(0);
                points.push(*at);
            }
            'L' => {
                let b = p(0);
                for i in 1..=STEPS {
                    let t = i as f64 / STEPS as f64;
                    points.push((at.0 + (b.0 - at.0) * t, at.1 + (b.1 - at.1) * t));
                }
                *at = b;
            }
            'Q' => {
                let (c, b) = (p(0), p(1));
                for i in 1..=STEPS {
                    let t = i as f64 / STEPS as f64;
                    let u = 1.0 - t;
                    points.push((
                        u * u * at.0 + 2.0 * u * t * c.0 + t * t * b.0,
                        u * u * at.1 + 2.0 * u * t * c.1 + t * t * b.1,
                    ));
                }
                *at = b;
            }
            'C' => {
                let (c1, c2, b) = (p(0), p(1), p(2));
                for i in 1..=STEPS {
                    let t = i as f64 / STEPS as f64;
                    let u = 1.0 - t;
                    points.push((
                        u * u * u * at.0
                            + 3.0 * u * u * t * c1.0
                            + 3.0 * u * t * t * c2.0
                            + t * t * t * b.0,
                        u * u * u * at.1
                            + 3.0 * u * u * t * c1.1
                            + 3.0 * u * t * t * c2.1
                            + t * t * t * b.1,
                    ));
                }
                *at = b;
            }
            ' ' => {}
            other => panic!("a path command the test does not read: {other} in {numbers:?}"),
        }
        numbers.clear();
    };
    for token in d.split([' ', ',']).filter(|t| !t.is_empty()) {
        let first = token.chars().next().unwrap();
        let number = if first.is_ascii_alphabetic() {
            flush(command, &mut numbers, &mut at, &mut points);
            command = first;
            &token[1..]
        } else {
            token
        };
        if !number.is_empty() {
            numbers.push(number.parse().expect("a number in a path"));
        }
    }
    flush(command, &mut numbers, &mut at, &mut points);
    points
}

/// The drawing of the page's `#graph` in `dom`.
fn drawing(dom: &str) -> Drawing {
    let svg = &dom[dom.find("<svg id=\"graph\"").expect("the graph")..];
    let svg = &svg[..svg.find("</svg>").unwrap()];
    let view: Vec<f64> = attr(svg, "viewBox")
        .unwrap()
        .split(' ')
        .map(|n| n.parse().unwrap())
        .collect();
    let view = Rect {
        x: view[0],
        y: view[1],
        w: view[2],
        h: view[3],
    };
    let legend = label(&svg[svg.find("<g class=\"legend\"").expect("a legend")..]);
    let groups = |class: &str| -> Vec<&str> {
        svg.match_indices(&format!("<g class=\"{class} "))
            .map(|(at, _)| {
                let part = &svg[at..];
                &part[..part.find("</g>").unwrap()]
            })
            .collect()
    };
    let nodes = groups("node")
        .into_iter()
        .map(|part| {
            let id = attr(part, "data-id").unwrap().to_string();
            let shape = Rect::parse(attr(part, "data-box").expect("a node's box"));
            (id, shape, label(part))
        })
        .collect();
    let edges = groups("edge")
        .into_iter()
        .map(|part| {
            let title = &part[part.find("<title>").unwrap() + 7..part.find("</title>").unwrap()];
            let path = &part[part.find("<path").unwrap()..];
            let points = sample(attr(path, "d").unwrap());
            Edge {
                title: title.replace("&amp;", "&"),
                from: attr(part, "data-from").unwrap().to_string(),
                to: attr(part, "data-to").unwrap().to_string(),
                points,
                label: label(part),
            }
        })
        .collect();
    Drawing {
        view,
        legend,
        nodes,
        edges,
    }
}

/// What is wrong with a drawing (empty: nothing).
fn faults(d: &Drawing) -> Vec<String> {
    let mut faults = Vec::new();
    for (i, (a, ra, _)) in d.nodes.iter().enumerate() {
        for (b, rb, _) in &d.nodes[i + 1..] {
            if ra.meets(rb, 0.0) {
                faults.push(format!("state {a} drawn over state {b}"));
            }
        }
    }
    let mut labels: Vec<(String, &Label)> = vec![("the legend".to_string(), &d.legend)];
    labels.extend(
        d.nodes
            .iter()
            .map(|(id, _, l)| (format!("state {id}'s label"), l)),
    );
    labels.extend((d.edges.iter()).map(|e| {
        (
            format!("edge {}->{} `{}`'s label", e.from, e.to, e.title),
            &e.label,
        )
    }));
    for (i, (what, l)) in labels.iter().enumerate() {
        for (id, shape, _) in &d.nodes {
            if l.rect.meets(shape, 0.5) {
                faults.push(format!("{what} {:?} over state {id}", l.text));
            }
        }
        for (other, m) in &labels[i + 1..] {
            if l.rect.meets(&m.rect, 0.5) {
                faults.push(format!("{what} {:?} over {other} {:?}", l.text, m.text));
            }
        }
        let inside = l.rect.x >= d.view.x
            && l.rect.y >= d.view.y
            && l.rect.x + l.rect.w <= d.view.x + d.view.w
            && l.rect.y + l.rect.h <= d.view.y + d.view.h;
        if !inside {
            faults.push(format!("{what} {:?} outside the drawing", l.text));
        }
    }
    for Edge {
        title,
        from,
        to,
        points,
        ..
    } in &d.edges
    {
        let edge = format!("edge {from}->{to} `{title}`");
        for (id, shape, _) in &d.nodes {
            if id != from && id != to && points.iter().any(|&p| shape.holds(p, 2.0)) {
                faults.push(format!("{edge} through state {id}"));
            }
        }
        for (what, l) in &labels {
            if points.iter().any(|&p| l.rect.holds(p, 1.0)) {
                faults.push(format!("{edge} through {what} {:?}", l.text));
            }
        }
        if !points.iter().all(|&p| d.view.holds(p, -0.5)) {
            faults.push(format!("{edge} outside the drawing"));
        }
    }
    faults
}

/// Every pattern of the repository, and [`SHAPES`]: (name, graph).
fn graphs() -> Vec<(String, Graph)> {
    let mut rules = vec![Rules::load(root().join("patterns")).expect("the samples load")];
    for dir in ["patterns/alternation", "patterns/risk"] {
        rules.push(Rules::load(root().join(dir)).expect("the rules load"));
    }
    rules.push(Rules::parse("shapes.cep", SHAPES).expect("the shapes parse"));
    let mut graphs = Vec::new();
    for rules in &rules {
        for pattern in rules.patterns() {
            graphs.push((pattern.name.clone(), graph(pattern)));
        }
    }
    graphs
}

#[test]
fn no_state_label_or_edge_is_drawn_over_another_in_chromium() {
    let graphs = graphs();
    assert!(graphs.len() >= 20, "{} patterns", graphs.len());
    let monitor = Monitor::new();
    monitor.update(|s| {
        s.set_patterns(graphs.iter().map(|(name, _)| name.as_str()));
        for (name, graph) in &graphs {
            s.pattern_mut(name).graph = Some(graph.clone());
        }
    });
    let server = monitor.serve("127.0.0.1:0").expect("serves");
    let mut all = Vec::new();
    for (name, graph) in &graphs {
        let dom = dump_dom(&format!("http://{}/#{name}", server.addr()));
        let drawn = drawing(&dom);
        assert_eq!(drawn.nodes.len(), graph.nodes.len(), "{name}");
        assert_eq!(drawn.edges.len(), graph.edges.len(), "{name}");
        all.extend(faults(&drawn).into_iter().map(|f| format!("{name}: {f}")));
    }
    assert!(all.is_empty(), "{} faults:\n{}", all.len(), all.join("\n"));
}

#[test]
fn the_test_finds_a_label_drawn_over_a_state() {
    // (the checks themselves, on a drawing made by hand)
    let l = |text: &str, x, y| Label {
        text: text.to_string(),
        rect: Rect {
            x,
            y,
            w: 40.0,
            h: 12.0,
        },
    };
    let shape = Rect {
        x: 100.0,
        y: 100.0,
        w: 44.0,
        h: 44.0,
    };
    let d = Drawing {
        view: Rect {
            x: 0.0,
            y: 0.0,
            w: 400.0,
            h: 300.0,
        },
        legend: l("legend", 0.0, 0.0),
        nodes: vec![
            ("0".to_string(), shape, l("a", 100.0, 130.0)),
            (
                "1".to_string(),
                Rect { x: 300.0, ..shape },
                l("b", 280.0, 150.0),
            ),
        ],
        edges: vec![Edge {
            title: "take".to_string(),
            from: "0".to_string(),
            to: "1".to_string(),
            points: sample("M144,122 L300,156"),
            label: l("take", 200.0, 20.0),
        }],
    };
    let found = faults(&d);
    assert!(
        found
            .iter()
            .any(|f| f.contains("state 0's label \"a\" over state 0")),
        "{found:?}"
    );
    assert!(
        found.iter().any(|f| f.contains("through state 1's label")),
        "{found:?}"
    );
}
