//! `report.html`: one self-contained page per run (inline SVG and CSS, no scripts, nothing fetched, so it
//! opens offline and from an archive), rewritten after every epoch by a rename, so a browser refresh shows the
//! progress and never half a page. It holds the curves, the last epoch's metrics, the model's summary table,
//! and what the typed graph says the block trains: for a classifier the confusion matrix and a grid of
//! validation samples, for an autoencoder inputs beside reconstructions, for a GAN the generated samples of each
//! epoch and the steps' losses on one chart. The pictures come from the validation pass itself
//! ([`Plan::watches`] → `Trainer::watch` → [`Plan::observe`]), drawn through `crate::picture`.

use std::fmt::Write as _;
use std::path::Path;

use nnc_compiler::check::train::TrainInfo;
use nnc_compiler::graph::{NodeKind, Operand, TRef};
use nnc_runtime::exec::Tensor;
use nnc_runtime::train::{Dataset, EpochRecord, Keep, Seen, Watch};
use nnc_syntax::ast::ElemType;

use base64::Engine as _;

use super::Failure;
use super::plot::{self, StepLog};
use crate::picture::{Grid, Scale, Tile};

/// What a classifier's confusion matrix is computed from: the scores given to a classification loss or an
/// `accuracy` metric, and the data array of class labels `[N]` they are compared with.
#[derive(Clone, Debug)]
pub struct Classifier {
    pub scores: TRef,
    pub labels: String,
    pub classes: usize,
    /// A binary classifier's threshold on its one score per row (0.5 for probabilities, 0 for logits);
    /// `None` for `[N, K]` scores, whose predicted class is the argmax.
    pub threshold: Option<f32>,
}

/// Classes above this are not drawn as a matrix (a language model's vocabulary): the page would be megabytes.
const MAX_CLASSES: usize = 100;

/// The block's classifier, if its loss or a metric compares scores with class labels `[N]` that come
/// straight from a data array (the labels are then read from the validation rows as they are): `[N, K]` scores
/// of `cross_entropy` or `accuracy`, or one score per row (`[N]`, `[N, 1]`) of `binary_cross_entropy`
/// (probabilities), `bce_with_logits` (logits) or `accuracy` (its `threshold`).
pub fn classifier(info: &TrainInfo) -> Option<Classifier> {
    let objectives = info.loss.iter().chain(info.metrics.iter().map(|(_, t)| t));
    objectives.into_iter().find_map(|r| {
        let NodeKind::Objective { function, pred, target: Operand::Tensor(target), options } =
            &info.graph.nodes.get(r.node as usize)?.kind
        else {
            return None;
        };
        let t = info.graph.nodes.get(target.node as usize)?;
        let NodeKind::Data { name } = &t.kind else { return None };
        let label_ty = t.outputs.get(target.output as usize)?;
        let score_ty = type_of(info, *pred)?;
        if label_ty.dims.len() != 1 || score_ty.elem == ElemType::Int {
            return None;
        }
        // One score per row: a binary classifier.
        let single = score_ty.dims.len() == 1 || (score_ty.dims.len() == 2 && score_ty.dims[1].as_known() == Some(1));
        let threshold = match *function {
            "binary_cross_entropy" if single => Some(0.5),
            "bce_with_logits" if single => Some(0.0),
            "accuracy" if single => {
                let given = options.iter().find(|(k, _)| k == "threshold").and_then(|(_, v)| v.as_f64());
                Some(given.or_else(|| nnc_compiler::schema::default_f64("accuracy", "threshold")).unwrap_or(0.5) as f32)
            }
            "cross_entropy" | "accuracy" => None,
            _ => return None,
        };
        let classes = match threshold {
            Some(_) => 2,
            // Labels `[N]` against scores `[N, K]` are class indices, whether the data typed them `int` or (a
            // CSV column the model does not declare) float.
            None if score_ty.dims.len() == 2 => score_ty.dims[1].as_known()?,
            None => return None,
        };
        (2..=MAX_CLASSES as i64).contains(&classes).then(|| Classifier {
            scores: *pred,
            labels: name.clone(),
            classes: classes as usize,
            threshold,
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
    autoencoder: Option<Autoencoder>,
    /// A GAN's generated samples and how they are drawn.
    generated: Option<(TRef, Look)>,
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

/// The tensors node `t` is computed from; a model input's is what feeds it (none when a data array of its
/// name feeds it).
fn operands(info: &TrainInfo, t: TRef) -> Vec<TRef> {
    let Some(node) = info.graph.nodes.get(t.node as usize) else { return Vec::new() };
    let tensor = |o: &Operand| if let Operand::Tensor(t) = o { Some(*t) } else { None };
    match &node.kind {
        NodeKind::Input { name } => info.feeds.iter().filter(|(n, _)| n == name).map(|(_, f)| *f).collect(),
        NodeKind::Layer { inputs, .. } => inputs.clone(),
        NodeKind::Binary { lhs, rhs, .. } => [tensor(lhs), tensor(rhs)].into_iter().flatten().collect(),
        NodeKind::Index { base, .. } => vec![*base],
        NodeKind::Objective { pred, target, .. } => std::iter::once(*pred).chain(tensor(target)).collect(),
        NodeKind::Data { .. } | NodeKind::L2 => Vec::new(),
    }
}

/// The data array a node reads directly: a data node, or a model input no `let` feeds.
fn reads_array(info: &TrainInfo, t: TRef) -> Option<&str> {
    match &info.graph.nodes.get(t.node as usize)?.kind {
        NodeKind::Data { name } => Some(name),
        NodeKind::Input { name } if !info.feeds.iter().any(|(n, _)| n == name) => Some(name),
        _ => None,
    }
}

/// The data arrays `r` is computed from, following model inputs to what feeds them, in the order first met.
pub fn data_ancestors(info: &TrainInfo, r: TRef) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut seen = vec![false; info.graph.nodes.len()];
    let mut stack = vec![r];
    while let Some(t) = stack.pop() {
        if seen.get(t.node as usize).is_none_or(|s| *s) {
            continue;
        }
        seen[t.node as usize] = true;
        if let Some(name) = reads_array(info, t)
            && !out.iter().any(|o| o == name)
        {
            out.push(name.to_string());
        }
        stack.extend(operands(info, t).into_iter().rev());
    }
    out
}

/// Whether `t` has a parameterised layer at or above it.
fn learned(info: &TrainInfo, t: TRef) -> bool {
    let mut seen = vec![false; info.graph.nodes.len()];
    let mut stack = vec![t];
    while let Some(t) = stack.pop() {
        if seen.get(t.node as usize).is_none_or(|s| *s) {
            continue;
        }
        seen[t.node as usize] = true;
        if let Some(NodeKind::Layer { params, .. }) = info.graph.nodes.get(t.node as usize).map(|n| &n.kind)
            && !params.is_empty()
        {
            return true;
        }
        stack.extend(operands(info, t));
    }
    false
}

/// The known sizes of a type's axes after the first, if all are known.
fn row_dims(ty: &nnc_compiler::types::TensorTy) -> Option<Vec<i64>> {
    ty.dims.iter().skip(1).map(|d| d.as_known()).collect()
}

fn type_of(info: &TrainInfo, t: TRef) -> Option<&nnc_compiler::types::TensorTy> {
    info.graph.nodes.get(t.node as usize)?.outputs.get(t.output as usize)
}

/// A GAN's generated samples: the last tensor of the graph computed from no data array (random draws only)
/// through learned layers, shaped like the rows of a data array and drawable as an image — what the
/// generator makes of its noise.
fn generated(info: &TrainInfo) -> Option<(TRef, Look)> {
    let data_rows: Vec<Vec<i64>> = info
        .graph
        .nodes
        .iter()
        .filter(|n| matches!(n.kind, NodeKind::Data { .. }))
        .filter_map(|n| row_dims(n.outputs.first()?))
        .collect();
    (0..info.graph.nodes.len()).rev().find_map(|i| {
        let t = TRef { node: i as u32, output: 0 };
        let ty = type_of(info, t)?;
        let rows = row_dims(ty)?;
        let look = look(&ty.dims);
        let fits = matches!(look, Look::Image { .. }) && data_rows.contains(&rows) && ty.elem != ElemType::Int;
        (fits && data_ancestors(info, t).is_empty() && learned(info, t)).then_some((t, look))
    })
}

/// An autoencoder's loss: an objective comparing a model output (through learned layers) with a tensor of
/// the same type computed only from data arrays a model input is also computed from: its own input, maybe
/// before noise was added.
fn autoencoder(info: &TrainInfo) -> Option<Autoencoder> {
    let loss = info.loss?;
    let NodeKind::Objective { pred, target: Operand::Tensor(target), .. } =
        &info.graph.nodes.get(loss.node as usize)?.kind
    else {
        return None;
    };
    let (pty, tty) = (type_of(info, *pred)?, type_of(info, *target)?);
    let rows = row_dims(pty)?;
    if row_dims(tty)? != rows || pty.elem == ElemType::Int || !learned(info, *pred) || learned(info, *target) {
        return None;
    }
    let from = data_ancestors(info, *target);
    info.model_inputs.iter().find_map(|(name, r)| {
        let arrays = data_ancestors(info, *r);
        let same = type_of(info, *r).and_then(row_dims).as_ref() == Some(&rows);
        if !same || from.is_empty() || !from.iter().all(|a| arrays.contains(a)) {
            return None;
        }
        // The input as the model sees it: what feeds it, or the input itself when a data array of its name does.
        let input = info.feeds.iter().find(|(n, _)| n == name).map_or(*r, |(_, f)| *f);
        Some(Autoencoder { input, target: (*target != input).then_some(*target), output: *pred, look: look(&pty.dims) })
    })
}

/// The tensors an autoencoder's report draws.
#[derive(Clone, Debug)]
struct Autoencoder {
    input: TRef,
    /// The loss's target when it is not the input (a denoising autoencoder's clean image).
    target: Option<TRef>,
    output: TRef,
    look: Look,
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
            // Integers are ids (tokens, categories), never pixels.
            let look = if ty.elem == ElemType::Int { Look::Values } else { look(&ty.dims) };
            (row as i64 == per_row && !shape.is_empty()).then_some(Shown { array: a, look })
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
    /// What to watch for the run of `info` validated on `val`: a classifier's predicted classes and an
    /// autoencoder's reconstructions need validation rows; a GAN's generated samples need none.
    pub fn of(info: &TrainInfo, val: Option<&Dataset>) -> Plan {
        if !info.steps.is_empty() {
            return Plan { generated: generated(info), ..Plan::default() };
        }
        let Some(val) = val.filter(|v| !v.is_empty()) else { return Plan::default() };
        let classifier = classifier(info).filter(|c| val.arrays.contains_key(&c.labels));
        let shown = classifier.as_ref().and_then(|c| shown_input(info, c.scores, val));
        let autoencoder = if classifier.is_none() { autoencoder(info) } else { None };
        Plan { classifier, shown, autoencoder, generated: None }
    }

    /// The tensors the validation pass (or, for alternating steps, the sampling after each pass) computes for
    /// the report ([`nnc_runtime::train::Trainer::watch`]).
    pub fn watches(&self) -> Vec<Watch> {
        let mut w = Vec::new();
        if let Some(c) = &self.classifier {
            let keep = c.threshold.map_or(Keep::Argmax, Keep::Above);
            w.push(Watch { name: "scores".into(), tensor: c.scores, keep });
        }
        if let Some(a) = &self.autoencoder {
            let rows = Keep::Rows(PAIRS);
            w.push(Watch { name: "input".into(), tensor: a.input, keep: rows });
            w.extend(a.target.map(|t| Watch { name: "target".into(), tensor: t, keep: rows }));
            w.push(Watch { name: "output".into(), tensor: a.output, keep: rows });
        }
        if let Some((t, _)) = self.generated {
            w.push(Watch { name: "generated".into(), tensor: t, keep: Keep::Rows(GENERATED) });
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
                views.samples = Some(classified(shown, x, &predicted, &labels));
            }
        }
        if let Some(a) = &self.autoencoder {
            let mut rows = |name: &str| match seen.next() {
                Some(Seen::Rows(r)) => {
                    Some((name.to_string(), r.shape().first().copied().unwrap_or(0), r.iter().copied().collect()))
                }
                _ => None,
            };
            let input = rows("input");
            let target = a.target.and_then(|_| rows("target"));
            let output = rows("output");
            let groups: Vec<(String, usize, Vec<f32>)> = [input, target, output].into_iter().flatten().collect();
            let shown = nnc_runtime::train::spread(PAIRS, val.len());
            views.reconstructions = Some(side_by_side(a.look, &groups, &shown));
        }
        views
    }

    /// After a pass of alternating steps: the generated samples of `epoch` join those of earlier epochs.
    pub fn observe_generated(&self, seen: &[Seen], epoch: usize, views: &mut Views) {
        let (Some((_, look)), Some(Seen::Rows(r))) = (self.generated, seen.last()) else { return };
        let Look::Image { height, width, channels } = look else { return };
        let per = height * width * channels;
        let flat: Vec<f32> = r.iter().copied().collect();
        let tiles: Vec<Tile> =
            flat.chunks_exact(per.max(1)).map(|p| Tile::new(height, width, channels, p.to_vec())).collect();
        let mut grid = Grid::new(tiles, 8);
        grid.scale = Scale::Shared;
        grid.zoom = zoom(height, width);
        views.generated.push((epoch, picture(&grid, &format!("generated samples after epoch {}", epoch + 1))));
        thin(&mut views.generated);
    }
}

/// Rows of an autoencoder's input beside its reconstruction.
const PAIRS: usize = 8;
/// Generated samples drawn per epoch (the same noise every epoch).
const GENERATED: usize = 16;
/// Epochs of generated samples kept on the page: past this, every other one in the middle goes.
const MAX_GENERATED_EPOCHS: usize = 24;

/// Halves the middle of `list` while it is longer than [`MAX_GENERATED_EPOCHS`]; the first and last stay.
fn thin<T>(list: &mut Vec<T>) {
    while list.len() > MAX_GENERATED_EPOCHS {
        let last = list.len() - 1;
        let mut k = 0;
        list.retain(|_| {
            k += 1;
            k == 1 || k - 1 == last || (k - 1) % 2 == 0
        });
    }
}

/// How much to enlarge tiles: small images (8×8 digits) more, large ones not at all.
fn zoom(height: usize, width: usize) -> usize {
    (64 / height.max(width).max(1)).clamp(1, 8)
}

/// A picture for the page (an `<img>` of the grid's SVG, labels included) and for TensorBoard (its PNG).
#[derive(Clone, Debug)]
pub struct Picture {
    pub html: String,
    /// The PNG with its (height, width), when the grid could be drawn.
    pub png: Option<(Vec<u8>, (usize, usize))>,
}

/// The grid as a picture; a grid that cannot be drawn is a line saying why.
fn picture(grid: &Grid, alt: &str) -> Picture {
    let svg = match grid.to_svg() {
        Ok(svg) => svg,
        Err(e) => return Picture { html: format!("<p class=\"muted\">{}</p>\n", escape(&e.to_string())), png: None },
    };
    // An <img> of the SVG rather than inline SVG: every picture is then one loaded image a reader can check
    // (`naturalWidth`), and the tiles' data URIs stay inside it.
    let data = base64::engine::general_purpose::STANDARD.encode(svg);
    let html = format!("<img class=\"grid\" alt=\"{}\" src=\"data:image/svg+xml;base64,{data}\">\n", escape(alt));
    let png = grid.to_png().ok().and_then(|png| {
        // IHDR: width and height, big-endian, at bytes 16 and 20.
        let w = u32::from_be_bytes(png.get(16..20)?.try_into().ok()?) as usize;
        let h = u32::from_be_bytes(png.get(20..24)?.try_into().ok()?) as usize;
        Some((png, (h, w)))
    });
    Picture { html, png }
}

/// Numbers of a row in a table cell: all of a short row, else the first and last six (padded sequences differ
/// at one end); whole numbers (token ids, categories) without decimals.
fn values_cell(values: &[f32]) -> String {
    let whole = values.iter().all(|v| v.fract() == 0.0 && v.abs() < 1e9);
    let show = |v: &[f32]| -> String {
        let text: Vec<String> = v.iter().map(|v| if whole { format!("{v:.0}") } else { format!("{v:.3}") }).collect();
        text.join(", ")
    };
    if values.len() <= 12 {
        return show(values);
    }
    format!("{} … {} ({} values)", show(&values[..6]), show(&values[values.len() - 6..]), values.len())
}

/// Up to [`GRID_ROWS`] validation rows of `x`, misclassified first, each captioned `true → predicted`.
fn classified(shown: &Shown, x: &Tensor<f32>, predicted: &[usize], labels: &[i64]) -> Picture {
    let n = predicted.len().min(labels.len()).min(shape_of(x).first().copied().unwrap_or(0));
    let wrong = |i: &usize| usize::try_from(labels[*i]).ok() != Some(predicted[*i]);
    let misclassified = (0..n).filter(wrong).count();
    // Misclassified first; within each group the classes take turns (the first row of each class, then the
    // second…), so a grid of a few rows shows every class rather than the first class's rows.
    let mut rank = std::collections::HashMap::new();
    let mut keyed: Vec<(bool, usize, i64, usize)> = (0..n)
        .map(|i| {
            let r = rank.entry((wrong(&i), labels[i])).or_insert(0usize);
            *r += 1;
            (!wrong(&i), *r, labels[i], i)
        })
        .collect();
    keyed.sort_unstable();
    let order: Vec<usize> = keyed.into_iter().take(GRID_ROWS).map(|k| k.3).collect();
    // Only the shown rows are copied, whatever the size of the validation set.
    let row = |i: usize| -> Vec<f32> {
        match x {
            Tensor::F(a) => a.outer_iter().nth(i).map(|r| r.iter().copied().collect()).unwrap_or_default(),
            Tensor::I(a) => a.outer_iter().nth(i).map(|r| r.iter().map(|&v| v as f32).collect()).unwrap_or_default(),
        }
    };
    let caption = format!(
        "{} of {n} validation rows misclassified; the first {} rows below, misclassified first (framed red). \
         Captions: true class → predicted class.",
        misclassified,
        order.len()
    );
    let mut pic = match shown.look {
        Look::Image { height, width, channels } => {
            let tiles = order
                .iter()
                .map(|&i| Tile {
                    label: Some(format!("{} → {}", labels[i], predicted[i])),
                    mark: wrong(&i),
                    ..Tile::new(height, width, channels, row(i))
                })
                .collect();
            let mut grid = Grid::new(tiles, 8);
            grid.scale = Scale::Shared;
            grid.zoom = zoom(height, width);
            picture(&grid, &format!("validation samples of `{}` with true and predicted classes", shown.array))
        }
        Look::Values => {
            let mut h = format!(
                "<table class=\"samples\"><tr><th>row</th><th>true</th><th>predicted</th><th>{}</th></tr>\n",
                escape(&shown.array)
            );
            for &i in &order {
                let class = if wrong(&i) { " class=\"wrong\"" } else { "" };
                let _ = writeln!(
                    h,
                    "<tr{class}><td>{i}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    labels[i],
                    predicted[i],
                    values_cell(&row(i))
                );
            }
            h.push_str("</table>\n");
            Picture { html: h, png: None }
        }
    };
    pic.html = format!("<p>{}</p>\n{}", escape(&caption), pic.html);
    pic
}

/// An autoencoder's rows: per block of up to 8 samples a row of inputs, (targets,) then reconstructions.
/// `groups`: (name, rows, values) of each watched tensor, the rows being validation rows `shown`.
fn side_by_side(look: Look, groups: &[(String, usize, Vec<f32>)], shown: &[usize]) -> Picture {
    let n = groups.iter().map(|g| g.1).min().unwrap_or(0).min(shown.len());
    let per = |k: usize| groups[k].2.len() / groups[k].1.max(1);
    let row = |k: usize, i: usize| groups[k].2.get(i * per(k)..(i + 1) * per(k)).unwrap_or(&[]).to_vec();
    let names: Vec<&str> = groups.iter().map(|g| g.0.as_str()).collect();
    let numbers: Vec<String> = shown.iter().take(n).map(|r| r.to_string()).collect();
    let caption = format!(
        "Validation rows {} (spread over the set): {} — the model's input{}, and its output.",
        numbers.join(", "),
        names.join(", "),
        if names.contains(&"target") { ", the loss's target" } else { "" }
    );
    let html = match look {
        Look::Image { height, width, channels } if n > 0 => {
            let mut tiles = Vec::new();
            for block in (0..n).collect::<Vec<_>>().chunks(8) {
                for (k, name) in names.iter().enumerate() {
                    for &i in block {
                        // The input carries the row's number; the pictures under it are named.
                        let label = if k == 0 { format!("#{}", shown[i]) } else { name.to_string() };
                        tiles.push(Tile::new(height, width, channels, row(k, i)).labelled(label));
                    }
                }
            }
            let mut grid = Grid::new(tiles, n.min(8));
            grid.scale = Scale::Shared;
            grid.zoom = zoom(height, width);
            let pic = picture(&grid, "validation inputs beside their reconstructions");
            return Picture { html: format!("<p>{}</p>\n{}", escape(&caption), pic.html), png: pic.png };
        }
        _ => {
            let mut h = String::from("<table class=\"samples\"><tr><th>row</th>");
            for name in &names {
                let _ = write!(h, "<th>{}</th>", escape(name));
            }
            h.push_str("</tr>\n");
            for (i, number) in shown.iter().enumerate().take(n) {
                let _ = write!(h, "<tr><td>{number}</td>");
                for k in 0..names.len() {
                    let _ = write!(h, "<td>{}</td>", values_cell(&row(k, i)));
                }
                h.push_str("</tr>\n");
            }
            h.push_str("</table>\n");
            h
        }
    };
    Picture { html: format!("<p>{}</p>\n{html}", escape(&caption)), png: None }
}

/// What the page shows of the last validation pass.
#[derive(Clone, Debug, Default)]
pub struct Views {
    pub confusion: Option<Confusion>,
    /// Classifiers: validation samples with true and predicted labels.
    pub samples: Option<Picture>,
    /// Autoencoders: validation inputs beside their reconstructions.
    pub reconstructions: Option<Picture>,
    /// GANs: the generated samples of each epoch (thinned to [`MAX_GENERATED_EPOCHS`]), same noise each time.
    pub generated: Vec<(usize, Picture)>,
}

impl Views {
    /// The views' pictures as TensorBoard images at step `epoch`: validation samples and reconstructions in
    /// `validation/`, generated samples in `train/`.
    pub fn to_board(&self, board: &mut super::tensorboard::Writer, epoch: usize) {
        let pictures = [("samples", &self.samples, true), ("reconstructions", &self.reconstructions, true)];
        for (tag, pic, validation) in pictures {
            if let Some(Picture { png: Some((png, size)), .. }) = pic {
                board.image(validation, epoch, tag, png, *size, 3);
            }
        }
        if let Some((e, Picture { png: Some((png, size)), .. })) = self.generated.last()
            && *e == epoch
        {
            board.image(false, epoch, "generated_samples", png, *size, 3);
        }
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
    /// Alternating steps (a GAN): their losses are also drawn together on one chart.
    pub alternating: bool,
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
.muted{color:#777}td.diag{background:#d9ead3}tr.wrong td{color:#c00}img.grid{display:block;margin:8px 0}\
div.epoch{display:inline-block;vertical-align:top;margin-right:12px}h3{font-size:14px;margin:8px 0 0}";

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
        if self.alternating && !p.history.is_empty() {
            h.push_str("<h2 id=\"losses\">Losses of the steps together</h2>\n");
            h.push_str(&inline_svg(&plot::together(p.history, &self.metrics, "losses of the alternating steps")));
        }
        h.push_str("<h2 id=\"metrics\">Final metrics</h2>\n");
        metrics_table(&mut h, p);
        if let Some(c) = &p.views.confusion {
            h.push_str("<h2 id=\"confusion\">Confusion matrix (validation)</h2>\n");
            confusion_table(&mut h, c);
        }
        if let Some(pic) = &p.views.samples {
            h.push_str("<h2 id=\"samples\">Validation samples</h2>\n");
            h.push_str(&pic.html);
        }
        if let Some(pic) = &p.views.reconstructions {
            h.push_str("<h2 id=\"reconstructions\">Reconstructions (validation)</h2>\n");
            h.push_str(&pic.html);
        }
        if !p.views.generated.is_empty() {
            h.push_str("<h2 id=\"generated\">Generated samples</h2>\n");
            h.push_str("<p>After each epoch, from the same random draws, so the epochs compare.</p>\n");
            for (epoch, pic) in &p.views.generated {
                let _ = writeln!(h, "<div class=\"epoch\"><h3>epoch {}</h3>{}</div>", epoch + 1, pic.html);
            }
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
    use nnc_compiler::dims::Dim;

    #[test]
    fn images_are_decided_by_the_type() {
        let dims = |d: &[i64]| -> Vec<Dim> {
            std::iter::once(Dim::sym("N")).chain(d.iter().map(|&v| Dim::Known(v))).collect()
        };
        assert_eq!(look(&dims(&[28, 28, 1])), Look::Image { height: 28, width: 28, channels: 1 });
        assert_eq!(look(&dims(&[32, 32, 3])), Look::Image { height: 32, width: 32, channels: 3 });
        assert_eq!(look(&dims(&[28, 28])), Look::Image { height: 28, width: 28, channels: 1 });
        assert_eq!(look(&dims(&[784])), Look::Image { height: 28, width: 28, channels: 1 });
        assert_eq!(look(&dims(&[64])), Look::Image { height: 8, width: 8, channels: 1 });
        // Not pictures: 4 channels, a short square, a non-square width, a time series of vectors, huge sides.
        for d in [&[28, 28, 4][..], &[49], &[13], &[50, 300, 7, 2], &[1, 5], &[100_000, 100_000, 1]] {
            assert_eq!(look(&dims(d)), Look::Values, "{d:?}");
        }
        let symbolic = vec![Dim::sym("N"), Dim::sym("T")];
        assert_eq!(look(&symbolic), Look::Values);
    }

    #[test]
    fn table_cells_show_both_ends_of_long_rows() {
        assert_eq!(values_cell(&[0.5, 1.25]), "0.500, 1.250");
        let tokens: Vec<f32> = (0..50).map(|i| if i < 40 { 0.0 } else { i as f32 }).collect();
        assert_eq!(values_cell(&tokens), "0, 0, 0, 0, 0, 0 … 44, 45, 46, 47, 48, 49 (50 values)");
    }

    #[test]
    fn thinning_keeps_the_first_and_last_epochs() {
        let mut v: Vec<usize> = (0..100).collect();
        thin(&mut v);
        assert!(v.len() <= MAX_GENERATED_EPOCHS, "{}", v.len());
        assert_eq!((v[0], *v.last().unwrap()), (0, 99));
        assert!(v.windows(2).all(|w| w[0] < w[1]));
    }

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
