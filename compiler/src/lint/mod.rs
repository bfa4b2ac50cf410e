//! The lint pass: every warning (W-code) nnc emits, each a small rule over the checked
//! program, like ruff's rules.
//!
//! The invariant (ARCHITECTURE.md, "Lints"): the checker reports errors and records facts;
//! lints turn the checked result into warnings and never change it. A lint reads the
//! typed graphs (`CheckResult::models`, `CheckResult::trains`) and, where it needs
//! something only the checker sees while it walks a body (which `let`s were read), the
//! facts the checker recorded for it (`CheckResult::facts`, see `check::facts`).
//!
//! Adding a lint: a code in `nnc_syntax::Code` (a `W…` with its explanation), a file here
//! with a `pub const LINT: Lint`, an entry in [`LINTS`], and a golden fixture
//! `tests/diagnostics/W…_*.nn` (a test fails without one).

use std::collections::HashSet;

use nnc_syntax::{Code, Diagnostic, FileId, Span};

use crate::check::CheckResult;
use crate::check::facts::Fact;
use crate::program::Program;

mod data_file_missing;
mod softmax_before_loss;
mod unused_binding;
mod unused_output;

/// One lint: its code, a short name, a one-line doc, and the rule.
pub struct Lint {
    /// Its warning code (`W0001`…), explained by `nnc explain`.
    pub code: Code,
    /// kebab-case, as ruff names its rules.
    pub name: &'static str,
    /// One line: what it finds.
    pub doc: &'static str,
    /// Appends its warnings for the program in the context.
    pub run: fn(&Context<'_>, &mut Vec<Diagnostic>),
}

/// The registry: every lint, in code order.
pub const LINTS: &[Lint] =
    &[unused_binding::LINT, softmax_before_loss::LINT, unused_output::LINT, data_file_missing::LINT];

/// What a lint reads: the loaded program and the checker's result.
pub struct Context<'a> {
    /// The loaded files.
    pub program: &'a Program,
    /// The checker's result, facts included.
    pub result: &'a CheckResult,
}

impl<'a> Context<'a> {
    /// The checker's facts, with their place and the block calls that led there.
    pub(crate) fn facts(&self) -> impl Iterator<Item = &'a Fact> + 'a {
        self.result.facts.iter()
    }
}

/// Runs every lint over a checked program. Each warning is reported once, however many
/// times the checker met its place (a block called twice records its facts twice): the
/// first one wins, as it would for an error.
pub fn run(program: &Program, result: &CheckResult) -> Vec<Diagnostic> {
    let cx = Context { program, result };
    let mut out = Vec::new();
    for lint in LINTS {
        let first = out.len();
        (lint.run)(&cx, &mut out);
        debug_assert!(out[first..].iter().all(|d| d.code == lint.code), "lint {} emitted another code", lint.name);
    }
    let mut seen: HashSet<(Code, FileId, Span, String)> = HashSet::new();
    out.retain(|d| seen.insert((d.code, d.primary.file, d.primary.span, d.message.clone())));
    out
}

/// Adds the "in this call of `b`" labels of a fact recorded inside a block call.
fn with_calls(mut d: Diagnostic, fact: &Fact) -> Diagnostic {
    d.secondary.extend(fact.calls.iter().cloned());
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every W-code has a lint and every lint a W-code: warnings come from this pass only.
    #[test]
    fn registry_covers_every_warning_code() {
        let mut codes: Vec<Code> = LINTS.iter().map(|l| l.code).collect();
        let warnings: Vec<Code> =
            Code::ALL.iter().copied().filter(|c| c.severity() == nnc_syntax::Severity::Warning).collect();
        assert_eq!(codes, warnings, "LINTS must list every W-code once, in code order");
        codes.dedup();
        assert_eq!(codes.len(), LINTS.len());
        let mut names = HashSet::new();
        for l in LINTS {
            assert!(names.insert(l.name), "duplicate lint name {}", l.name);
            assert!(!l.doc.is_empty() && l.name.chars().all(|c| c.is_ascii_lowercase() || c == '-'));
        }
    }
}
