//! Spans ↔ LSP positions, and nnc diagnostics → LSP diagnostics.

use std::collections::HashMap;

use lsp_types as lsp;
use nnc_compiler::Analysis;
use nnc_compiler::program::SourceFile;
use nnc_syntax::{Diagnostic, FileId, LineIndex, Severity, Span};

use crate::state::State;
use crate::uri;

pub fn position(lines: &LineIndex, text: &str, offset: usize) -> lsp::Position {
    let (line, character) = lines.position(text, offset);
    lsp::Position { line, character }
}

pub fn range(lines: &LineIndex, text: &str, span: Span) -> lsp::Range {
    lsp::Range { start: position(lines, text, span.start as usize), end: position(lines, text, span.end as usize) }
}

pub fn file_range(f: &SourceFile, span: Span) -> lsp::Range {
    range(&f.lines, &f.text, span)
}

/// The byte offset of an LSP position; `None` past the end of the text.
pub fn offset(lines: &LineIndex, text: &str, pos: lsp::Position) -> Option<usize> {
    lines.offset(text, pos.line, pos.character)
}

/// The diagnostics of one analysis, grouped by the URI of the file they are
/// in: the root document (`in_root`) and the files it `use`s (`in_used`).
/// Standard-library files get none: a problem there is reported where the
/// user's file uses it.
pub fn diagnostics(
    state: &State,
    root: &lsp::Uri,
    analysis: &Analysis,
    in_root: bool,
    in_used: bool,
) -> HashMap<lsp::Uri, Vec<lsp::Diagnostic>> {
    let mut out: HashMap<lsp::Uri, Vec<lsp::Diagnostic>> = HashMap::new();
    for d in &analysis.result.diagnostics {
        let file = d.primary.file;
        if analysis.program.files.get(file.0 as usize).is_none_or(|f| f.is_std) {
            continue;
        }
        if (file == FileId(0) && !in_root) || (file != FileId(0) && !in_used) {
            continue;
        }
        let Some(u) = state.uri_of_file(root, analysis, file) else { continue };
        out.entry(u).or_default().push(diagnostic(state, root, analysis, d));
    }
    out
}

pub fn diagnostic(state: &State, root: &lsp::Uri, analysis: &Analysis, d: &Diagnostic) -> lsp::Diagnostic {
    let program = &analysis.program;
    let f = program.file(d.primary.file);
    let mut message = d.message.clone();
    if !d.primary.message.is_empty() {
        // The primary label says what the span is ("symbolic size"); editors
        // show only the message, so keep it.
        message.push_str(&format!(" ({})", d.primary.message));
    }
    for n in &d.notes {
        let n = n.trim();
        if n.starts_with("help:") || n.starts_with("note:") {
            message.push_str(&format!("\n{n}"));
        } else {
            message.push_str(&format!("\nnote: {n}"));
        }
    }
    let related: Vec<lsp::DiagnosticRelatedInformation> = d
        .secondary
        .iter()
        .filter_map(|l| {
            let target = program.files.get(l.file.0 as usize)?;
            let u = state.uri_of_file(root, analysis, l.file)?;
            Some(lsp::DiagnosticRelatedInformation {
                location: lsp::Location { uri: u, range: file_range(target, l.span) },
                message: if l.message.is_empty() { "related".to_string() } else { l.message.clone() },
            })
        })
        .collect();
    let code_description = state
        .support
        .as_ref()
        .and_then(|s| uri::from_path(&s.explanation(d.code)))
        .map(|href| lsp::CodeDescription { href });
    lsp::Diagnostic {
        range: file_range(f, d.primary.span),
        severity: Some(match d.severity {
            Severity::Error => lsp::DiagnosticSeverity::ERROR,
            Severity::Warning => lsp::DiagnosticSeverity::WARNING,
        }),
        code: Some(lsp::NumberOrString::String(d.code.as_str().to_string())),
        code_description,
        source: Some("nnc".to_string()),
        message,
        related_information: Some(related),
        tags: (d.code == nnc_syntax::Code::UnusedBinding).then(|| vec![lsp::DiagnosticTag::UNNECESSARY]),
        data: Some(serde_json::json!({"title": d.code.title(), "explanation": d.code.explanation()})),
    }
}

/// The root file of an analysis.
pub fn root(analysis: &Analysis) -> &SourceFile {
    analysis.program.file(FileId(0))
}
