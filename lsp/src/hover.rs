//! Hover: the inferred type of a binding or pipe stage, the layer's docs
//! and options, its parameters (names, shapes, counts), and the doc
//! comments of models and blocks.

use std::collections::HashMap;
use std::fmt::Write;

use nnc_compiler::layers::{self, ArgDef, ArgKind, LayerDef};
use nnc_compiler::types::Value;
use nnc_compiler::{Analysis, LayerRecord, summary};
use nnc_syntax::ast::{Item, UseTarget};
use nnc_syntax::{FileId, Span};

use crate::nav::{DefKind, Index};
use crate::walk;

/// The inferred values of bindings and pipe stages, by where they are.
pub fn hint_map(analysis: &Analysis) -> HashMap<(FileId, Span), &Value> {
    let mut m = HashMap::new();
    for h in &analysis.result.hints {
        m.entry((h.origin.file, h.origin.span)).or_insert(&h.value);
    }
    m
}

/// The markdown shown when hovering `offset` of the root file, and the span it is about.
pub fn hover(analysis: &Analysis, index: &Index, offset: usize) -> Option<(String, Span)> {
    let root = FileId(0);
    let file = &analysis.program.file(root).ast;
    let hints = hint_map(analysis);
    let calls = walk::calls_at(file, offset);
    let occurrence = index.at(root, offset);

    // On an initialiser (`init = he_normal`, `normal(stddev = …)`): its schema entry, not the tensor function.
    if let Some(found) = initialiser_hover(&calls, offset) {
        return Some(found);
    }

    // On the callee of a call or pipe stage.
    if let Some(site) = calls.iter().rev().find(|c| c.call.callee.span.contains(offset)) {
        let call = site.call;
        let user_def = occurrence.filter(|o| o.span == call.callee.span).map(|o| o.def);
        let mut md = match (user_def, layers::lookup(&call.callee.name)) {
            (Some(def), _) => def_markdown(analysis, index, def, &hints),
            (None, Some(layer)) => layer_markdown(layer),
            (None, None) => train_fn_markdown(&call.callee.name)?,
        };
        if let Some(v) = site_value(analysis, &hints, call.span, site.piped) {
            let _ = write!(md, "\n\n→ `{v}`");
        }
        md.push_str(&params_markdown(analysis, root, offset, call.span));
        if user_def.is_some_and(|d| index.defs[d].kind == DefKind::Block) {
            md.push_str(&block_call_params(analysis, call, offset));
        }
        return Some((md, call.callee.span));
    }

    // On a keyword argument of a layer call: the option's documentation.
    if let Some(site) = calls.last()
        && let Some(arg) = site.call.args.iter().find(|a| a.name.as_ref().is_some_and(|n| n.span.contains(offset)))
    {
        let name = arg.name.as_ref().map(|n| n.name.as_str()).unwrap_or_default();
        if let Some(opt) = layers::lookup(&site.call.callee.name).and_then(|l| l.arg(name)) {
            return Some((
                option_markdown(&site.call.callee.name, opt),
                arg.name.as_ref().map_or(arg.span(), |n| n.span),
            ));
        }
    }

    // On a name: what it refers to.
    if let Some(o) = occurrence {
        return Some((def_markdown(analysis, index, o.def, &hints), o.span));
    }

    // On a `use`: the file it loads.
    for item in &file.items {
        if let Item::Use(u) = item
            && u.span.contains(offset)
        {
            let link = index.use_at(root, offset)?;
            let f = analysis.program.file(link.target);
            let what = match &u.target {
                UseTarget::Module(_) => "standard library module",
                UseTarget::File { .. } => "file",
            };
            return Some((format!("{what} `{}`", f.name), u.span));
        }
    }

    // Elsewhere inside a pipe stage or call (its arguments): the stage's value.
    let site = calls.last()?;
    let v = site_value(analysis, &hints, site.call.span, site.piped)?;
    let mut md = format!("```nn\n{}\n```\n→ `{v}`", first_line(source(analysis, root, site.call.span)));
    md.push_str(&params_markdown(analysis, root, offset, site.call.span));
    Some((md, site.call.span))
}

fn source(analysis: &Analysis, file: FileId, span: Span) -> &str {
    analysis.program.file(file).text.get(span.range()).unwrap_or("")
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// The value a call computes: the hint of a pipe stage, or the output of
/// the layer applied there.
fn site_value(analysis: &Analysis, hints: &HashMap<(FileId, Span), &Value>, span: Span, piped: bool) -> Option<String> {
    if piped && let Some(v) = hints.get(&(FileId(0), span)) {
        return known(v);
    }
    let rec = analysis
        .result
        .models
        .iter()
        .flat_map(|m| &m.layers)
        .find(|l| l.origin.file == FileId(0) && l.origin.span == span);
    match rec {
        Some(r) => known(&r.output),
        // A block or model call records no layer of its own at the call: the
        // binding it is the whole value of has the type.
        None => binding_of_value(&analysis.program.file(FileId(0)).ast, span)
            .and_then(|n| hints.get(&(FileId(0), n)))
            .and_then(|v| known(v)),
    }
}

/// The name bound to exactly the expression at `span` (`let r = …`, `output y = …`).
fn binding_of_value(file: &nnc_syntax::ast::File, span: Span) -> Option<Span> {
    use nnc_syntax::ast::{Pattern, Stmt, TrainItem};
    fn stmts(list: &[Stmt], span: Span) -> Option<Span> {
        list.iter().find_map(|s| match s {
            Stmt::Let(l) if l.value.span == span => match &l.pattern {
                Pattern::Name(n) => Some(n.span),
                Pattern::Tuple(_, p) => Some(*p),
            },
            Stmt::Output { name, value: Some(v), .. } if v.span == span => Some(name.span),
            Stmt::If { then_body, else_body, .. } => stmts(then_body, span).or_else(|| stmts(else_body, span)),
            _ => None,
        })
    }
    file.items.iter().filter(|i| i.span().contains(span.start as usize)).find_map(|i| match i {
        Item::Model(m) => stmts(&m.body, span),
        Item::Block(b) => stmts(&b.body, span),
        Item::Train(t) => t.items.iter().find_map(|it| match it {
            TrainItem::Let(l) if l.value.span == span => match &l.pattern {
                Pattern::Name(n) => Some(n.span),
                Pattern::Tuple(_, p) => Some(*p),
            },
            _ => None,
        }),
        _ => None,
    })
}

fn known(v: &Value) -> Option<String> {
    (!v.is_unknown()).then(|| v.to_string())
}

/// The parameters of the layers applied at the innermost call around
/// `offset` (every instantiation, when a block is checked several times).
fn params_markdown(analysis: &Analysis, file: FileId, offset: usize, within: Span) -> String {
    let candidates: Vec<&LayerRecord> = analysis
        .result
        .models
        .iter()
        .flat_map(|m| &m.layers)
        .filter(|l| {
            l.origin.file == file && l.origin.span.contains(offset) && within.contains(l.origin.span.start as usize)
        })
        .collect();
    let Some(smallest) = candidates.iter().map(|l| l.origin.span.len()).min() else { return String::new() };
    let mut records: Vec<&LayerRecord> = candidates.into_iter().filter(|l| l.origin.span.len() == smallest).collect();
    records.dedup_by(|a, b| a.name == b.name);
    let mut md = String::new();
    const SHOWN: usize = 3;
    for l in records.iter().take(SHOWN) {
        if l.params.is_empty() {
            let _ = write!(md, "\n\n**`{}`** ({}): no parameters", l.name, l.layer);
            continue;
        }
        let count = match summary::layer_params(l) {
            Ok(n) => format!("{} parameters", summary::thousands(n)),
            Err(sym) => format!("{sym} parameters"),
        };
        let _ = write!(md, "\n\n**`{}`** ({}): {count}", l.name, l.layer);
        for p in &l.params {
            let shape: Vec<String> = p.shape.iter().map(|d| d.to_string()).collect();
            let n = p.count().map_or_else(|| "symbolic".to_string(), summary::thousands);
            let frozen = if p.trainable { "" } else { ", not trainable" };
            let _ = write!(md, "\n- `{}.{}` `[{}]` — {n}{frozen}", l.name, p.name, shape.join(", "));
        }
    }
    if records.len() > SHOWN {
        let _ = write!(md, "\n\n…and {} more instantiations", records.len() - SHOWN);
    }
    md
}

/// The parameters a block call creates: its layers are named under the
/// call's `name = "…"` or the binding it is the value of (`r.conv2d`, …).
fn block_call_params(analysis: &Analysis, call: &nnc_syntax::ast::Call, offset: usize) -> String {
    let file = &analysis.program.file(FileId(0)).ast;
    let prefix = match call.keyword("name").map(|a| &a.value.kind) {
        Some(nnc_syntax::ast::ExprKind::Str(s)) => s.clone(),
        _ => match binding_of_value(file, call.span) {
            Some(span) => source(analysis, FileId(0), span).to_string(),
            None => return String::new(), // a stage of a longer chain: its layers share a prefix with the others
        },
    };
    let Some(model) = analysis.result.models.iter().find(|m| m.file == FileId(0) && m.span.contains(offset)) else {
        return String::new();
    };
    let layers: Vec<&LayerRecord> = model.layers.iter().filter(|l| l.name.starts_with(&format!("{prefix}."))).collect();
    if layers.is_empty() {
        return String::new();
    }
    let mut total = 0i64;
    for l in &layers {
        match summary::layer_params(l) {
            Ok(n) => total = total.saturating_add(n), // the checker reports an overflowing model
            Err(_) => return format!("\n\n{} layers under `{prefix}.`", layers.len()),
        }
    }
    format!("\n\n**`{prefix}.*`**: {} layers, {} parameters", layers.len(), summary::thousands(total))
}

pub fn layer_markdown(layer: &LayerDef) -> String {
    let mut md = format!("```nn\n{}\n```\n{}", layer.signature, layer.doc);
    if !layer.args.is_empty() {
        md.push_str("\n\nOptions:");
        for a in layer.args {
            let _ = write!(md, "\n- `{}`{} — {}", a.name, a.default_text(), a.doc);
        }
    }
    md
}

fn option_markdown(layer: &str, a: &ArgDef) -> String {
    format!("```nn\n{layer}(…, {}{})\n```\n{} ({})", a.name, a.default_text(), a.doc, a.kind.describe())
}

/// The initialiser (or one of its options) at `offset` in the value of a layer's `Init` option.
fn initialiser_hover(calls: &[walk::CallSite], offset: usize) -> Option<(String, Span)> {
    use nnc_syntax::ast::ExprKind;
    for site in calls {
        let Some(layer) = layers::lookup(&site.call.callee.name) else { continue };
        for a in &site.call.args {
            let is_init = a.name.as_ref().and_then(|n| layer.arg(&n.name)).is_some_and(|d| d.kind == ArgKind::Init);
            if !is_init || !a.value.span.contains(offset) {
                continue;
            }
            let (name, span, args) = match &a.value.kind {
                ExprKind::Name(n) => (&n.name, n.span, &[][..]),
                ExprKind::Call(c) => (&c.callee.name, c.callee.span, c.args.as_slice()),
                _ => return None,
            };
            let f = nnc_compiler::schema::lookup_initialiser(name)?;
            if span.contains(offset) {
                return Some((fn_markdown(f), span));
            }
            let key = args.iter().filter_map(|a| a.name.as_ref()).find(|n| n.span.contains(offset))?;
            return Some((format!("{} option: {}", f.name, f.option(&key.name)?.describe()), key.span));
        }
    }
    None
}

fn train_fn_markdown(name: &str) -> Option<String> {
    Some(fn_markdown(nnc_compiler::schema::lookup_fn(name)?))
}

fn fn_markdown(f: &nnc_compiler::schema::TrainFn) -> String {
    let name = f.name;
    let mut md = format!("```nn\n{name}(…)\n```\n{} ({})", f.doc, f.kind.noun());
    if !f.options.is_empty() {
        let _ = write!(md, "\n\nOptions:");
        for o in f.options {
            let _ = write!(md, "\n- {}", o.describe());
        }
    }
    md
}

/// What a definition is: its kind, name and type, its doc comment.
fn def_markdown(analysis: &Analysis, index: &Index, def: usize, hints: &HashMap<(FileId, Span), &Value>) -> String {
    let d = &index.defs[def];
    let file = analysis.program.file(d.file);
    let value = hints.get(&(d.file, d.span)).and_then(|v| known(v));
    let text = |span: Span| file.text.get(span.range()).unwrap_or("");
    let decl = || file.ast.items.iter().find(|i| i.span() == d.decl);
    match d.kind {
        DefKind::Model => {
            let Some(Item::Model(m)) = decl() else { return format!("model `{}`", d.name) };
            let params: Vec<&str> = m.params.iter().map(|p| text(p.span)).collect();
            let header = if params.is_empty() {
                format!("model {}", d.name)
            } else {
                format!("model {}({})", d.name, params.join(", "))
            };
            let mut md = format!("```nn\n{header}\n```");
            if let Some(doc) = &m.doc {
                let _ = write!(md, "\n{doc}");
            }
            if let Some(info) = analysis.result.models.iter().find(|mi| mi.name == d.name && mi.file == d.file) {
                for (n, v) in &info.outputs {
                    let _ = write!(md, "\n\noutput `{n}`: `{v}`");
                }
                let t = summary::totals(info);
                if !t.symbolic {
                    let _ = write!(
                        md,
                        "\n\n{} parameters ({} trainable, {} non-trainable)",
                        summary::thousands(t.total()),
                        summary::thousands(t.trainable),
                        summary::thousands(t.non_trainable)
                    );
                }
            }
            md
        }
        DefKind::Block => {
            let Some(Item::Block(b)) = decl() else { return format!("block `{}`", d.name) };
            let params: Vec<&str> = b.params.iter().map(|p| text(p.span)).collect();
            let ret = b.ret.as_ref().map(|r| format!(" -> {}", text(r.span()))).unwrap_or_default();
            let mut md = format!("```nn\nblock {}({}){ret}\n```", d.name, params.join(", "));
            if let Some(doc) = &b.doc {
                let _ = write!(md, "\n{doc}");
            }
            md
        }
        DefKind::Train => {
            let mut md = format!("```nn\ntrain {}\n```", d.name);
            if let Some(Item::Train(t)) = decl()
                && let Some(doc) = &t.doc
            {
                let _ = write!(md, "\n{doc}");
            }
            md
        }
        DefKind::Dim => format!("```nn\ndim {}\n```", dim_text(text(d.decl), &d.name)),
        DefKind::PatternDim => {
            let owner = d.owner.map(|o| index.defs[o].name.as_str()).unwrap_or("?");
            format!("```nn\ndim {}\n```\npattern dim of block `{owner}`, bound at each call", d.name)
        }
        DefKind::Param => format!("```nn\n{}\n```\nparameter", text(d.decl)),
        DefKind::DataArray => format!("```nn\n{}\n```\ndata array", text(d.decl)),
        DefKind::Step => format!("```nn\nstep {}\n```", d.name),
        DefKind::Input | DefKind::Let | DefKind::Output => {
            let kw = d.kind.describe();
            match value {
                Some(v) => format!("```nn\n{kw} {}: {v}\n```", d.name),
                None => format!("```nn\n{kw} {}\n```", d.name),
            }
        }
    }
}

/// `N` or `T = 35` out of a `dim` declaration's text.
fn dim_text(decl: &str, name: &str) -> String {
    let body = decl.trim_start().strip_prefix("dim").unwrap_or(decl);
    body.split(',')
        .map(str::trim)
        .find(|p| p.split('=').next().is_some_and(|n| n.trim() == name))
        .unwrap_or(name)
        .to_string()
}
