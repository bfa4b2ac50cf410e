//! W0001: a `let` that is never read.

use nnc_syntax::{Code, Diagnostic};

use super::{Context, Lint, with_calls};
use crate::check::facts::FactKind;

pub const LINT: Lint = Lint {
    code: Code::UnusedBinding,
    name: "unused-binding",
    doc: "a `let` of a model or block that nothing reads (silence with a leading `_`)",
    run,
};

fn run(cx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    for fact in cx.facts() {
        let FactKind::UnusedBinding { name } = &fact.kind else { continue };
        let d = Diagnostic::new(Code::UnusedBinding, fact.at.file, fact.at.span, format!("`{name}` is never used"))
            .with_label("bound here")
            .with_help(format!("use it, or rename it to `_{name}`"));
        out.push(with_calls(d, fact));
    }
}
