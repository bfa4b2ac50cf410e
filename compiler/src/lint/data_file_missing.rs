//! W0004: a data source names a file that does not exist (yet).

use nnc_syntax::{Code, Diagnostic};

use super::{Context, Lint, with_calls};
use crate::check::facts::FactKind;

pub const LINT: Lint = Lint {
    code: Code::DataFileMissing,
    name: "data-file-missing",
    doc: "a data source's file is not there when checking (`nnc run` needs it)",
    run,
};

fn run(cx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    for fact in cx.facts() {
        let FactKind::DataFileMissing { path, full } = &fact.kind else { continue };
        let d =
            Diagnostic::new(Code::DataFileMissing, fact.at.file, fact.at.span, format!("data file `{path}` not found"))
                .with_label(format!("no file at {}", full.display()))
                .with_note("data paths are relative to the `.nn` file");
        out.push(with_calls(d, fact));
    }
}
