//! W0003: a model output that depends on none of the model's inputs.

use nnc_syntax::{Code, Diagnostic};

use super::{Context, Lint, with_calls};
use crate::check::facts::FactKind;

pub const LINT: Lint = Lint {
    code: Code::UnusedOutput,
    name: "output-without-inputs",
    doc: "a model output computed without any of the model's inputs",
    run,
};

fn run(cx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    for fact in cx.facts() {
        let FactKind::OutputWithoutInputs { name, inputs } = &fact.kind else { continue };
        let d = Diagnostic::new(
            Code::UnusedOutput,
            fact.at.file,
            fact.at.span,
            format!("output `{name}` does not depend on any input"),
        )
        .with_label("computed without the model's inputs")
        .with_note(format!("inputs: {}", inputs.join(", ")));
        out.push(with_calls(d, fact));
    }
}
