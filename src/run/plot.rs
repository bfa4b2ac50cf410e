//! The training curves of `nnc run` (`history.svg`, and the curves of `report.html`), drawn with `plotters`'
//! SVG backend: text stays SVG `<text>`, so no font is needed on the machine that draws them.
//!
//! One panel per quantity (the loss, then each metric), each with the training values, the validation
//! values, and for the loss the per-step training loss smoothed, so a run of one epoch still shows a curve.
//! Legends sit in a column right of each plot area, so they never cover data.

use std::ops::Range;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::prelude::*;

use nnc_runtime::train::EpochRecord;

/// Per-step training losses, smoothed as they come (a debiased exponential moving average, as TensorBoard's
/// smoothing), kept at most [`StepLog::CAP`] points: past that every other point is dropped and only every
/// `stride`-th step is kept, so a run of millions of steps holds a few thousand points.
#[derive(Clone, Debug, Default)]
pub struct StepLog {
    /// (x in epochs: epoch + (step + 1) / steps, smoothed loss).
    pub points: Vec<(f64, f64)>,
    weight: Option<f64>,
    ema: f64,
    seen: u64,
    stride: u64,
}

impl StepLog {
    const CAP: usize = 2048;

    /// Records the loss of step `step` of `steps` in `epoch`. The smoothing weight follows the steps per
    /// epoch: none for a handful (each point matters), up to 0.9 for hundreds.
    pub fn push(&mut self, epoch: usize, step: usize, steps: usize, loss: f64) {
        if !loss.is_finite() {
            return;
        }
        let w = *self.weight.get_or_insert_with(|| (1.0 - 10.0 / steps.max(1) as f64).clamp(0.0, 0.9));
        self.ema = w * self.ema + (1.0 - w) * loss;
        self.seen += 1;
        let debiased = if w > 0.0 { self.ema / (1.0 - w.powf(self.seen as f64)) } else { self.ema };
        let stride = self.stride.max(1);
        if !(self.seen - 1).is_multiple_of(stride) {
            return;
        }
        self.points.push((epoch as f64 + (step + 1) as f64 / steps.max(1) as f64, debiased));
        if self.points.len() > Self::CAP {
            let kept: Vec<(f64, f64)> = self.points.iter().step_by(2).copied().collect();
            self.points = kept;
            self.stride = stride * 2;
        }
    }
}

/// One curve of a panel.
struct Series {
    name: String,
    color: RGBColor,
    points: Vec<(f64, f64)>,
}

const TRAIN: RGBColor = RGBColor(31, 119, 180);
const TRAIN_STEP: RGBColor = RGBColor(158, 198, 225);
const VALIDATION: RGBColor = RGBColor(255, 127, 14);

const WIDTH: u32 = 760;
const PANEL_HEIGHT: u32 = 280;
/// The legend column right of each plot area.
const LEGEND_WIDTH: u32 = 190;

/// The series names a panel's legend shows (the tests read them back).
pub const TRAIN_NAME: &str = "train";
pub const STEP_NAME: &str = "train, per step (smoothed)";
pub const VALIDATION_NAME: &str = "validation";

/// The panels' quantities: `loss`, then each metric.
pub fn quantities(metrics: &[String]) -> Vec<String> {
    std::iter::once("loss".to_string()).chain(metrics.iter().cloned()).collect()
}

fn panel_series(history: &[EpochRecord], steps: &StepLog, quantity: &str) -> Vec<Series> {
    let at = |f: &dyn Fn(&EpochRecord) -> Option<f64>| -> Vec<(f64, f64)> {
        history.iter().filter_map(|r| Some(((r.epoch + 1) as f64, f(r).filter(|v| v.is_finite())?))).collect()
    };
    let mut out = Vec::new();
    if quantity == "loss" && !steps.points.is_empty() {
        out.push(Series { name: STEP_NAME.into(), color: TRAIN_STEP, points: steps.points.clone() });
    }
    out.push(Series { name: TRAIN_NAME.into(), color: TRAIN, points: at(&|r| r.value(quantity)) });
    let val = format!("val_{quantity}");
    let val_points = at(&|r| r.value(&val));
    if !val_points.is_empty() {
        out.push(Series { name: VALIDATION_NAME.into(), color: VALIDATION, points: val_points });
    }
    out
}

/// The y range of a panel: every finite value, padded by 5 %; a flat or empty panel gets a unit-wide range.
fn y_range(series: &[Series]) -> (f64, f64) {
    let (lo, hi) = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0);
    }
    let pad = if hi > lo { (hi - lo) * 0.05 } else { lo.abs().max(1.0) * 0.05 };
    (lo - pad, hi + pad)
}

/// Whole epochs as ticks, at most about ten of them (every k-th epoch), always with the last one.
fn epoch_ticks(epochs: usize) -> Vec<f64> {
    let stride = epochs.div_ceil(10).max(1);
    let mut ticks: Vec<f64> = (0..=epochs).step_by(stride).map(|e| e as f64).collect();
    if ticks.last() != Some(&(epochs as f64)) {
        ticks.push(epochs as f64);
    }
    ticks
}

/// The x axis: epochs 0 to n as real numbers (a step inside an epoch lies between two), ticked at whole
/// epochs only ([`epoch_ticks`]). plotters' own f64 axis would tick at 0.5s; its `with_key_points` has no
/// default label formatting, which the mesh requires.
struct Epochs(usize);

impl Ranged for Epochs {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let span = self.0.max(1) as f64;
        let at = limit.0 as f64 + (limit.1 - limit.0) as f64 * (value / span);
        at.clamp(i32::MIN as f64, i32::MAX as f64).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() { Vec::new() } else { epoch_ticks(self.0) }
    }

    fn range(&self) -> Range<f64> {
        0.0..self.0 as f64
    }
}

/// A y tick label: as many decimals as the axis's span needs to tell ticks apart (about six ticks).
fn number(v: f64, span: f64) -> String {
    let step = (span / 6.0).abs();
    if v != 0.0 && (v.abs() >= 1e6 || v.abs() < 1e-4) {
        return format!("{v:.2e}");
    }
    let digits = if step > 0.0 && step.is_finite() { (1 - step.log10().floor() as i32).clamp(0, 6) } else { 3 };
    format!("{v:.0$}", digits as usize)
}

/// The SVG of every panel stacked: `history` as written to history.csv, `steps` the per-step losses.
pub fn svg(history: &[EpochRecord], steps: &StepLog, metrics: &[String]) -> String {
    let panels = quantities(metrics);
    let mut text = String::new();
    let height = PANEL_HEIGHT * panels.len().max(1) as u32;
    {
        let root = SVGBackend::with_string(&mut text, (WIDTH, height)).into_drawing_area();
        // Drawing into a string fails only on a backend error, which the string backend does not have; a
        // failure leaves a partial picture, not a failed run.
        let _ = root.fill(&WHITE);
        let epochs = history
            .iter()
            .map(|r| r.epoch + 1)
            .chain(steps.points.last().map(|p| p.0.ceil() as usize))
            .max()
            .unwrap_or(1)
            .max(1);
        for (area, quantity) in root.split_evenly((panels.len().max(1), 1)).iter().zip(&panels) {
            let series = panel_series(history, steps, quantity);
            let _ = panel(area, quantity, &series, epochs);
        }
        let _ = root.present();
    }
    text
}

/// Several training quantities on one panel (a GAN's discriminator and generator losses): per epoch, each
/// its own colour, named by its quantity in the legend.
pub fn together(history: &[EpochRecord], quantities: &[String], title: &str) -> String {
    const COLOURS: [RGBColor; 4] = [TRAIN, VALIDATION, RGBColor(44, 160, 44), RGBColor(214, 39, 40)];
    let series: Vec<Series> = quantities
        .iter()
        .enumerate()
        .map(|(k, q)| Series {
            name: q.clone(),
            color: COLOURS[k % COLOURS.len()],
            points: history
                .iter()
                .filter_map(|r| Some(((r.epoch + 1) as f64, r.value(q).filter(|v| v.is_finite())?)))
                .collect(),
        })
        .collect();
    let epochs = history.iter().map(|r| r.epoch + 1).max().unwrap_or(1).max(1);
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, (WIDTH, PANEL_HEIGHT)).into_drawing_area();
        let _ = root.fill(&WHITE);
        let _ = panel_titled(&root, title, "loss", &series, epochs);
        let _ = root.present();
    }
    text
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;
type DrawResult<'a> = Result<(), DrawingAreaErrorKind<<SVGBackend<'a> as DrawingBackend>::ErrorType>>;

fn panel<'a>(area: &Area<'a>, quantity: &str, series: &[Series], epochs: usize) -> DrawResult<'a> {
    panel_titled(area, quantity, quantity, series, epochs)
}

fn panel_titled<'a>(area: &Area<'a>, title: &str, quantity: &str, series: &[Series], epochs: usize) -> DrawResult<'a> {
    let (plot_area, legend_area) = area.split_horizontally(WIDTH - LEGEND_WIDTH);
    let (lo, hi) = y_range(series);
    let mut chart = ChartBuilder::on(&plot_area)
        .caption(title, ("sans-serif", 18))
        .margin(8)
        .x_label_area_size(42)
        .y_label_area_size(64)
        .build_cartesian_2d(Epochs(epochs), lo..hi)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(quantity)
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_labels(6)
        .y_label_formatter(&|v| number(*v, hi - lo))
        .light_line_style(TRANSPARENT)
        .label_style(("sans-serif", 12))
        .axis_desc_style(("sans-serif", 14))
        .draw()?;
    for s in series {
        let style = s.color.stroke_width(2);
        if s.points.len() > 1 {
            chart.draw_series(LineSeries::new(s.points.iter().copied(), style))?;
        }
        // Epoch values are marked: one epoch is one point, and a point must still show.
        if s.name != STEP_NAME {
            chart.draw_series(s.points.iter().map(|&p| Circle::new(p, 3, s.color.filled())))?;
        }
    }
    for (k, s) in series.iter().enumerate() {
        let y = 40 + 22 * k as i32;
        legend_area.draw(&PathElement::new(vec![(8, y), (36, y)], s.color.stroke_width(3)))?;
        legend_area.draw(&Text::new(s.name.clone(), (42, y - 7), ("sans-serif", 13).into_font()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_smoothed_and_capped() {
        let mut log = StepLog::default();
        for i in 0..100_000 {
            log.push(i / 1000, i % 1000, 1000, 1.0);
        }
        assert!(log.points.len() <= StepLog::CAP, "{}", log.points.len());
        assert!(log.points.iter().all(|p| (p.1 - 1.0).abs() < 1e-9), "debiased EMA of a constant is the constant");
        assert!(log.points.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn ticks_are_whole_epochs_ending_at_the_last() {
        assert_eq!(epoch_ticks(1), [0.0, 1.0]);
        assert_eq!(epoch_ticks(3), [0.0, 1.0, 2.0, 3.0]);
        let t = epoch_ticks(95);
        assert!(t.len() <= 12 && t.last() == Some(&95.0), "{t:?}");
        assert_eq!(number(0.12345, 0.6), "0.12");
        assert_eq!(number(12.0, 60.0), "12");
        assert_eq!(number(2e-5, 1e-5), "2.00e-5");
    }
}
