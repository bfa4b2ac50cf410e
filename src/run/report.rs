//! `report.html`: one self-contained page per run (inline SVG and CSS, no scripts, nothing fetched, so it
//! opens offline and from an archive), rewritten after every epoch by a rename, so a browser refresh shows the
//! progress and never half a page. It holds the curves, the last epoch's metrics, a confusion matrix for
//! classifiers and the model's summary table.

use std::fmt::Write as _;
use std::path::Path;

use nnc_compiler::check::train::TrainInfo;
use nnc_compiler::graph::{NodeKind, Operand, TRef};
use nnc_runtime::exec::Tensor;
use nnc_runtime::train::{Dataset, EpochRecord};
use nnc_syntax::ast::ElemType;

use super::Failure;
use super::plot::{self, StepLog};

/// What a classifier's confusion matrix is computed from: the scores `[N, K]` given to a `cross_entropy` loss
/// or an `accuracy` metric, and the data array of class labels `[N]` they are compared with.
#[derive(Clone, Debug)]
pub struct Classifier {
    pub scores: TRef,
    pub labels: String,
    pub classes: usize,
}

/// Classes above this are not drawn as a matrix (a language model's vocabulary): the page would be megabytes.
const MAX_CLASSES: usize = 100;

/// The block's classifier, if its loss or a metric compares `[N, K]` scores with class labels that come
/// straight from a data array (the labels are then read from the validation rows as they are).
pub fn classifier(info: &TrainInfo) -> Option<Classifier> {
    let objectives = info.loss.iter().chain(info.metrics.iter().map(|(_, t)| t));
    objectives.into_iter().find_map(|r| {
        let NodeKind::Objective { function, pred, target: Operand::Tensor(target), .. } =
            &info.graph.nodes.get(r.node as usize)?.kind
        else {
            return None;
        };
        if !matches!(*function, "cross_entropy" | "accuracy") {
            return None;
        }
        let t = info.graph.nodes.get(target.node as usize)?;
        let NodeKind::Data { name } = &t.kind else { return None };
        let label_ty = t.outputs.get(target.output as usize)?;
        let score_ty = info.graph.nodes.get(pred.node as usize)?.outputs.get(pred.output as usize)?;
        let classes = score_ty.dims.get(1)?.as_known()?;
        // Labels `[N]` against scores `[N, K]` are class indices, whether the data typed them `int` or (a CSV
        // column the model does not declare) float.
        let fits = label_ty.dims.len() == 1 && score_ty.dims.len() == 2 && score_ty.elem != ElemType::Int;
        (fits && (2..=MAX_CLASSES as i64).contains(&classes)).then(|| Classifier {
            scores: *pred,
            labels: name.clone(),
            classes: classes as usize,
        })
    })
}

/// Counts of (true class, predicted class) over the validation rows; `counts[t * classes + p]`.
#[derive(Clone, Debug)]
pub struct Confusion {
    pub classes: usize,
    pub counts: Vec<u64>,
}

impl Confusion {
    /// From scores `[n, classes]` (argmax; the first of equal maxima, NaN never wins) and the labels.
    /// Labels outside the classes are not counted (the label check refuses them before training).
    pub fn of(classes: usize, scores: &[f32], labels: &Tensor<f32>) -> Confusion {
        let mut counts = vec![0u64; classes * classes];
        let labels: Vec<i64> = match labels {
            Tensor::I(a) => a.iter().copied().collect(),
            // A fractional or huge value is no class: never counted.
            Tensor::F(a) => a.iter().map(|&v| if v.fract() == 0.0 && v.abs() < 1e9 { v as i64 } else { -1 }).collect(),
        };
        for (row, &t) in scores.chunks_exact(classes.max(1)).zip(&labels) {
            let better = |v: f32, b: f32| v > b || (b.is_nan() && !v.is_nan());
            let p = row.iter().enumerate().fold(0, |best, (i, &v)| if better(v, row[best]) { i } else { best });
            if let Ok(t) = usize::try_from(t)
                && t < classes
            {
                counts[t * classes + p] += 1;
            }
        }
        Confusion { classes, counts }
    }
}

/// The validation labels of `c`, if the validation data holds them.
pub fn labels<'a>(c: &Classifier, val: &'a Dataset) -> Option<&'a Tensor<f32>> {
    val.arrays.get(&c.labels)
}

/// The parts of the page that do not change during the run.
pub struct Report {
    pub train: String,
    pub model: Option<String>,
    pub epochs: usize,
    pub metrics: Vec<String>,
    /// `nnc summary`'s table of the model.
    pub summary: Option<String>,
}

/// How far the run is.
pub struct Progress<'a> {
    pub history: &'a [EpochRecord],
    pub steps: &'a StepLog,
    pub confusion: Option<&'a Confusion>,
    /// `(test loss, test metrics)` once the run evaluated its test data.
    pub test: Option<(f64, &'a [(String, f64)])>,
    pub finished: bool,
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

const STYLE: &str = "body{font-family:sans-serif;margin:24px;color:#222;max-width:1000px}\
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}\
th{background:#f4f4f4}pre{background:#f8f8f8;padding:8px;overflow-x:auto}\
.muted{color:#777}td.diag{background:#d9ead3}";

impl Report {
    /// The page's HTML.
    pub fn html(&self, p: &Progress) -> String {
        let mut h = String::new();
        let title = format!("nnc run: {}", self.train);
        let _ = write!(
            h,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>",
            escape(&title)
        );
        let _ = write!(h, "<style>{STYLE}</style></head><body>\n<h1>{}</h1>\n", escape(&title));
        let done = p.history.last().map_or(0, |r| r.epoch + 1);
        let state = if p.finished { "finished" } else { "running" };
        let model = self.model.as_deref().map(|m| format!(" of model <code>{}</code>", escape(m))).unwrap_or_default();
        let _ = writeln!(
            h,
            "<p>train block <code>{}</code>{model}: {state}, epoch {done} of {}.</p>",
            escape(&self.train),
            self.epochs
        );
        h.push_str("<h2 id=\"curves\">Curves</h2>\n");
        if p.history.is_empty() && p.steps.points.is_empty() {
            h.push_str("<p class=\"muted\">No epoch has finished yet.</p>\n");
        } else {
            h.push_str(&inline_svg(&plot::svg(p.history, p.steps, &self.metrics)));
        }
        h.push_str("<h2 id=\"metrics\">Final metrics</h2>\n");
        metrics_table(&mut h, p);
        if let Some(c) = p.confusion {
            h.push_str("<h2 id=\"confusion\">Confusion matrix (validation)</h2>\n");
            confusion_table(&mut h, c);
        }
        if let Some(s) = &self.summary {
            h.push_str("<h2 id=\"model\">Model</h2>\n");
            let _ = writeln!(h, "<pre>{}</pre>", escape(s));
        }
        h.push_str("</body></html>\n");
        h
    }

    /// Writes `dir/report.html` by a rename of a temporary file beside it.
    pub fn write(&self, dir: &Path, p: &Progress) -> Result<(), Failure> {
        let path = dir.join("report.html");
        let tmp = dir.join(format!(".report.{}.tmp", std::process::id()));
        let fail = |e: std::io::Error| Failure::new(format!("{}: {e}", path.display()));
        std::fs::write(&tmp, self.html(p)).map_err(fail)?;
        std::fs::rename(&tmp, &path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            fail(e)
        })
    }
}

/// An SVG document as an element of the page: HTML knows the SVG namespace, so the declaration goes (the page
/// names no URL at all).
fn inline_svg(svg: &str) -> String {
    svg.replacen(" xmlns=\"http://www.w3.org/2000/svg\"", "", 1)
}

fn metrics_table(h: &mut String, p: &Progress) {
    let Some(last) = p.history.last() else {
        h.push_str("<p class=\"muted\">No epoch has finished yet.</p>\n");
        return;
    };
    let _ = writeln!(h, "<p>After epoch {}.</p>", last.epoch + 1);
    h.push_str("<table><tr><th>quantity</th><th>train</th><th>validation</th><th>test</th></tr>\n");
    let names = std::iter::once("loss".to_string()).chain(last.metrics.iter().map(|(n, _)| n.clone()));
    for (k, name) in names.enumerate() {
        let cell = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.4}"));
        let test = p.test.and_then(|(l, ms)| if k == 0 { Some(l) } else { ms.get(k - 1).map(|m| m.1) });
        let _ = writeln!(
            h,
            "<tr><th>{}</th><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&name),
            cell(last.value(&name)),
            cell(last.value(&format!("val_{name}"))),
            cell(test)
        );
    }
    h.push_str("</table>\n");
}

fn confusion_table(h: &mut String, c: &Confusion) {
    let total: u64 = c.counts.iter().sum();
    let right: u64 = (0..c.classes).map(|i| c.counts[i * c.classes + i]).sum();
    let _ = writeln!(
        h,
        "<p>{total} validation rows, {right} on the diagonal. Rows: true class; columns: predicted class.</p>"
    );
    h.push_str("<table class=\"confusion\"><tr><th>true \\ predicted</th>");
    for j in 0..c.classes {
        let _ = write!(h, "<th>{j}</th>");
    }
    h.push_str("<th>total</th></tr>\n");
    for i in 0..c.classes {
        let row = &c.counts[i * c.classes..(i + 1) * c.classes];
        let _ = write!(h, "<tr><th>{i}</th>");
        for (j, n) in row.iter().enumerate() {
            let class = if i == j { " class=\"diag\"" } else { "" };
            let _ = write!(h, "<td{class}>{n}</td>");
        }
        let _ = writeln!(h, "<td>{}</td></tr>", row.iter().sum::<u64>());
    }
    h.push_str("</table>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confusion_counts_argmax_against_labels() {
        let scores = [0.9, 0.1, 0.2, 0.8, f32::NAN, 0.5, 0.7, 0.3];
        let labels = Tensor::I(ndarray::ArrayD::from_shape_vec(vec![4], vec![0, 1, 1, 7]).unwrap());
        let c = Confusion::of(2, &scores, &labels);
        // Row 3's label 7 is no class: not counted.
        assert_eq!(c.counts, [1, 0, 0, 2]);
        let labels = Tensor::F(ndarray::ArrayD::from_shape_vec(vec![4], vec![0.0, 1.0, 0.5, 1.0]).unwrap());
        assert_eq!(Confusion::of(2, &scores, &labels).counts, [1, 0, 1, 1], "0.5 is no class");
    }
}
