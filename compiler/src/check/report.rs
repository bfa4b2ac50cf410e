//! Turning layer-table errors into diagnostics with spans, labels and notes.

use nnc_syntax::{Code, Diagnostic};

use super::{Checker, elem_name};
use crate::layers::{Apply, ArgIssue, Hint, LayerDef, LayerError};
use crate::types::{Origin, Value};

impl Checker<'_> {
    pub(crate) fn arg_issue(&self, def: &LayerDef, issue: ArgIssue, call: Origin) -> Diagnostic {
        let layer = def.name;
        match issue {
            ArgIssue::Unknown { name, origin, suggestion } => {
                let mut d = Diagnostic::new(
                    Code::UnknownOption,
                    origin.file,
                    origin.span,
                    format!("`{layer}` has no option `{name}`"),
                )
                .with_label("unknown option");
                let opts: Vec<&str> = def.args.iter().map(|a| a.name).collect();
                let known_foreign = crate::aliases::rename(&name, &opts).is_some();
                match (suggestion, crate::aliases::dropped(&name)) {
                    (Some(s), _) if known_foreign => d = d.with_help(format!("did you mean `{s}`?")),
                    (_, Some(instead)) => d = d.with_help(instead),
                    (Some(s), None) => d = d.with_help(format!("did you mean `{s}`?")),
                    (None, None) => {}
                }
                if !opts.is_empty() {
                    d = d.with_note(format!("`{layer}` takes: {}", opts.join(", ")));
                }
                d
            }
            ArgIssue::Missing { name } => {
                let doc = def.arg(name).map_or("", |a| a.doc);
                Diagnostic::new(Code::MissingArgument, call.file, call.span, format!("`{layer}` is missing `{name}`"))
                    .with_label(format!("`{name}` not given"))
                    .with_note(format!("signature: {}", def.signature))
                    .with_note(format!("`{name}`: {doc}"))
            }
            ArgIssue::TooMany { origin, accepted } => Diagnostic::new(
                Code::TooManyArguments,
                origin.file,
                origin.span,
                format!("too many arguments to `{layer}`"),
            )
            .with_label("extra argument")
            .with_note(format!("signature: {} ({accepted} options after the tensor)", def.signature)),
            ArgIssue::Duplicate { name, origin } => Diagnostic::new(
                Code::DuplicateArgument,
                origin.file,
                origin.span,
                format!("`{name}` of `{layer}` is given twice"),
            )
            .with_label("given again here"),
            ArgIssue::WrongKind { name, expected, found, origin } => Diagnostic::new(
                Code::WrongArgumentType,
                origin.file,
                origin.span,
                format!("`{name}` of `{layer}` must be {expected}, found {found}"),
            )
            .with_label(format!("expected {expected}")),
            ArgIssue::OutOfRange { name, value, allowed, origin } => Diagnostic::new(
                Code::OptionOutOfRange,
                origin.file,
                origin.span,
                format!("`{name}` of `{layer}` is {value}, outside its range {allowed}"),
            )
            .with_label(format!("must be {allowed}"))
            .with_note(format!("`{name}`: {}", def.arg(name).map_or("", |a| a.doc))),
            ArgIssue::BadMode { name, found, allowed, origin } => {
                let mut d = Diagnostic::new(
                    Code::WrongArgumentType,
                    origin.file,
                    origin.span,
                    format!("`{found}` is not a valid `{name}` of `{layer}`"),
                )
                .with_label(format!(
                    "expected one of {}",
                    allowed.iter().map(|w| format!("`{w}`")).collect::<Vec<_>>().join(", ")
                ));
                if let Some(s) = crate::layers::suggest(&found, allowed.iter().copied()) {
                    d = d.with_help(format!("did you mean `{s}`?"));
                }
                d
            }
        }
    }

    // long: one match arm per `LayerError` variant, each a diagnostic; kept whole while other work edits this file.
    pub(crate) fn layer_error(
        &self,
        def: &LayerDef,
        e: LayerError,
        apply: &Apply,
        operands: &[(Value, Origin)],
        call: Origin,
    ) -> Diagnostic {
        let layer = def.name;
        let operand_origin = |i: usize| operands.get(i).map_or(call, |(_, o)| *o);
        let helps: Vec<String> = apply.notes.iter().filter(|n| n.starts_with("help: ")).cloned().collect();
        let mut d = match e {
            LayerError::Rank { operand, expected, found } => {
                let o = operand_origin(operand);
                let mut d = Diagnostic::new(
                    Code::RankMismatch,
                    call.file,
                    call.span,
                    format!(
                        "`{layer}` expects {expected}{}, found rank {} {found}",
                        expected_rank(expected),
                        found.rank()
                    ),
                )
                .with_label(format!("`{layer}` needs {expected}"))
                .with_secondary(o.file, o.span, format!("this is {found}"));
                for h in def.extra.hints {
                    if let Hint::Rank { found: rank, help } = h
                        && *rank == found.rank()
                    {
                        d = d.with_help(*help);
                    }
                }
                d
            }
            LayerError::ElemType { operand, expected, found } => {
                let o = operand_origin(operand);
                let mut d = Diagnostic::new(
                    Code::ElementTypeMismatch,
                    o.file,
                    o.span,
                    format!("`{layer}` expects a {} tensor, found {found}", elem_name(expected)),
                )
                .with_label(format!("this is {found}"));
                for h in def.extra.hints {
                    if let Hint::ElemType { note } = h {
                        d = d.with_note(*note);
                    }
                }
                d
            }
            LayerError::NonPositive { axis_name, value, note } => Diagnostic::new(
                Code::NonPositiveDim,
                call.file,
                call.span,
                format!("`{layer}` output {axis_name} would be {value}"),
            )
            .with_label(format!("{axis_name} {value} ≤ 0"))
            .with_secondary(operand_origin(0).file, operand_origin(0).span, format!("input is {}", apply.inputs[0]))
            .with_note(note),
            LayerError::Axis { what, left, right, provably_different } => {
                let how = if provably_different { "differ" } else { "cannot be shown equal" };
                let mut d = Diagnostic::new(
                    Code::AxisMismatch,
                    call.file,
                    call.span,
                    format!("{what}: {} and {} {how}", left.0, right.0),
                )
                .with_label(format!("`{layer}` needs them equal"));
                if left.1 != call {
                    d = d.with_secondary(left.1.file, left.1.span, format!("{} comes from here", left.0));
                }
                if right.1 != call && right.1 != left.1 {
                    d = d.with_secondary(right.1.file, right.1.span, format!("{} comes from here", right.0));
                }
                d
            }
            LayerError::ElementCount { from, to } => Diagnostic::new(
                Code::ElementCountMismatch,
                call.file,
                call.span,
                format!("`{layer}` cannot turn {from} elements into {to}"),
            )
            .with_label(format!("input is {}", apply.inputs[0]))
            .with_note(format!("element counts: {from} ≠ {to}")),
            LayerError::AxisOutOfRange { axis, rank } => Diagnostic::new(
                Code::AxisOutOfRange,
                call.file,
                call.span,
                format!("axis {axis} is out of range for a tensor of rank {rank}"),
            )
            .with_label(format!("valid axes: {} … {}", -(rank as i64), rank as i64 - 1)),
            LayerError::Option { option, message } => {
                let at = apply.args.origin(option).unwrap_or(call);
                Diagnostic::new(Code::OptionOutOfRange, at.file, at.span, format!("`{option}` of `{layer}`: {message}"))
                    .with_label(message)
            }
            LayerError::Overflow { what } => Diagnostic::new(
                Code::SizeOverflow,
                call.file,
                call.span,
                format!("`{layer}`: {what} does not fit in 64 bits"),
            )
            .with_label("a size here is larger than 2^63 − 1")
            .with_note("sizes are exact integers; they are never wrapped around"),
            LayerError::WrongLayer { option, expected, found } => {
                let at = apply.args.origin(option).unwrap_or(call);
                Diagnostic::new(
                    Code::WrongArgumentType,
                    at.file,
                    at.span,
                    format!("`{layer}` needs {expected}, found `{found}`"),
                )
                .with_label(format!("expected {expected}"))
            }
        };
        for h in helps {
            d.notes.push(h);
        }
        d
    }
}

/// " (rank k)" for a single fixed-rank pattern such as `[N, T, D]`.
fn expected_rank(pattern: &str) -> String {
    if !pattern.starts_with('[') || pattern.contains('…') || pattern.contains(" or ") {
        return String::new();
    }
    format!(" (rank {})", pattern.matches(',').count() + 1)
}
