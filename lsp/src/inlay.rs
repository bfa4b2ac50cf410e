//! Inlay hints: the inferred shape after each `let` name (or tuple pattern)
//! and `output` without an annotation, and after each `|>` stage.

use nnc_compiler::Analysis;
use nnc_compiler::types::Value;
use nnc_syntax::ast::{Item, LetStmt, Pattern, Stmt, TrainItem};
use nnc_syntax::{FileId, Span};

use crate::hover::hint_map;
use crate::walk;

/// A hint: where it goes (a byte offset of the root file) and its label.
#[derive(Debug, Clone, PartialEq)]
pub struct Hint {
    pub offset: usize,
    pub label: String,
}

/// Hints for the part `within` of the root file, in source order.
pub fn hints(analysis: &Analysis, within: Span) -> Vec<Hint> {
    let root = FileId(0);
    let file = &analysis.program.file(root).ast;
    let values = hint_map(analysis);
    let mut out = Vec::new();
    let mut push = |span: Span| {
        if span.end < within.start || span.end > within.end {
            return;
        }
        if let Some(v) = values.get(&(root, span)).filter(|v| shows(v)) {
            out.push(Hint { offset: span.end as usize, label: format!(": {v}") });
        }
    };
    let mut lets: Vec<&LetStmt> = Vec::new();
    let mut outputs: Vec<Span> = Vec::new();
    for item in &file.items {
        if item.span().end < within.start || item.span().start > within.end {
            continue;
        }
        match item {
            Item::Model(m) => collect(&m.body, &mut lets, &mut outputs),
            Item::Block(b) => collect(&b.body, &mut lets, &mut outputs),
            Item::Train(t) => {
                lets.extend(t.items.iter().filter_map(|i| if let TrainItem::Let(l) = i { Some(l) } else { None }))
            }
            Item::Use(_) | Item::Dim(_) => {}
        }
    }
    for l in lets {
        // An annotated `let` already shows its type.
        if l.ty.is_none() {
            match &l.pattern {
                Pattern::Name(n) => push(n.span),
                Pattern::Tuple(_, span) => push(*span),
            }
        }
    }
    for span in outputs {
        push(span);
    }
    for stage in walk::pipe_stages(file, within) {
        push(stage.span);
    }
    out.sort_by_key(|h| h.offset);
    out.dedup();
    out
}

/// Tensors and tuples of tensors; numbers and unknowns say nothing useful.
fn shows(v: &Value) -> bool {
    match v {
        Value::Tensor(_) => true,
        Value::Tuple(parts) => !parts.is_empty() && parts.iter().all(shows),
        _ => false,
    }
}

fn collect<'a>(stmts: &'a [Stmt], lets: &mut Vec<&'a LetStmt>, outputs: &mut Vec<Span>) {
    for s in stmts {
        match s {
            Stmt::Let(l) => lets.push(l),
            Stmt::Output { name, ty: None, value: Some(_), .. } => outputs.push(name.span),
            Stmt::If { then_body, else_body, .. } => {
                collect(then_body, lets, outputs);
                collect(else_body, lets, outputs);
            }
            _ => {}
        }
    }
}
