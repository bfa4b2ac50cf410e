//! Completion: layer names (with signature and docs), a layer's keyword
//! options inside its call, mode words for an option's value (`same` and
//! `valid` for `padding`), blocks, models, bindings and dims in scope, train
//! fields and functions, and statement keywords.
//!
//! The context comes from the tokens before the cursor, not from the syntax
//! tree: while typing, the declaration under the cursor rarely parses.

use lsp_types as lsp;
use nnc_compiler::Analysis;
use nnc_compiler::layers::{self, ArgKind, Family, LAYERS, Operands};
use nnc_compiler::schema::{TRAIN_FIELDS, TRAIN_FUNCTIONS, lookup_fn};
use nnc_syntax::FileId;
use nnc_syntax::format::{TokenKind, tokenize};

use crate::hover::hint_map;
use crate::nav::{DefKind, Index};

/// Where the cursor is, as far as completion cares.
#[derive(Debug, PartialEq)]
pub enum Context {
    /// An argument position of `callee(…)`: options not yet `given`, or the
    /// value of option `value_of` when the argument so far is `name =`.
    Argument { callee: String, given: Vec<String>, value_of: Option<String> },
    /// An argument position of an initialiser called as a layer's option value (`init = normal(|`).
    Initialiser { init: String, given: Vec<String>, value_of: Option<String> },
    /// Right after `|>`: a layer or block.
    Stage,
    /// The start of a statement in a body of this declaration kind (`model`,
    /// `block`, `train`), or at top level (`None`).
    Statement { decl: Option<String> },
    /// Any other expression position.
    Expression { decl: Option<String> },
}

const TOP_LEVEL: &[&str] = &["use", "dim", "model", "block", "train"];

/// The completion context at byte `offset` of `text`.
pub fn context(text: &str, offset: usize) -> Context {
    let offset = floor_boundary(text, offset.min(text.len()));
    let start = declaration_start(text, offset);
    let src = &text[start..offset];
    let mut toks: Vec<_> = tokenize(src).into_iter().filter(|t| !matches!(t.kind, TokenKind::Comment)).collect();
    // The word being typed is what is completed, not context.
    if toks.last().is_some_and(|t| t.kind == TokenKind::Word && t.span.end as usize == src.len()) {
        toks.pop();
    }
    let decl = toks
        .iter()
        .find(|t| t.kind == TokenKind::Word)
        .map(|t| t.text(src).to_string())
        .filter(|w| TOP_LEVEL.contains(&w.as_str()));

    struct Open {
        bracket: String,
        callee: Option<String>,
        /// Index in `toks` after the last `,` (or the bracket) at this depth.
        arg_start: usize,
        given: Vec<String>,
        /// The call is the value of a layer's initialiser option (`init = normal(`).
        initialiser: bool,
    }
    let mut stack: Vec<Open> = Vec::new();
    for (i, t) in toks.iter().enumerate() {
        let tt = t.text(src);
        match tt {
            "(" | "[" | "{" => {
                let callee = (tt == "(")
                    .then(|| i.checked_sub(1).map(|j| &toks[j]))
                    .flatten()
                    .filter(|p| p.kind == TokenKind::Word)
                    .map(|p| p.text(src).to_string());
                let initialiser = i >= 3
                    && toks[i - 2].text(src) == "="
                    && stack.last().is_some_and(|o| {
                        let option = toks[i - 3].text(src);
                        o.callee
                            .as_deref()
                            .and_then(layers::lookup)
                            .and_then(|l| l.arg(option))
                            .is_some_and(|a| a.kind == ArgKind::Init)
                    });
                stack.push(Open { bracket: tt.to_string(), callee, arg_start: i + 1, given: Vec::new(), initialiser });
            }
            ")" | "]" | "}" => {
                stack.pop();
            }
            "," => {
                if let Some(o) = stack.last_mut() {
                    o.arg_start = i + 1;
                }
            }
            "=" => {
                if let Some(o) = stack.last_mut()
                    && o.bracket == "("
                    && i == o.arg_start + 1
                    && toks[o.arg_start].kind == TokenKind::Word
                {
                    o.given.push(toks[o.arg_start].text(src).to_string());
                }
            }
            _ => {}
        }
    }
    let prev = toks.last().map(|t| t.text(src));
    match stack.last() {
        Some(o) if o.bracket == "(" && o.callee.is_some() => {
            let arg = &toks[o.arg_start.min(toks.len())..];
            let callee = o.callee.clone().unwrap_or_default();
            let mut given = o.given.clone();
            if o.initialiser {
                return match arg {
                    [] => Context::Initialiser { init: callee, given, value_of: None },
                    [name, eq] if name.kind == TokenKind::Word && eq.text(src) == "=" => {
                        Context::Initialiser { init: callee, given, value_of: Some(name.text(src).to_string()) }
                    }
                    _ => Context::Expression { decl },
                };
            }
            match arg {
                [] => Context::Argument { callee, given, value_of: None },
                [name, eq] if name.kind == TokenKind::Word && eq.text(src) == "=" => {
                    let name = name.text(src).to_string();
                    given.retain(|g| *g != name);
                    Context::Argument { callee, given, value_of: Some(name) }
                }
                _ if prev == Some("|>") => Context::Stage,
                _ => Context::Expression { decl },
            }
        }
        _ if prev == Some("|>") => Context::Stage,
        Some(o) if o.bracket == "{" && at_line_start(text, offset) => Context::Statement { decl },
        None if at_line_start(text, offset) => Context::Statement { decl: None },
        _ => Context::Expression { decl },
    }
}

fn floor_boundary(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Only the partial word being typed precedes the cursor on its line.
fn at_line_start(text: &str, offset: usize) -> bool {
    let line = &text[text[..offset].rfind('\n').map_or(0, |p| p + 1)..offset];
    line.trim_start().chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The start of the line that begins the top-level declaration around
/// `offset` (a line starting with `use`, `dim`, `model`, `block`, `train`),
/// so the context never depends on text far above.
fn declaration_start(text: &str, offset: usize) -> usize {
    let mut end = offset;
    loop {
        let line_start = text[..end].rfind('\n').map_or(0, |p| p + 1);
        let line = &text[line_start..];
        let word: String = line.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        if line_start == 0 || (TOP_LEVEL.contains(&word.as_str()) && line_start < offset) {
            return line_start;
        }
        end = line_start - 1;
    }
}

fn item(
    label: &str,
    kind: lsp::CompletionItemKind,
    detail: Option<String>,
    doc: Option<String>,
) -> lsp::CompletionItem {
    lsp::CompletionItem {
        label: label.to_string(),
        kind: Some(kind),
        detail,
        documentation: doc.map(|value| {
            lsp::Documentation::MarkupContent(lsp::MarkupContent { kind: lsp::MarkupKind::Markdown, value })
        }),
        ..lsp::CompletionItem::default()
    }
}

/// Completion items at `offset` of the root document of `analysis`.
pub fn complete(analysis: &Analysis, index: &Index, text: &str, offset: usize) -> Vec<lsp::CompletionItem> {
    let cx = context(text, offset);
    let mut out = Vec::new();
    match &cx {
        Context::Argument { callee, given, value_of: Some(option) } => {
            if let Some(words) = option_words(callee, option) {
                for w in words {
                    out.push(item(
                        &w,
                        lsp::CompletionItemKind::ENUM_MEMBER,
                        Some(format!("{callee}(…, {option} = {w})")),
                        None,
                    ));
                }
                return out;
            }
            let _ = given;
            values(analysis, index, offset, false, &mut out);
        }
        Context::Argument { callee, given, value_of: None } => {
            options(analysis, index, callee, given, &mut out);
            values(analysis, index, offset, false, &mut out);
        }
        Context::Initialiser { init, given, value_of } => initialiser_items(init, given, value_of.as_deref(), &mut out),
        Context::Stage => layer_items(analysis, index, true, &mut out),
        Context::Statement { decl } => {
            let words: &[&str] = match decl.as_deref() {
                Some("model") => &["input", "let", "output", "if", "else"],
                Some("block") => &["let", "return", "if", "else"],
                Some("train") => &["let", "step"],
                _ => &["use", "dim", "model", "block", "train"],
            };
            for w in words {
                out.push(item(w, lsp::CompletionItemKind::KEYWORD, None, None));
            }
            if decl.as_deref() == Some("train") {
                for f in TRAIN_FIELDS {
                    let mut it =
                        item(f.name, lsp::CompletionItemKind::FIELD, Some("train field".into()), Some(f.doc.into()));
                    it.insert_text = Some(format!("{} = ", f.name));
                    out.push(it);
                }
            }
            if decl.is_some() {
                values(analysis, index, offset, decl.as_deref() == Some("train"), &mut out);
            }
        }
        Context::Expression { decl } => values(analysis, index, offset, decl.as_deref() == Some("train"), &mut out),
    }
    out
}

/// Inside `init = normal(…)`: the initialiser's options not yet given, or the words of a word option.
fn initialiser_items(init: &str, given: &[String], value_of: Option<&str>, out: &mut Vec<lsp::CompletionItem>) {
    let Some(f) = nnc_compiler::schema::lookup_initialiser(init) else { return };
    match value_of {
        Some(option) => {
            if let Some(nnc_compiler::schema::ValueKind::Choice(words)) = f.option(option).map(|o| o.value) {
                for w in words {
                    let detail = Some(format!("{init}(…, {option} = {w})"));
                    out.push(item(w, lsp::CompletionItemKind::ENUM_MEMBER, detail, None));
                }
            }
        }
        None => {
            for o in f.options.iter().filter(|o| !given.iter().any(|g| g == o.name)) {
                let mut it = item(o.name, lsp::CompletionItemKind::FIELD, Some(format!("{init} option")), None);
                it.documentation = Some(lsp::Documentation::String(o.describe()));
                it.insert_text = Some(format!("{} = ", o.name));
                out.push(it);
            }
        }
    }
}

/// The bare words an option takes, if it takes words.
fn option_words(callee: &str, option: &str) -> Option<Vec<String>> {
    let arg = layers::lookup(callee)?.arg(option)?;
    let words: Vec<String> = match arg.kind {
        ArgKind::Padding => vec!["valid".into(), "same".into()],
        ArgKind::Mode(ws) => ws.iter().map(|w| w.to_string()).collect(),
        ArgKind::Bool => vec!["true".into(), "false".into()],
        ArgKind::Activation => layers::activation_words().iter().map(|w| w.to_string()).collect(),
        ArgKind::Init => nnc_compiler::schema::initialiser_names().map(str::to_string).collect(),
        ArgKind::Layer => LAYERS
            .iter()
            .filter(|l| l.family == Family::Layer && l.operands == Operands::One)
            .map(|l| l.name.to_string())
            .collect(),
        _ => return None,
    };
    Some(words)
}

/// Keyword options of a layer, block, model or train function not yet given.
fn options(analysis: &Analysis, index: &Index, callee: &str, given: &[String], out: &mut Vec<lsp::CompletionItem>) {
    let mut push = |name: &str, detail: String, doc: Option<String>| {
        if given.iter().any(|g| g == name) {
            return;
        }
        let mut it = item(name, lsp::CompletionItemKind::FIELD, Some(detail), doc);
        it.insert_text = Some(format!("{name} = "));
        // Options first, before values.
        it.sort_text = Some(format!("0_{name}"));
        out.push(it);
    };
    if let Some(layer) = layers::lookup(callee) {
        for a in layer.args {
            push(a.name, format!("{} option", layer.name), Some(format!("{} ({})", a.doc, a.kind.describe())));
        }
        if layer.family == Family::Layer {
            push("name", "parameter prefix".into(), Some("Names this layer's parameters (`name.kernel`, …).".into()));
        }
        return;
    }
    if let Some(&def) = index
        .defs
        .iter()
        .enumerate()
        .find(|(_, d)| d.name == callee && matches!(d.kind, DefKind::Block | DefKind::Model))
        .map(|(i, _)| i)
        .as_ref()
    {
        let hints = hint_map(analysis);
        for (_, d) in index.children(def).filter(|(_, d)| matches!(d.kind, DefKind::Param | DefKind::Input)) {
            let ty = hints.get(&(d.file, d.span)).map(|v| v.to_string());
            push(&d.name, format!("{} of {callee}", d.kind.describe()), ty);
        }
        return;
    }
    if let Some(f) = lookup_fn(callee) {
        for o in f.options {
            push(o.name, format!("{callee} option"), Some(o.describe()));
        }
    }
}

fn layer_items(analysis: &Analysis, index: &Index, stage: bool, out: &mut Vec<lsp::CompletionItem>) {
    for l in LAYERS {
        if stage && l.operands == Operands::None {
            continue;
        }
        let kind =
            if l.family == Family::Layer { lsp::CompletionItemKind::CLASS } else { lsp::CompletionItemKind::FUNCTION };
        out.push(item(l.name, kind, Some(l.signature.to_string()), Some(l.doc.to_string())));
    }
    let _ = analysis;
    for d in index.defs.iter().filter(|d| d.kind == DefKind::Block || (!stage && d.kind == DefKind::Model)) {
        out.push(item(&d.name, lsp::CompletionItemKind::MODULE, Some(d.kind.describe().to_string()), None));
    }
}

/// Everything an expression can name at `offset`: layers, blocks, models,
/// bindings and dims in scope, and in train blocks the train functions.
fn values(analysis: &Analysis, index: &Index, offset: usize, in_train: bool, out: &mut Vec<lsp::CompletionItem>) {
    layer_items(analysis, index, false, out);
    let hints = hint_map(analysis);
    let root = FileId(0);
    // The declaration around the cursor owns the bindings in scope.
    let owner = index.defs.iter().position(|d| d.file == root && d.owner.is_none() && d.decl.contains(offset));
    // Labels already offered: a model of thousands of lets must not cost a quadratic scan.
    let mut seen: std::collections::HashSet<String> = out.iter().map(|o| o.label.clone()).collect();
    for d in &index.defs {
        let visible = match d.kind {
            DefKind::Dim => true,
            DefKind::Param
            | DefKind::Input
            | DefKind::Let
            | DefKind::Output
            | DefKind::DataArray
            | DefKind::PatternDim => owner.is_some() && d.owner == owner && d.span.end as usize <= offset,
            _ => false,
        };
        if !visible || !seen.insert(d.name.clone()) {
            continue;
        }
        let kind = if matches!(d.kind, DefKind::Dim | DefKind::PatternDim) {
            lsp::CompletionItemKind::CONSTANT
        } else {
            lsp::CompletionItemKind::VARIABLE
        };
        let ty = hints.get(&(d.file, d.span)).map(|v| format!("{} {}: {v}", d.kind.describe(), d.name));
        out.push(item(&d.name, kind, Some(ty.unwrap_or_else(|| d.kind.describe().to_string())), None));
    }
    if in_train {
        for f in TRAIN_FUNCTIONS {
            let kind = f.kind.noun();
            out.push(item(f.name, lsp::CompletionItemKind::FUNCTION, Some(kind.to_string()), Some(f.doc.to_string())));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at_end(text: &str) -> Context {
        context(text, text.len())
    }

    /// Inside `init = …(`, the initialiser's options and words come from the schema, not the layer `normal`.
    #[test]
    fn initialiser_options_and_words() {
        let cx = at_end("model M {\n    let h = dense(x, 4, init = variance_scaling(scale = 2, ");
        let Context::Initialiser { init, given, value_of: None } = cx else { panic!("{cx:?}") };
        assert_eq!((init.as_str(), given.as_slice()), ("variance_scaling", &["scale".to_string()][..]));
        let mut out = Vec::new();
        initialiser_items(&init, &given, None, &mut out);
        assert_eq!(out.iter().map(|i| i.label.as_str()).collect::<Vec<_>>(), ["mode", "distribution"]);
        let cx = at_end("model M {\n    let h = lstm(x, 4, recurrent_init = variance_scaling(mode = ");
        let Context::Initialiser { init, value_of: Some(option), .. } = cx else { panic!("{cx:?}") };
        let mut out = Vec::new();
        initialiser_items(&init, &[], Some(&option), &mut out);
        assert_eq!(out.iter().map(|i| i.label.as_str()).collect::<Vec<_>>(), ["fan_in", "fan_out", "fan_avg"]);
        // `normal([N, 4])` as a tensor function is still a call of the layer table.
        let cx = at_end("model M {\n    let z = normal(");
        assert!(matches!(&cx, Context::Argument { callee, .. } if callee == "normal"), "{cx:?}");
    }

    #[test]
    fn options_inside_a_layer_call() {
        match at_end("model M {\n    let h = x |> conv2d(16, kernel = 3, pa") {
            Context::Argument { callee, given, value_of } => {
                assert_eq!(callee, "conv2d");
                assert_eq!(given, ["kernel"]);
                assert_eq!(value_of, None);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn mode_words_after_an_option() {
        assert_eq!(
            at_end("model M {\n    let h = conv2d(x, 16, padding = "),
            Context::Argument { callee: "conv2d".into(), given: vec![], value_of: Some("padding".into()) }
        );
        assert_eq!(option_words("conv2d", "padding"), Some(vec!["valid".to_string(), "same".to_string()]));
        let acts = option_words("dense", "activation").expect("activation words");
        assert_eq!(acts[0], "none");
        assert!(acts.contains(&"relu".to_string()) && !acts.contains(&"dense".to_string()), "{acts:?}");
    }

    #[test]
    fn stages_statements_and_nested_calls() {
        assert_eq!(at_end("model M {\n    let h = x |> "), Context::Stage);
        assert_eq!(at_end("model M {\n    let h = x |> re"), Context::Stage);
        assert_eq!(at_end("train t {\n    model = M()\n    lo"), Context::Statement { decl: Some("train".into()) });
        assert!(matches!(at_end("model M {\n    let h = bidirectional(x, lstm(3, \
                seq"), Context::Argument { callee, .. } if callee == "lstm"));
        assert_eq!(at_end("dim N\n\nmo"), Context::Statement { decl: None });
        assert_eq!(at_end("model M {\n    let h = x + "), Context::Expression { decl: Some("model".into()) });
        // Far above text does not matter: the context starts at the declaration.
        let long = format!("{}model M {{\n    output y = dense(x, 3, ", "dim N\n".repeat(1000));
        assert!(matches!(at_end(&long), Context::Argument { callee, given, value_of: None }
                if callee == "dense" && given.is_empty()));
    }
}
