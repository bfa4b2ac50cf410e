//! `nnc show model`: a model's typed graph as an SVG diagram, with the checker's symbolic shape on every
//! edge (Keras's `plot_model(show_shapes=True)`, without Graphviz).
//!
//! The layout is a small Sugiyama pipeline written here rather than a crate: the graphs are DAGs in
//! evaluation order already (no cycle removal), have at most a few thousand nodes, and need one thing the
//! layout crates on crates.io (`layout-rs`, `dagre`-likes) do not offer — block instances kept together as
//! nested rectangles. Steps: longest-path layering; dummy nodes on edges that span ranks; barycentre
//! ordering, sorted so that the members of one block instance stay contiguous in each rank; x positions
//! pulled towards the neighbours' mean between two feasible packings; block rectangles around their members.
//!
//! Blocks collapse by `--depth D` (calls nested deeper than D become one node) rather than by a click in
//! the picture: a toggle would need the layout to reflow, so the SVG would carry a layout engine in script,
//! and scripts do not run where the diagram is mostly seen (an `<img>` in report.html or the manual). Each
//! block rectangle and node carries a `<title>`, which viewers show as a tooltip.

use std::collections::HashMap;
use std::fmt::Write as _;

use nnc_compiler::ModelInfo;
use nnc_compiler::graph::{NodeKind, Operand, TRef};

/// Pixels per character of the monospace text (0.6 em at 12 px, what common monospace fonts measure).
const CHAR_W: f64 = 7.4;
const NODE_H: f64 = 38.0;
const RANK_GAP: f64 = 64.0;
const NODE_GAP: f64 = 28.0;
const GROUP_PAD: f64 = 12.0;
/// Rank slots reserved for long edges in one diagram (see `layer_ranks`).
const MAX_DUMMIES: usize = 20_000;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Input,
    Layer,
    Op,
    Output,
    Block,
    Dummy,
}

struct DNode {
    title: String,
    subtitle: String,
    kind: Kind,
    /// Block instances enclosing the node, outermost first (indices into `Layout::blocks`).
    chain: Vec<usize>,
    w: f64,
    rank: usize,
    x: f64,
}

/// One block instance: its name prefix and the block's name.
struct Instance {
    prefix: String,
    block: String,
}

struct Edge {
    from: usize,
    to: usize,
    label: String,
    /// The dummy nodes the edge runs through, top to bottom.
    via: Vec<usize>,
}

struct Layout {
    nodes: Vec<DNode>,
    edges: Vec<Edge>,
    blocks: Vec<Instance>,
}

/// The SVG of every model in `models`, side by side. `depth`: block calls nested deeper than this are
/// drawn as one node each (`None`: every layer is drawn).
pub fn svg(models: &[&ModelInfo], depth: Option<usize>) -> String {
    let mut parts = Vec::new();
    for m in models {
        let mut l = build(m, depth);
        let mut ranks = layer_ranks(&mut l);
        order(&l, &mut ranks);
        place(&mut l, &ranks);
        parts.push(draw(&l, &ranks, &m.name));
    }
    let width: f64 = parts.iter().map(|p| p.0).sum::<f64>() + 20.0 * (parts.len() + 1) as f64;
    let height = parts.iter().map(|p| p.1).fold(0.0, f64::max) + 40.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" \
         viewBox=\"0 0 {width:.0} {height:.0}\" font-family=\"monospace\" font-size=\"12\" class=\"nnc-model\">"
    );
    out.push_str(STYLE);
    out.push_str("<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n");
    let mut x = 20.0;
    for (w, _, body) in parts {
        let _ = writeln!(out, "<g transform=\"translate({x:.1},20)\">\n{body}</g>");
        x += w + 20.0;
    }
    out.push_str("</svg>\n");
    out
}

/// Scoped under the root's class, and the marker's id prefixed, so the diagram can be inlined into an HTML
/// page (report.html) without its rules or ids meeting the page's.
const STYLE: &str = "<style>\n\
.nnc-model .node rect{stroke:#333;stroke-width:1}\n\
.nnc-model .input rect{fill:#e3f2fd}.nnc-model .layer rect{fill:#fff8e1}\n\
.nnc-model .op rect{fill:#f3e5f5}.nnc-model .output rect{fill:#e8f5e9}\n\
.nnc-model .collapsed rect{fill:#fbe9e7;stroke-dasharray:4 2}\n\
.nnc-model .name{font-weight:bold;fill:#111}.nnc-model .kind{fill:#555;font-size:11px}\n\
.nnc-model .edge path{fill:none;stroke:#555;stroke-width:1.2}.nnc-model .shape{fill:#1a237e;font-size:11px}\n\
.nnc-model .block>rect{fill:#9e9e9e;fill-opacity:0.07;stroke:#9e9e9e;stroke-dasharray:5 3}\n\
.nnc-model .block>text{fill:#616161;font-size:11px;font-style:italic}\n\
</style>\n<defs><marker id=\"nnc-arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" \
markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#555\"/></marker></defs>\n";

/// The block chain (outermost first) of every graph node: a layer's from its record; any other node
/// (arithmetic, indexing) the calls common to the nearest layers before and after it in evaluation
/// order (a call's evaluation is one interval), extended to the innermost call it is the result of.
fn chains(m: &ModelInfo, blocks: &mut Vec<Instance>) -> Vec<Vec<usize>> {
    let mut ids: HashMap<String, usize> = HashMap::new();
    let mut intern = |prefix: &str, block: &str, blocks: &mut Vec<Instance>| {
        *ids.entry(prefix.to_string()).or_insert_with(|| {
            blocks.push(Instance { prefix: prefix.to_string(), block: block.to_string() });
            blocks.len() - 1
        })
    };
    let n = m.graph.nodes.len();
    let mut anchor: Vec<Option<Vec<usize>>> = vec![None; n];
    let mut records = m.layers.iter();
    for (i, node) in m.graph.nodes.iter().enumerate() {
        let NodeKind::Layer { name, .. } = &node.kind else { continue };
        // Records and layer nodes are both in evaluation order; a record is skipped only if names differ.
        let Some(rec) = records.by_ref().find(|r| &r.name == name) else { break };
        let chain: Vec<usize> = rec.blocks.iter().map(|b| intern(&b.prefix, &b.block, blocks)).collect();
        // The calls this layer is in: their results are nodes of the same calls.
        for (d, call) in rec.blocks.iter().enumerate() {
            if let Some(TRef { node, .. }) = call.output.as_tensor().and_then(|t| t.node)
                && (node as usize) < n
                && anchor[node as usize].as_ref().is_none_or(|a| a.len() < d + 1)
                && !matches!(m.graph.nodes[node as usize].kind, NodeKind::Layer { .. })
            {
                anchor[node as usize] = Some(chain[..=d].to_vec());
            }
        }
        anchor[i] = Some(chain);
    }
    // The nearest anchor after each node, found in one backward pass.
    let mut next_anchor: Vec<Option<usize>> = vec![None; n];
    for i in (0..n.saturating_sub(1)).rev() {
        next_anchor[i] = if anchor[i + 1].is_some() { Some(i + 1) } else { next_anchor[i + 1] };
    }
    let mut out = vec![Vec::new(); n];
    let mut prev: Vec<usize> = Vec::new();
    for i in 0..n {
        if let Some(a) = &anchor[i] {
            out[i] = a.clone();
            prev = a.clone();
            continue;
        }
        let next = next_anchor[i].and_then(|j| anchor[j].as_ref()).map_or(&[][..], Vec::as_slice);
        out[i] = prev.iter().zip(next).take_while(|(a, b)| a == b).map(|(a, _)| *a).collect();
    }
    out
}

fn text_w(s: &str) -> f64 {
    s.chars().count() as f64 * CHAR_W
}

fn node(title: String, subtitle: String, kind: Kind, chain: Vec<usize>) -> DNode {
    let w = text_w(&title).max(text_w(&subtitle)) + 20.0;
    DNode { title, subtitle, kind, chain, w: w.max(60.0), rank: 0, x: 0.0 }
}

/// The diagram's nodes and edges: one node per graph node (or per collapsed block call), one per output.
fn build(m: &ModelInfo, depth: Option<usize>) -> Layout {
    let mut blocks = Vec::new();
    let chains = chains(m, &mut blocks);
    let mut nodes: Vec<DNode> = Vec::new();
    let mut of_graph: Vec<usize> = Vec::with_capacity(m.graph.nodes.len());
    let mut collapsed: HashMap<usize, usize> = HashMap::new();
    for (i, gn) in m.graph.nodes.iter().enumerate() {
        let chain = &chains[i];
        if let Some(d) = depth
            && chain.len() > d
        {
            let inst = chain[d];
            let id = *collapsed.entry(inst).or_insert_with(|| {
                let b = &blocks[inst];
                nodes.push(node(b.prefix.clone(), format!("block {}", b.block), Kind::Block, chain[..d].to_vec()));
                nodes.len() - 1
            });
            of_graph.push(id);
            continue;
        }
        let (title, subtitle, kind) = match &gn.kind {
            NodeKind::Input { name } => (name.clone(), "input".to_string(), Kind::Input),
            NodeKind::Data { name } => (name.clone(), "data".to_string(), Kind::Input),
            NodeKind::Layer { def, name, .. } => (name.clone(), def.name.to_string(), Kind::Layer),
            NodeKind::Binary { op, .. } => (op.symbol().to_string(), binary_word(op.symbol()).into(), Kind::Op),
            NodeKind::Index { .. } => ("[…]".to_string(), "index".to_string(), Kind::Op),
            NodeKind::Objective { function, .. } => (function.to_string(), "objective".to_string(), Kind::Op),
            NodeKind::L2 => ("l2".to_string(), "penalty".to_string(), Kind::Op),
        };
        nodes.push(node(title, subtitle, kind, chain.clone()));
        of_graph.push(nodes.len() - 1);
    }
    let mut edges: Vec<Edge> = Vec::new();
    let add = |edges: &mut Vec<Edge>, r: TRef, to: usize| {
        let Some(&from) = of_graph.get(r.node as usize) else { return };
        let label = m.graph.nodes[r.node as usize].outputs.get(r.output as usize).map(|t| t.to_string());
        let label = label.unwrap_or_default();
        if from != to && !edges.iter().any(|e| e.from == from && e.to == to && e.label == label) {
            edges.push(Edge { from, to, label, via: Vec::new() });
        }
    };
    for (i, gn) in m.graph.nodes.iter().enumerate() {
        for r in operands(&gn.kind) {
            add(&mut edges, r, of_graph[i]);
        }
    }
    for (name, value) in &m.outputs {
        let Some(r) = value.as_tensor().and_then(|t| t.node) else { continue };
        nodes.push(node(name.clone(), "output".to_string(), Kind::Output, Vec::new()));
        let id = nodes.len() - 1;
        add(&mut edges, r, id);
    }
    Layout { nodes, edges, blocks }
}

fn binary_word(symbol: &str) -> &'static str {
    match symbol {
        "+" => "add",
        "-" => "subtract",
        "*" => "multiply",
        _ => "divide",
    }
}

/// The tensors a node reads.
fn operands(kind: &NodeKind) -> Vec<TRef> {
    let tensor = |o: &Operand| match o {
        Operand::Tensor(t) => Some(*t),
        _ => None,
    };
    match kind {
        NodeKind::Layer { inputs, .. } => inputs.clone(),
        NodeKind::Binary { lhs, rhs, .. } => [tensor(lhs), tensor(rhs)].into_iter().flatten().collect(),
        NodeKind::Index { base, .. } => vec![*base],
        NodeKind::Objective { pred, target, .. } => [Some(*pred), tensor(target)].into_iter().flatten().collect(),
        NodeKind::Input { .. } | NodeKind::Data { .. } | NodeKind::L2 => Vec::new(),
    }
}

/// Longest-path ranks in creation order (operands come first; an edge against that order — only possible
/// when collapsing a block merged nodes around an outside one — does not rank), then dummy nodes on every
/// edge that spans more than one rank. Returns the nodes of each rank.
fn layer_ranks(l: &mut Layout) -> Vec<Vec<usize>> {
    let mut rank = vec![0usize; l.nodes.len()];
    let mut preds: Vec<Vec<usize>> = vec![Vec::new(); l.nodes.len()];
    for e in &l.edges {
        if e.from < e.to {
            preds[e.to].push(e.from);
        }
    }
    for v in 0..l.nodes.len() {
        rank[v] = preds[v].iter().map(|&u| rank[u] + 1).max().unwrap_or(0);
    }
    for (n, r) in l.nodes.iter_mut().zip(&rank) {
        n.rank = *r;
    }
    // Long edges get a slot on every rank they cross, shortest first, up to a budget: a thousand skip
    // connections from one input across thousands of ranks would otherwise be millions of slots. Edges
    // beyond it are drawn straight.
    let mut long: Vec<(usize, usize)> = (0..l.edges.len())
        .map(|e| (l.nodes[l.edges[e].to].rank.saturating_sub(l.nodes[l.edges[e].from].rank), e))
        .filter(|(span, _)| *span > 1)
        .collect();
    long.sort_unstable();
    let mut budget = MAX_DUMMIES;
    for (span, e) in long {
        if span - 1 > budget {
            break;
        }
        budget -= span - 1;
        let (from, to) = (l.edges[e].from, l.edges[e].to);
        let (ra, rb) = (l.nodes[from].rank, l.nodes[to].rank);
        let (ca, cb) = (&l.nodes[from].chain, &l.nodes[to].chain);
        let common: Vec<usize> = ca.iter().zip(cb).take_while(|(a, b)| a == b).map(|(a, _)| *a).collect();
        for r in ra + 1..rb {
            let mut d = node(String::new(), String::new(), Kind::Dummy, common.clone());
            d.w = text_w(&l.edges[e].label) + 8.0;
            d.rank = r;
            l.nodes.push(d);
            let id = l.nodes.len() - 1;
            l.edges[e].via.push(id);
        }
    }
    let ranks = l.nodes.iter().map(|n| n.rank).max().map_or(0, |r| r + 1);
    let mut by_rank = vec![Vec::new(); ranks];
    for (v, n) in l.nodes.iter().enumerate() {
        by_rank[n.rank].push(v);
    }
    by_rank
}

/// Barycentre ordering: sweeps down and up, each rank sorted by the mean position of its neighbours in the
/// rank before, with the members of one block instance kept together (a group sorts by its members' mean).
fn order(l: &Layout, ranks: &mut [Vec<usize>]) {
    let mut up: Vec<Vec<usize>> = vec![Vec::new(); l.nodes.len()];
    let mut down: Vec<Vec<usize>> = vec![Vec::new(); l.nodes.len()];
    for e in &l.edges {
        let path: Vec<usize> = std::iter::once(e.from).chain(e.via.iter().copied()).chain([e.to]).collect();
        for w in path.windows(2) {
            if l.nodes[w[0]].rank < l.nodes[w[1]].rank {
                up[w[1]].push(w[0]);
                down[w[0]].push(w[1]);
            }
        }
    }
    let mut pos = vec![0.0f64; l.nodes.len()];
    for rank in ranks.iter() {
        for (i, &v) in rank.iter().enumerate() {
            pos[v] = i as f64;
        }
    }
    for sweep in 0..8 {
        let downward = sweep % 2 == 0;
        let order: Vec<usize> = if downward { (1..ranks.len()).collect() } else { (0..ranks.len()).rev().collect() };
        for r in order {
            let nbrs = if downward { &up } else { &down };
            let bary: Vec<f64> = ranks[r]
                .iter()
                .map(|&v| match nbrs[v].len() {
                    0 => pos[v],
                    k => nbrs[v].iter().map(|&u| pos[u]).sum::<f64>() / k as f64,
                })
                .collect();
            sort_rank(l, &mut ranks[r], &bary);
            for (i, &v) in ranks[r].iter().enumerate() {
                pos[v] = i as f64;
            }
        }
    }
}

/// Sorts one rank by barycentre, groups first: a node's key is the mean barycentre of each block instance
/// enclosing it (outermost first), then its own, so one instance's members end up next to each other.
fn sort_rank(l: &Layout, rank: &mut [usize], bary: &[f64]) {
    let mut group_sum: HashMap<usize, (f64, usize)> = HashMap::new();
    for (i, &v) in rank.iter().enumerate() {
        for &g in &l.nodes[v].chain {
            let e = group_sum.entry(g).or_insert((0.0, 0));
            e.0 += bary[i];
            e.1 += 1;
        }
    }
    let mut keyed: Vec<(Vec<f64>, usize, usize)> = rank
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let mut key: Vec<f64> = l.nodes[v].chain.iter().map(|g| group_sum[g].0 / group_sum[g].1 as f64).collect();
            key.push(bary[i]);
            (key, i, v)
        })
        .collect();
    keyed.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal).then(a.1.cmp(&b.1)));
    for (slot, (_, _, v)) in rank.iter_mut().zip(keyed) {
        *slot = v;
    }
}

/// The least distance between the centres of neighbours `a` (left) and `b` in a rank: half widths, a gap,
/// and room for the block rectangles one of them is in and the other not.
fn separation(l: &Layout, a: usize, b: usize) -> f64 {
    let (ca, cb) = (&l.nodes[a].chain, &l.nodes[b].chain);
    let common = ca.iter().zip(cb).take_while(|(x, y)| x == y).count();
    let walls = (ca.len() - common + cb.len() - common) as f64;
    (l.nodes[a].w + l.nodes[b].w) / 2.0 + NODE_GAP + walls * GROUP_PAD
}

/// x positions: packed, then a few rounds of pulling each node to its neighbours' mean, keeping the order
/// and separations (the mean of the packing from the left and the one from the right is feasible too).
fn place(l: &mut Layout, ranks: &[Vec<usize>]) {
    let mut nbrs: Vec<Vec<usize>> = vec![Vec::new(); l.nodes.len()];
    for e in &l.edges {
        let path: Vec<usize> = std::iter::once(e.from).chain(e.via.iter().copied()).chain([e.to]).collect();
        for w in path.windows(2) {
            nbrs[w[0]].push(w[1]);
            nbrs[w[1]].push(w[0]);
        }
    }
    for rank in ranks {
        let mut x = 0.0;
        for (i, &v) in rank.iter().enumerate() {
            if i > 0 {
                x += separation(l, rank[i - 1], v);
            }
            l.nodes[v].x = x;
        }
    }
    for _ in 0..12 {
        for rank in ranks {
            let want: Vec<f64> = rank
                .iter()
                .map(|&v| match nbrs[v].len() {
                    0 => l.nodes[v].x,
                    k => nbrs[v].iter().map(|&u| l.nodes[u].x).sum::<f64>() / k as f64,
                })
                .collect();
            let k = rank.len();
            let mut fwd = want.clone();
            for i in 1..k {
                fwd[i] = fwd[i].max(fwd[i - 1] + separation(l, rank[i - 1], rank[i]));
            }
            let mut bwd = want;
            for i in (0..k.saturating_sub(1)).rev() {
                bwd[i] = bwd[i].min(bwd[i + 1] - separation(l, rank[i], rank[i + 1]));
            }
            for i in 0..k {
                l.nodes[rank[i]].x = (fwd[i] + bwd[i]) / 2.0;
            }
        }
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The block rectangles, nodes and edges of one model, shifted so that everything lies at x, y ≥ 0 below
/// a title; returns (width, height, SVG body).
fn draw(l: &Layout, ranks: &[Vec<usize>], model: &str) -> (f64, f64, String) {
    let max_depth = l.nodes.iter().map(|n| n.chain.len()).max().unwrap_or(0) as f64;
    let top = 30.0 + max_depth * (GROUP_PAD + 14.0);
    let y_of = |r: usize| top + r as f64 * (NODE_H + RANK_GAP + max_depth.min(3.0) * 8.0);
    let boxes = group_boxes(l, &y_of);
    let min_x = l.nodes.iter().map(|n| n.x - n.w / 2.0).chain(boxes.iter().map(|b| b.1)).fold(f64::MAX, f64::min);
    let shift = 10.0 - if min_x.is_finite() { min_x } else { 0.0 };
    let max_x = l.nodes.iter().map(|n| n.x + n.w / 2.0).chain(boxes.iter().map(|b| b.3)).fold(0.0, f64::max);
    let height = y_of(ranks.len().max(1) - 1) + NODE_H + 20.0;
    let mut out = String::new();
    let _ = writeln!(out, "<text x=\"10\" y=\"16\" class=\"name\" font-size=\"15\">model {}</text>", esc(model));
    for (g, x0, y0, x1, y1) in &boxes {
        let b = &l.blocks[*g];
        let (x0, x1) = (x0 + shift, x1 + shift);
        let _ = writeln!(
            out,
            "<g class=\"block\"><title>block {} ({})</title><rect x=\"{x0:.1}\" y=\"{y0:.1}\" width=\"{:.1}\" \
             height=\"{:.1}\" rx=\"6\"/><text x=\"{:.1}\" y=\"{:.1}\">{} · {}</text></g>",
            esc(&b.block),
            esc(&b.prefix),
            x1 - x0,
            y1 - y0,
            x0 + 6.0,
            y0 + 13.0,
            esc(&b.prefix),
            esc(&b.block)
        );
    }
    // A tensor read by several nodes is labelled once, under its producer, where the edges fan out; the
    // outputs of a node with several (an LSTM's sequence and states) are labelled near their readers, apart.
    let mut fan_out: HashMap<(usize, &str), usize> = HashMap::new();
    let mut kinds: HashMap<usize, std::collections::HashSet<&str>> = HashMap::new();
    for e in &l.edges {
        *fan_out.entry((e.from, e.label.as_str())).or_default() += 1;
        kinds.entry(e.from).or_default().insert(e.label.as_str());
    }
    let mut labelled = std::collections::HashSet::new();
    for e in &l.edges {
        let shared = fan_out[&(e.from, e.label.as_str())] > 1;
        let label = match (kinds[&e.from].len() > 1, shared, labelled.insert((e.from, e.label.as_str()))) {
            (true, _, _) => Label::NearTarget,
            (false, false, _) => Label::OnEdge,
            (false, true, true) => Label::UnderSource,
            (false, true, false) => Label::None,
        };
        draw_edge(&mut out, l, e, shift, &y_of, label);
    }
    for n in l.nodes.iter().filter(|n| n.kind != Kind::Dummy) {
        let class = match n.kind {
            Kind::Input => "input",
            Kind::Layer => "layer",
            Kind::Op => "op",
            Kind::Output => "output",
            _ => "collapsed",
        };
        let (x, y) = (n.x + shift - n.w / 2.0, y_of(n.rank));
        let _ = writeln!(
            out,
            "<g class=\"node {class}\"><title>{} ({})</title><rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" \
             height=\"{NODE_H}\" rx=\"4\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" class=\"name\">{}\
             </text><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" class=\"kind\">{}</text></g>",
            esc(&n.title),
            esc(&n.subtitle),
            n.w,
            x + n.w / 2.0,
            y + 16.0,
            esc(&n.title),
            x + n.w / 2.0,
            y + 31.0,
            esc(&n.subtitle)
        );
    }
    (max_x + shift + 10.0, height, out)
}

/// Each block instance's rectangle (instance, x0, y0, x1, y1): its members' extent, widened by a margin per
/// level of nesting inside it, with room for its title at the top.
fn group_boxes(l: &Layout, y_of: &dyn Fn(usize) -> f64) -> Vec<(usize, f64, f64, f64, f64)> {
    let mut ext: HashMap<usize, (f64, f64, f64, f64, usize)> = HashMap::new();
    for n in l.nodes.iter().filter(|n| n.kind != Kind::Dummy) {
        let (x0, x1, y0, y1) = (n.x - n.w / 2.0, n.x + n.w / 2.0, y_of(n.rank), y_of(n.rank) + NODE_H);
        for (d, g) in n.chain.iter().enumerate() {
            let inner = n.chain.len() - d;
            let e = ext.entry(*g).or_insert((f64::MAX, f64::MAX, f64::MIN, f64::MIN, 0));
            e.0 = e.0.min(x0);
            e.1 = e.1.min(y0);
            e.2 = e.2.max(x1);
            e.3 = e.3.max(y1);
            e.4 = e.4.max(inner);
        }
    }
    let mut out: Vec<(usize, f64, f64, f64, f64)> = ext
        .into_iter()
        .map(|(g, (x0, y0, x1, y1, inner))| {
            let pad = GROUP_PAD * inner as f64 - 4.0;
            (g, x0 - pad, y0 - pad - 14.0 * inner as f64, x1 + pad, y1 + pad)
        })
        .collect();
    // Outer rectangles first, so inner ones are drawn over them.
    out.sort_by(|a, b| (a.3 - a.1).partial_cmp(&(b.3 - b.1)).unwrap_or(std::cmp::Ordering::Equal).reverse());
    out
}

/// Where an edge's shape is written.
enum Label {
    /// Beside its first segment.
    OnEdge,
    /// Under its producer (a tensor several nodes read).
    UnderSource,
    /// Beside its last segment (one of several different outputs of its producer).
    NearTarget,
    /// Not at all: another edge of the same tensor has it.
    None,
}

fn draw_edge(out: &mut String, l: &Layout, e: &Edge, shift: f64, y_of: &dyn Fn(usize) -> f64, label: Label) {
    let (a, b) = (&l.nodes[e.from], &l.nodes[e.to]);
    let mut pts = vec![(a.x + shift, y_of(a.rank) + NODE_H)];
    for &d in &e.via {
        let n = &l.nodes[d];
        pts.push((n.x + shift, y_of(n.rank)));
        pts.push((n.x + shift, y_of(n.rank) + NODE_H));
    }
    let end =
        if b.rank > a.rank { (b.x + shift, y_of(b.rank)) } else { (b.x + shift + b.w / 2.0, y_of(b.rank) + 19.0) };
    pts.push(end);
    let mut d = format!("M{:.1},{:.1}", pts[0].0, pts[0].1);
    for p in &pts[1..] {
        let _ = write!(d, " L{:.1},{:.1}", p.0, p.1);
    }
    // The label beside the first segment, a quarter of the way down: near its producer, clear of the
    // consumer's other incoming edges.
    let (p0, p1) = (pts[0], pts[1]);
    let text = match label {
        Label::OnEdge => {
            let (lx, ly) = (p0.0 + (p1.0 - p0.0) * 0.3 + 5.0, p0.1 + (p1.1 - p0.1) * 0.3 + 4.0);
            format!("<text x=\"{lx:.1}\" y=\"{ly:.1}\" class=\"shape\">{}</text>", esc(&e.label))
        }
        Label::UnderSource => {
            let (lx, ly) = (p0.0 + 6.0, p0.1 + 13.0);
            format!("<text x=\"{lx:.1}\" y=\"{ly:.1}\" class=\"shape\">{}</text>", esc(&e.label))
        }
        Label::NearTarget => {
            // On the outer side of the edge: left of an edge that goes left, so neighbours' labels part.
            let (q0, q1) = (pts[pts.len() - 2], pts[pts.len() - 1]);
            let left = q1.0 < q0.0 - 1.0;
            let (lx, ly) = (q0.0 + (q1.0 - q0.0) * 0.55, q0.1 + (q1.1 - q0.1) * 0.55 + 4.0);
            let (lx, anchor) = if left { (lx - 5.0, "end") } else { (lx + 5.0, "start") };
            format!(
                "<text x=\"{lx:.1}\" y=\"{ly:.1}\" text-anchor=\"{anchor}\" class=\"shape\">{}</text>",
                esc(&e.label)
            )
        }
        Label::None => String::new(),
    };
    let _ = writeln!(out, "<g class=\"edge\"><path d=\"{d}\" marker-end=\"url(#nnc-arrow)\"/>{text}</g>");
}
