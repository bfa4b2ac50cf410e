//! `nnc summary`: a Keras-like table of layers with output shapes and
//! parameter counts, and its JSON form (docs/src/cli.md).

use std::fmt::Write;

use crate::check::ModelInfo;
use crate::types::Value;

/// Parameter totals of a model. `None` when some count is symbolic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Totals {
    /// Parameters updated by training, summed over layers.
    pub trainable: i64,
    /// Parameters that are state, not trained (batch norm's moving mean and variance).
    pub non_trainable: i64,
    /// True when some parameter shape is symbolic and was not counted.
    pub symbolic: bool,
}

// The sums below saturate: the checker reports a model whose parameter
// count overflows (E0314), and its summary must still print, not panic.

impl Totals {
    /// Trainable plus non-trainable (saturating).
    pub fn total(&self) -> i64 {
        self.trainable.saturating_add(self.non_trainable)
    }
}

/// The parameter totals of `model`, counted over every layer application (blocks expanded).
pub fn totals(model: &ModelInfo) -> Totals {
    let mut t = Totals::default();
    for l in model.layers.iter().zip(shared_rows(model)).filter(|(_, shared)| !shared).map(|(l, _)| l) {
        for p in &l.params {
            match p.count() {
                Some(c) if p.trainable => t.trainable = t.trainable.saturating_add(c),
                Some(c) => t.non_trainable = t.non_trainable.saturating_add(c),
                None => t.symbolic = true,
            }
        }
    }
    t
}

/// For each of `model.layers`, whether an earlier row already holds its parameters. A model called twice
/// (a Siamese pair, a discriminator scoring real and generated images) applies its layers twice with one
/// set of weights, as Keras does: the second rows are listed, but their parameters count once.
pub fn shared_rows(model: &ModelInfo) -> Vec<bool> {
    let mut seen = std::collections::HashSet::new();
    model.layers.iter().map(|l| !l.params.is_empty() && !seen.insert(l.name.as_str())).collect()
}

/// Parameter count of one layer, or its symbolic shape product as text.
pub fn layer_params(l: &crate::check::LayerRecord) -> Result<i64, String> {
    let mut total = 0i64;
    for p in &l.params {
        match p.count() {
            Some(c) => total = total.saturating_add(c),
            None => {
                let dims: Vec<String> = p.shape.iter().map(|d| d.to_string()).collect();
                return Err(dims.join("·"));
            }
        }
    }
    Ok(total)
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: i64) -> String {
    let s = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    if n < 0 { format!("-{out}") } else { out }
}

fn shape_text(v: &Value) -> String {
    v.to_string()
}

/// The human table.
pub fn render(model: &ModelInfo) -> String {
    let mut rows: Vec<[String; 4]> = Vec::new();
    let shared_row = shared_rows(model);
    for (name, ty) in &model.inputs {
        rows.push([name.clone(), "input".into(), ty.to_string(), "0".into()]);
    }
    for (i, l) in model.layers.iter().enumerate() {
        // A block call opens a group: a row with the block's name, its output and its
        // parameter total, then its layers (and nested calls) indented under it.
        let shared = match i.checked_sub(1).map(|p| &model.layers[p].blocks) {
            Some(prev) => prev.iter().zip(&l.blocks).take_while(|(a, b)| a.prefix == b.prefix).count(),
            None => 0,
        };
        for depth in shared..l.blocks.len() {
            let call = &l.blocks[depth];
            let in_call = |m: &&crate::check::LayerRecord| m.blocks.get(depth).is_some_and(|c| c.prefix == call.prefix);
            let members: Vec<&crate::check::LayerRecord> = model.layers[i..].iter().take_while(in_call).collect();
            let (prefix, block, output) = (&call.prefix, &call.block, shape_text(&call.output));
            let params = members.iter().try_fold(0i64, |sum, m| layer_params(m).map(|n| sum.saturating_add(n)));
            let params = params.map_or_else(|_| "symbolic".to_string(), thousands);
            rows.push([format!("{}{prefix}", "  ".repeat(depth)), format!("block {block}"), output, params]);
        }
        let params = match layer_params(l) {
            _ if shared_row[i] => "shared".to_string(),
            Ok(n) => thousands(n),
            Err(sym) => sym,
        };
        let name = format!("{}{}", "  ".repeat(l.blocks.len()), l.name);
        rows.push([name, l.layer.to_string(), shape_text(&l.output), params]);
    }
    let headers = ["Layer (name)", "Type", "Output shape", "Params"];
    let mut widths = headers.map(|h| h.chars().count());
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line_width: usize = widths.iter().sum::<usize>() + 3 * 3;
    let mut out = String::new();
    let _ = writeln!(out, "Model: {}", model.name);
    if let Some(doc) = &model.doc {
        for l in doc.lines() {
            let _ = writeln!(out, "  {l}");
        }
    }
    let row = |out: &mut String, cells: [&str; 4]| {
        let _ = writeln!(
            out,
            "{:<w0$}   {:<w1$}   {:<w2$}   {:>w3$}",
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3]
        );
    };
    let _ = writeln!(out, "{}", "─".repeat(line_width));
    row(&mut out, headers);
    let _ = writeln!(out, "{}", "─".repeat(line_width));
    for r in &rows {
        row(&mut out, [&r[0], &r[1], &r[2], &r[3]]);
    }
    let _ = writeln!(out, "{}", "═".repeat(line_width));
    let t = totals(model);
    let suffix = if t.symbolic { " (plus symbolic shapes)" } else { "" };
    let _ = writeln!(out, "Total params: {}{suffix}", thousands(t.total()));
    let _ = writeln!(out, "Trainable params: {}", thousands(t.trainable));
    let _ = writeln!(out, "Non-trainable params: {}", thousands(t.non_trainable));
    let outputs: Vec<String> = model.outputs.iter().map(|(n, v)| format!("{n}: {v}")).collect();
    if !outputs.is_empty() {
        let _ = writeln!(out, "Outputs: {}", outputs.join(", "));
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::{CheckOptions, FsLoader, analyse};

    /// Runs `f` on a thread with a 2 MiB stack: the default of spawned
    /// threads, smaller than the CLI's (which runs on a large one).
    fn on_small_stack(f: impl FnOnce() + Send + 'static) {
        std::thread::Builder::new().stack_size(2 << 20).spawn(f).unwrap().join().expect("no stack overflow");
    }

    fn model(output: &str) -> String {
        format!("dim N\nmodel M {{\n    input x: [N, 4]\n    output y = {output}\n}}\n")
    }

    /// Every kind of nesting, just inside the parser's limits: parsing,
    /// checking, the summary and the formatter's tree comparison all
    /// recurse over it, and must fit in a small stack even in debug builds.
    #[test]
    fn nesting_at_the_limits_fits_a_small_stack() {
        let deep = nnc_syntax::MAX_DEPTH - 8;
        let brackets = nnc_syntax::MAX_NESTING - 4;
        let cases = vec![
            ("pipe", model(&format!("x{}", " |> relu".repeat(deep)))),
            ("sum", model(&vec!["x"; deep].join(" + "))),
            ("product", model(&vec!["x"; deep].join(" * "))),
            ("index", model(&format!("x{}", "[0:4]".repeat(deep)))),
            ("calls", model(&format!("{}x{}", "relu(".repeat(brackets), ")".repeat(brackets)))),
            ("parens", model(&format!("{}x{}", "(".repeat(brackets), ")".repeat(brackets)))),
            ("lists", model(&format!("x + {}1{}", "[".repeat(brackets), "]".repeat(brackets)))),
            ("dense", model(&format!("{}x{}", "dense(".repeat(brackets), ", 4)".repeat(brackets)))),
            (
                "else if",
                format!(
                    "dim N\nmodel M(k = 1) {{\n    input x: [N, 4]\n    if k == 0 {{ output y = x }}{} else {{ output \
                        y = relu(x) }}\n}}\n",
                    " else if k == 0 { output y = x }".repeat(deep)
                ),
            ),
        ];
        for (name, text) in cases {
            on_small_stack(move || {
                let a = analyse(
                    "deep.nn",
                    None,
                    text.clone(),
                    &FsLoader::for_file(std::path::Path::new("deep.nn")),
                    &CheckOptions::default(),
                );
                let errors: Vec<_> = a.result.diagnostics.iter().filter(|d| d.code.as_str().starts_with('E')).collect();
                assert!(errors.is_empty(), "{name}: {errors:?}");
                assert!(!super::render(&a.result.models[0]).is_empty());
                assert!(nnc_syntax::format::format_source(&text).is_ok(), "{name}: formats");
            });
        }
    }

    /// Past the limits: one syntax error, and nothing deeper is built.
    #[test]
    fn nesting_past_the_limits_is_a_syntax_error_on_a_small_stack() {
        let cases = vec![
            model(&format!("x{}", " |> relu".repeat(100_000))),
            model(&vec!["x"; 100_000].join(" + ")),
            model(&format!("x{}", "[0]".repeat(50_000))),
            model(&format!("{}x{}", "(".repeat(30_000), ")".repeat(30_000))),
            model(&format!("{}x{}", "relu(".repeat(30_000), ")".repeat(30_000))),
            format!(
                "dim N\nmodel M(k = 1) {{\n    input x: [N, 4]\n    if k == 0 {{ output y = x }}{}\n}}\n",
                " else if k == 0 { output y = x }".repeat(50_000)
            ),
        ];
        for text in cases {
            on_small_stack(move || {
                let a = analyse(
                    "deep.nn",
                    None,
                    text,
                    &FsLoader::for_file(std::path::Path::new("deep.nn")),
                    &CheckOptions::default(),
                );
                let too_deep = |d: &nnc_syntax::Diagnostic| {
                    d.code == nnc_syntax::Code::SyntaxError && d.message.contains("too deep")
                };
                assert!(a.result.diagnostics.iter().any(too_deep));
            });
        }
    }
}
