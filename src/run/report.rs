//! `report.html`: one self-contained page per run (inline SVG and CSS, no scripts, nothing fetched, so it
//! opens offline and from an archive), rewritten after every epoch by a rename, so a browser refresh shows the
//! progress and never half a page. It holds the curves, the last epoch's metrics, a confusion matrix for
//! classifiers and the model's summary table.

use std::fmt::Write as _;
use std::path::Path;

use nnc_compiler::check::train::TrainInfo;
use nnc_compiler::graph::{NodeKind, Operand, TRef};
use nnc_runtime::exec::Tensor;
use nnc_runtime::train::{Dataset, EpochRecord, Keep, Seen, Watch};
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

/// Class labels as integers; a fractional or huge value is no class (-1).
fn class_labels(labels: &Tensor<f32>) -> Vec<i64> {
    match labels {
        Tensor::I(a) => a.iter().copied().collect(),
        Tensor::F(a) => a.iter().map(|&v| if v.fract() == 0.0 && v.abs() < 1e9 { v as i64 } else { -1 }).collect(),
    }
}

impl Confusion {
    /// From the predicted class of each row (the validation pass's argmax) and the labels. Labels outside the
    /// classes are not counted (the label check refuses them before training).
    pub fn of(classes: usize, predicted: &[usize], labels: &[i64]) -> Confusion {
        let mut counts = vec![0u64; classes * classes];
        for (&p, &t) in predicted.iter().zip(labels) {
            if let Ok(t) = usize::try_from(t)
                && t < classes
                && p < classes
            {
                counts[t * classes + p] += 1;
            }
        }
        Confusion { classes, counts }
    }
}

/// What the report asks the validation pass for, decided once from the typed graph and the validation data.
#[derive(Default)]
pub struct Plan {
    classifier: Option<Classifier>,
    /// The model input whose validation rows the sample grid shows, as it is drawn.
    shown: Option<Shown>,
}

/// A model input shown in the report: the data array that holds it and how a row is drawn.
#[derive(Clone, Debug)]
pub struct Shown {
    /// The data array (validation rows).
    pub array: String,
    pub look: Look,
}

/// How one row of a tensor is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Look {
    /// An image `height × width × channels` (channels 1 or 3).
    Image { height: usize, width: usize, channels: usize },
    /// Numbers: the first few values of the row in a table.
    Values,
}

/// Rows in the sample grid: enough to see a pattern, few enough for a page refreshed every epoch.
pub const GRID_ROWS: usize = 32;

/// How a row of a tensor typed `dims` (`[N, …]`) is drawn: `[N, H, W, C]` with C of 1 or 3 and `[N, H, W]`
/// as images; `[N, D]` with D a square of at least 8² (784 = 28², MNIST flattened by its CSV) as a grey
/// square; anything else as numbers.
pub fn look(dims: &[nnc_compiler::dims::Dim]) -> Look {
    let known: Option<Vec<i64>> = dims.iter().skip(1).map(|d| d.as_known()).collect();
    let Some(k) = known else { return Look::Values };
    let size = |v: i64| usize::try_from(v).ok().filter(|&v| (1..=4096).contains(&v));
    match k.as_slice() {
        [h, w, c] if matches!(c, 1 | 3) => match (size(*h), size(*w)) {
            (Some(height), Some(width)) if height >= 2 && width >= 2 => {
                Look::Image { height, width, channels: *c as usize }
            }
            _ => Look::Values,
        },
        [h, w] => match (size(*h), size(*w)) {
            (Some(height), Some(width)) if height >= 2 && width >= 2 => Look::Image { height, width, channels: 1 },
            _ => Look::Values,
        },
        [d] => {
            let side = (*d as f64).sqrt().round() as i64;
            if side >= 8 && side * side == *d {
                Look::Image { height: side as usize, width: side as usize, channels: 1 }
            } else {
                Look::Values
            }
        }
        _ => Look::Values,
    }
}

/// The data arrays `r` is computed from, following model inputs to what feeds them, in the order first met.
pub fn data_ancestors(info: &TrainInfo, r: TRef) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen = vec![false; info.graph.nodes.len()];
    let mut stack = vec![r];
    while let Some(t) = stack.pop() {
        let Some(node) = info.graph.nodes.get(t.node as usize) else { continue };
        if std::mem::replace(&mut seen[t.node as usize], true) {
            continue;
        }
        let tensors = |o: &Operand| if let Operand::Tensor(t) = o { Some(*t) } else { None };
        match &node.kind {
            NodeKind::Data { name } => {
                if !out.contains(name) {
                    out.push(name.clone());
                }
            }
            NodeKind::Input { name } => match info.feeds.iter().find(|(n, _)| n == name) {
                Some((_, f)) => stack.push(*f),
                // An input fed by the data array of its own name.
                None => {
                    if !out.contains(name) {
                        out.push(name.clone());
                    }
                }
            },
            NodeKind::Layer { inputs, .. } => stack.extend(inputs.iter().rev()),
            NodeKind::Binary { lhs, rhs, .. } => stack.extend([tensors(rhs), tensors(lhs)].into_iter().flatten()),
            NodeKind::Index { base, .. } => stack.push(*base),
            NodeKind::Objective { pred, target, .. } => stack.extend(tensors(target).into_iter().chain([*pred])),
            NodeKind::L2 => {}
        }
    }
    out
}

/// The model input the sample grid shows: the first input `scores` depends on that is held whole by a
/// validation data array (its rows have as many values as the input's type), drawn as its type says.
fn shown_input(info: &TrainInfo, scores: TRef, val: &Dataset) -> Option<Shown> {
    let used = data_ancestors(info, scores);
    info.model_inputs.iter().find_map(|(name, r)| {
        let ty = info.graph.nodes.get(r.node as usize)?.outputs.get(r.output as usize)?;
        let per_row: i64 = ty.dims.iter().skip(1).map(|d| d.as_known()).product::<Option<i64>>()?;
        let feed = info.feeds.iter().find(|(n, _)| n == name).map(|(_, f)| *f);
        let arrays = match feed {
            Some(f) => data_ancestors(info, f),
            None => vec![name.clone()],
        };
        arrays.into_iter().filter(|a| used.contains(a)).find_map(|a| {
            let t = val.arrays.get(&a)?;
            let shape = shape_of(t);
            let row: usize = shape.iter().skip(1).product();
            (row as i64 == per_row && !shape.is_empty()).then(|| Shown { array: a, look: look(&ty.dims) })
        })
    })
}

fn shape_of(t: &Tensor<f32>) -> Vec<usize> {
    match t {
        Tensor::F(a) => a.shape().to_vec(),
        Tensor::I(a) => a.shape().to_vec(),
    }
}

impl Plan {
    /// What to watch for the run of `info` validated on `val` (nothing without validation data).
    pub fn of(info: &TrainInfo, val: Option<&Dataset>) -> Plan {
        let Some(val) = val.filter(|v| !v.is_empty()) else { return Plan::default() };
        let classifier = classifier(info).filter(|c| val.arrays.contains_key(&c.labels));
        let shown = classifier.as_ref().and_then(|c| shown_input(info, c.scores, val));
        Plan { classifier, shown }
    }

    /// The tensors the validation pass computes for the report ([`nnc_runtime::train::Trainer::watch`]).
    pub fn watches(&self) -> Vec<Watch> {
        let mut w = Vec::new();
        if let Some(c) = &self.classifier {
            w.push(Watch { name: "scores".into(), tensor: c.scores, keep: Keep::Argmax });
        }
        w
    }

    /// The report's views of one validation pass: `seen` in the order of [`Plan::watches`].
    pub fn observe(&self, seen: Vec<Seen>, val: &Dataset) -> Views {
        let mut seen = seen.into_iter();
        let mut views = Views::default();
        if let Some(c) = &self.classifier
            && let Some(Seen::Argmax(predicted)) = seen.next()
            && let Some(labels) = val.arrays.get(&c.labels)
        {
            let labels = class_labels(labels);
            views.confusion = Some(Confusion::of(c.classes, &predicted, &labels));
            if let Some(shown) = &self.shown
                && let Some(x) = val.arrays.get(&shown.array)
            {
                views.samples = Some(Samples::classified(shown, x, &predicted, &labels));
            }
        }
        views
    }
}

/// Validation rows with what the model made of them.
#[derive(Clone, Debug)]
pub struct Samples {
    pub look: Look,
    /// Per row: its values (as the data holds them), the caption, and whether it is marked (misclassified).
    pub rows: Vec<(Vec<f32>, String, bool)>,
    /// The array the rows come from.
    pub array: String,
}

impl Samples {
    /// Up to [`GRID_ROWS`] rows of `x`, misclassified first, each captioned `true → predicted`.
    fn classified(shown: &Shown, x: &Tensor<f32>, predicted: &[usize], labels: &[i64]) -> Samples {
        let x = x.float();
        let per = x.shape().iter().skip(1).product::<usize>();
        let flat: Vec<f32> = x.iter().copied().collect();
        let n = predicted.len().min(labels.len()).min(x.shape().first().copied().unwrap_or(0));
        let wrong = |i: &usize| usize::try_from(labels[*i]).ok() != Some(predicted[*i]);
        let mut order: Vec<usize> = (0..n).filter(wrong).collect();
        order.extend((0..n).filter(|i| !wrong(i)));
        order.truncate(GRID_ROWS);
        let rows = order
            .into_iter()
            .map(|i| {
                let values = flat[i * per..(i + 1) * per].to_vec();
                (values, format!("{} → {}", labels[i], predicted[i]), wrong(&i))
            })
            .collect();
        Samples { look: shown.look, rows, array: shown.array.clone() }
    }
}

/// What the page shows of the last validation pass.
#[derive(Clone, Debug, Default)]
pub struct Views {
    pub confusion: Option<Confusion>,
    /// Classifiers: validation samples with true and predicted labels.
    pub samples: Option<Samples>,
}

impl Views {
    /// The views' pictures as TensorBoard images at step `epoch` (`validation/`).
    pub fn to_board(&self, board: &mut super::tensorboard::Writer, epoch: usize) {
        let _ = (board, epoch);
    }
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
    /// What the last validation pass showed.
    pub views: &'a Views,
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
        if let Some(c) = &p.views.confusion {
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
        let predicted: Vec<usize> = scores.chunks(2).map(nnc_runtime::train::argmax).collect();
        assert_eq!(predicted, [0, 1, 1, 0], "NaN never wins");
        let labels = Tensor::I(ndarray::ArrayD::from_shape_vec(vec![4], vec![0, 1, 1, 7]).unwrap());
        let c = Confusion::of(2, &predicted, &class_labels(&labels));
        // Row 3's label 7 is no class: not counted.
        assert_eq!(c.counts, [1, 0, 0, 2]);
        let labels = Tensor::F(ndarray::ArrayD::from_shape_vec(vec![4], vec![0.0, 1.0, 0.5, 1.0]).unwrap());
        assert_eq!(Confusion::of(2, &predicted, &class_labels(&labels)).counts, [1, 0, 1, 1], "0.5 is no class");
    }
}
