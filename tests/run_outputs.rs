//! What `nnc run` leaves on disk, read back as a person would look at it: the curves of `history.svg`
//! (axis labels, tick numbers, series names, a drawn line or point per series), numbered run directories
//! with a `latest` pointer that never overwrite each other, and `report.html`.

#![forbid(unsafe_code)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nnc-outputs-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `nnc run ARGS` in `cwd`; panics with the output when it fails.
fn run(cwd: &Path, args: &[&str]) -> String {
    let o = Command::new(nnc_bin()).current_dir(cwd).arg("run").args(args).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "nnc run {args:?}\n{stdout}\n{stderr}");
    stdout.into_owned()
}

fn digits() -> String {
    root().join("examples/digits_mlp.nn").display().to_string()
}

/// Every `<text>` of an SVG, trimmed, in document order.
fn texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| Some(t.split_once('>')?.1.split_once("</text>")?.0.trim().to_string()))
        .collect()
}

/// The value of attribute `name` in the opening tag `tag`.
fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let at = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    tag[at..].split('"').next()
}

/// The tags `<kind …>` of an SVG.
fn tags<'a>(svg: &'a str, kind: &str) -> Vec<&'a str> {
    svg.split(&format!("<{kind} ")).skip(1).filter_map(|t| t.split('>').next()).collect()
}

/// The legend's series names with their colours: a short legend line (stroke width 3) followed by its text.
fn legend(svg: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for part in svg.split("<polyline ").skip(1) {
        let tag = part.split('>').next().unwrap();
        if attr(tag, "stroke-width") != Some("3") {
            continue;
        }
        let name = texts(part).into_iter().next().unwrap_or_default();
        out.push((name, attr(tag, "stroke").unwrap().to_string()));
    }
    out
}

/// The data drawn in `color`: the points of its curves (stroke width 2) and its markers.
fn drawn(svg: &str, color: &str) -> (Vec<usize>, usize) {
    let lines = tags(svg, "polyline")
        .into_iter()
        .filter(|t| attr(t, "stroke") == Some(color) && attr(t, "stroke-width") == Some("2"))
        .map(|t| attr(t, "points").unwrap_or("").split_whitespace().count())
        .collect();
    let markers = tags(svg, "circle").into_iter().filter(|t| attr(t, "fill") == Some(color)).count();
    (lines, markers)
}

fn check_plot(svg: &str, epochs: usize) {
    let t = texts(svg);
    for word in ["loss", "accuracy", "epoch", "train", "validation", "train, per step (smoothed)"] {
        assert!(t.iter().any(|x| x == word), "no text `{word}` in {t:?}");
    }
    // Whole epochs as tick numbers, on each of the two panels.
    for e in 0..=epochs {
        assert!(t.iter().filter(|x| **x == e.to_string()).count() >= 2, "no tick {e} on both panels: {t:?}");
    }
    assert!(t.iter().filter(|x| x.parse::<f64>().is_ok_and(|v| v.fract() != 0.0)).count() >= 4, "y ticks: {t:?}");
    let series = legend(svg);
    let names: Vec<&str> = series.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["train, per step (smoothed)", "train", "validation", "train", "validation"], "{series:?}");
    for (name, color) in &series {
        let (lines, markers) = drawn(svg, color);
        if name.contains("per step") {
            // 1437 rows in batches of 32: 45 steps per epoch, every one drawn.
            assert!(lines.iter().any(|&n| n >= 45 * epochs), "{name}: {lines:?}");
        } else {
            assert!(markers >= 2 * epochs, "{name}: {markers} markers");
            if epochs > 1 {
                assert!(lines.iter().filter(|&&n| n == epochs).count() >= 2, "{name}: {lines:?}");
            }
        }
    }
}

#[test]
fn history_svg_of_one_epoch_shows_the_steps() {
    let dir = tmp("plot1");
    let out = dir.join("out");
    run(&dir, &[&digits(), "--epochs", "1", "--out", out.to_str().unwrap()]);
    check_plot(&std::fs::read_to_string(out.join("history.svg")).unwrap(), 1);
}

#[test]
fn history_svg_of_three_epochs_with_validation() {
    let dir = tmp("plot3");
    let out = dir.join("out");
    run(&dir, &[&digits(), "--epochs", "3", "--out", out.to_str().unwrap()]);
    check_plot(&std::fs::read_to_string(out.join("history.svg")).unwrap(), 3);
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(snapshot(&p));
        } else {
            out.push((p.clone(), std::fs::read(&p).unwrap()));
        }
    }
    out.sort();
    out
}

fn latest(base: &Path) -> String {
    match std::fs::read_link(base.join("latest")) {
        Ok(target) => target.display().to_string(),
        Err(_) => std::fs::read_to_string(base.join("latest")).unwrap().trim().to_string(),
    }
}

#[test]
fn two_runs_make_two_directories_and_latest_follows() {
    let dir = tmp("versions");
    let first = run(&dir, &[&digits(), "--epochs", "1", "--steps", "3"]);
    let base = dir.join("runs/digits");
    assert!(first.starts_with("run directory: runs/digits/1\n"), "{first}");
    assert!(first.trim_end().ends_with("run directory: runs/digits/1"), "{first}");
    assert_eq!(latest(&base), "1");
    let before = snapshot(&base.join("1"));
    assert!(before.iter().any(|(p, _)| p.ends_with("history.svg")), "{before:?}");
    let second = run(&dir, &[&digits(), "--epochs", "2", "--steps", "3"]);
    assert!(second.contains("run directory: runs/digits/2"), "{second}");
    assert_eq!(latest(&base), "2");
    assert_eq!(snapshot(&base.join("1")), before, "the first run is untouched");
    assert!(base.join("latest/history.csv").exists());
    let rows = std::fs::read_to_string(base.join("2/history.csv")).unwrap().lines().count();
    assert_eq!(rows, 3, "header and two epochs");
}

#[test]
fn a_resumed_run_continues_in_its_run_directory() {
    let dir = tmp("resume");
    let w = "runs/digits/1/w.safetensors";
    run(&dir, &[&digits(), "--epochs", "1", "--steps", "3", "--save", w]);
    let out = run(&dir, &[&digits(), "--epochs", "2", "--steps", "3", "--resume", w]);
    assert!(out.contains("run directory: runs/digits/1\n"), "{out}");
    assert!(!dir.join("runs/digits/2").exists(), "no new run directory");
    let epochs: Vec<String> = std::fs::read_to_string(dir.join("runs/digits/1/history.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().to_string())
        .collect();
    assert_eq!(epochs, ["1", "2"]);
    // A checkpoint outside any run directory starts a new run.
    run(&dir, &[&digits(), "--epochs", "1", "--steps", "3", "--save", "w.safetensors"]);
    let out = run(&dir, &[&digits(), "--epochs", "2", "--steps", "3", "--resume", "w.safetensors"]);
    assert!(out.contains("run directory: runs/digits/3\n"), "{out}");
}

/// The numbers of the `<td>` cells of one `<tr>`.
fn cells(row: &str) -> Vec<u64> {
    row.split("<td").skip(1).filter_map(|c| c.split_once('>')?.1.split('<').next()?.parse().ok()).collect()
}

#[test]
fn report_html_is_self_contained_with_a_confusion_matrix() {
    let dir = tmp("report");
    let out = dir.join("out");
    let stdout = run(&dir, &[&digits(), "--epochs", "2", "--out", out.to_str().unwrap()]);
    assert!(stdout.contains(&format!("report: {}", out.join("report.html").display())), "{stdout}");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    for section in
        ["id=\"curves\"", "id=\"metrics\"", "id=\"confusion\"", "id=\"model\"", "<svg", "Total params: 4,810"]
    {
        assert!(html.contains(section), "no {section}");
    }
    // Opens offline: nothing names a URL or a file to fetch; pictures are data URIs.
    assert!(!html.to_lowercase().contains("http"), "a URL in the report");
    assert!(!html.contains(" href="), "an external resource");
    assert!(html.split(" src=\"").skip(1).all(|s| s.starts_with("data:image/")), "an image not inline");
    // The curves and the final metrics are those of history.csv.
    check_plot(&html[html.find("<svg").unwrap()..html.find("</svg>").unwrap() + 6], 2);
    let csv = std::fs::read_to_string(out.join("history.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let last: Vec<f64> = csv.lines().last().unwrap().split(',').map(|v| v.parse().unwrap()).collect();
    let col = |name: &str| last[header.iter().position(|h| *h == name).unwrap()];
    assert!(html.contains(&format!("<td>{:.4}</td>", col("val_accuracy"))), "val_accuracy in the table");
    // The confusion matrix: 10 rows of 10 counts and a total, over the 360 validation rows; its diagonal is
    // the validation accuracy (the let `pixels / 16` feeds the model as in training).
    let table = html.split("<table class=\"confusion\">").nth(1).unwrap().split("</table>").next().unwrap();
    let rows: Vec<Vec<u64>> = table.split("<tr>").skip(2).map(cells).collect();
    assert_eq!(rows.len(), 10);
    let (mut sum, mut diagonal) = (0, 0);
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r.len(), 11, "{r:?}");
        assert_eq!(r[..10].iter().sum::<u64>(), r[10], "row total");
        sum += r[10];
        diagonal += r[i];
    }
    assert!(stdout.contains("(360 validation)"), "{stdout}");
    assert_eq!(sum, 360);
    assert_eq!(diagonal, (col("val_accuracy") * 360.0).round() as u64);
    // The 64 pixels of a row (8×8 digits) are drawn as images: a grid of 32 labelled samples.
    let grids = grid_svgs(&html);
    assert_eq!(grids.len(), 1, "one sample grid");
    assert_eq!(tags(&grids[0], "image").len(), 32);
}

/// The SVG documents of the page's `<img class="grid" src="data:image/svg+xml;base64,…">` pictures.
fn grid_svgs(html: &str) -> Vec<String> {
    use base64::Engine as _;
    html.split("<img class=\"grid\"")
        .skip(1)
        .map(|img| {
            let data = img.split("src=\"data:image/svg+xml;base64,").nth(1).unwrap().split('"').next().unwrap();
            String::from_utf8(base64::engine::general_purpose::STANDARD.decode(data).unwrap()).unwrap()
        })
        .collect()
}

/// The run directory of a short run of `example`'s train block `train` (`--epochs E --steps K`).
fn short_run(name: &str, example: &str, train: Option<&str>, epochs: &str, steps: &str) -> (PathBuf, String) {
    let dir = tmp(name);
    let out = dir.join("out");
    let file = root().join("examples").join(example).display().to_string();
    let mut args = vec![file.as_str(), "--epochs", epochs, "--steps", steps, "--out", out.to_str().unwrap()];
    if let Some(t) = train {
        args.extend(["--train", t]);
    }
    let stdout = run(&dir, &args);
    (out, stdout)
}

#[test]
fn a_classifier_report_shows_validation_digits_misclassified_first() {
    // The workshop ConvNet: images [N, 28, 28, 1] as the model types them.
    let (out, _) = short_run("report-convnet", "workshop_convnet.nn", None, "1", "4");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("id=\"samples\"") && html.contains("id=\"confusion\""));
    let svg = &grid_svgs(&html)[0];
    let images = tags(svg, "image");
    assert_eq!(images.len(), 32);
    assert!(images.iter().all(|t| attr(t, "width") == Some("56")), "28×28 drawn at zoom 2");
    let labels = texts(svg);
    assert_eq!(labels.len(), 32, "{labels:?}");
    let pairs: Vec<(u32, u32)> = labels
        .iter()
        .map(|l| {
            let (t, p) = l.split_once(" → ").unwrap_or_else(|| panic!("label {l}"));
            (t.parse().unwrap(), p.parse().unwrap())
        })
        .collect();
    // Misclassified first, each framed red; then the right ones.
    let wrong: Vec<bool> = pairs.iter().map(|(t, p)| t != p).collect();
    let first_right = wrong.iter().position(|w| !w).unwrap_or(wrong.len());
    assert!(wrong[first_right..].iter().all(|w| !w), "misclassified first: {pairs:?}");
    assert_eq!(tags(svg, "rect").len(), first_right, "a frame per misclassified sample");
    // The count of misclassified rows the page states is the confusion matrix's off-diagonal.
    let table = html.split("<table class=\"confusion\">").nth(1).unwrap().split("</table>").next().unwrap();
    let rows: Vec<Vec<u64>> = table.split("<tr>").skip(2).map(cells).collect();
    let off: u64 = rows.iter().enumerate().map(|(i, r)| r[10] - r[i]).sum();
    assert!(html.contains(&format!("{off} of 1000 validation rows misclassified")), "{off}");
    assert_eq!(first_right.min(32) as u64, off.min(32));
    // The classes take turns in the grid: more than one true class among the first rows.
    let classes: std::collections::BTreeSet<u32> = pairs.iter().take(10).map(|p| p.0).collect();
    assert!(classes.len() > 1, "{pairs:?}");
}

#[test]
fn an_autoencoder_report_shows_inputs_beside_reconstructions() {
    let (out, _) = short_run("report-dae", "conv_autoencoder.nn", Some("mnist_denoising_ae"), "1", "2");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("id=\"reconstructions\"") && !html.contains("id=\"confusion\""));
    let svg = &grid_svgs(&html)[0];
    let labels = texts(svg);
    // The noisy input the model sees (labelled with its row), the clean target, the output: 8 rows each,
    // spread over the 1000 validation rows.
    let rows: Vec<&String> = labels.iter().filter(|l| l.starts_with('#')).collect();
    assert_eq!(rows, ["#0", "#125", "#250", "#375", "#500", "#625", "#750", "#875"], "{labels:?}");
    for name in ["target", "output"] {
        assert_eq!(labels.iter().filter(|l| *l == name).count(), 8, "{name}: {labels:?}");
    }
    assert_eq!(tags(svg, "image").len(), 24);
    assert!(html.contains("Validation rows 0, 125, 250, 375, 500, 625, 750, 875"));
}

#[test]
fn a_gan_report_has_generated_samples_per_epoch_and_both_losses_on_one_chart() {
    let (out, _) = short_run("report-gan", "mnist_gan.nn", None, "2", "3");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("id=\"generated\"") && html.contains("id=\"losses\""));
    let grids = grid_svgs(&html);
    assert_eq!(grids.len(), 2, "one grid per epoch");
    assert!(html.contains("<h3>epoch 1</h3>") && html.contains("<h3>epoch 2</h3>"));
    for g in &grids {
        assert_eq!(tags(g, "image").len(), 16);
    }
    let chart = html.split("id=\"losses\"").nth(1).unwrap();
    let chart = &chart[chart.find("<svg").unwrap()..chart.find("</svg>").unwrap()];
    let t = texts(chart);
    for word in ["loss", "epoch", "discriminator_loss", "generator_loss"] {
        assert!(t.iter().any(|x| x == word), "no `{word}` in {t:?}");
    }
    let series = legend(chart);
    assert_eq!(series.len(), 2, "{series:?}");
    // TensorBoard: each step's loss per iteration (discriminator once, generator twice), the samples per epoch.
    let train = records(&std::fs::read(event_file(&out.join("train"))).unwrap());
    assert_eq!(train.iter().filter(|r| contains(r, b"batch_discriminator_loss")).count(), 6);
    assert_eq!(train.iter().filter(|r| contains(r, b"batch_generator_loss")).count(), 12);
    assert_eq!(train.iter().filter(|r| contains(r, b"generated_samples") && contains(r, b"\x89PNG")).count(), 2);
    assert!(!out.join("validation").exists(), "no validation data, no validation run");
    assert_ne!(series[0].1, series[1].1, "two colours");
    for (_, colour) in &series {
        assert_eq!(drawn(chart, colour), (vec![2], 2), "a line through both epochs and a marker per epoch");
    }
}

/// CRC-32C bit by bit (the writer uses a table): the reader checks the writer, not itself.
fn crc32c_bitwise(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0x82F6_3B78 } else { crc >> 1 };
        }
    }
    !crc
}

/// The records of a TFRecord file, every length and data checksum verified.
fn records(bytes: &[u8]) -> Vec<Vec<u8>> {
    let masked = |d: &[u8]| crc32c_bitwise(d).rotate_right(15).wrapping_add(0xA282_EAD8);
    let u32_at = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let len = &bytes[at..at + 8];
        assert_eq!(masked(len), u32_at(bytes, at + 8), "length checksum at {at}");
        let n = u64::from_le_bytes(len.try_into().unwrap()) as usize;
        let data = &bytes[at + 12..at + 12 + n];
        assert_eq!(masked(data), u32_at(bytes, at + 12 + n), "data checksum at {at}");
        out.push(data.to_vec());
        at += 16 + n;
    }
    out
}

/// The one event file in `dir`.
fn event_file(dir: &Path) -> PathBuf {
    let files: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].file_name().unwrap().to_str().unwrap().to_string();
    assert!(name.starts_with("events.out.tfevents."), "{name}");
    files[0].clone()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn tensorboard_event_files_are_well_framed_with_keras_names() {
    let (out, _) = short_run("tensorboard", "workshop_convnet.nn", None, "2", "3");
    let train = records(&std::fs::read(event_file(&out.join("train"))).unwrap());
    let val = records(&std::fs::read(event_file(&out.join("validation"))).unwrap());
    // The version event first, then 2 × 3 step losses and 2 epochs.
    assert!(contains(&train[0], b"brain.Event:2"));
    assert_eq!(train.iter().filter(|r| contains(r, b"batch_loss")).count(), 6);
    let epochs =
        |rs: &[Vec<u8>]| rs.iter().filter(|r| contains(r, b"epoch_loss") && contains(r, b"epoch_accuracy")).count();
    assert_eq!(epochs(&train), 2);
    assert_eq!(epochs(&val), 2);
    // The validation samples as PNG images, one per epoch.
    assert_eq!(val.iter().filter(|r| contains(r, b"\x89PNG\r\n") && contains(r, b"samples")).count(), 2);
    tensorboard_reads(&out);
}

/// The Python interpreter for the TensorBoard check: `NNC_PYTHON`, else `python3`.
fn python() -> String {
    std::env::var("NNC_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// TensorBoard's own reader (`event_accumulator`) over the run: skipped, saying why, without the package.
fn tensorboard_reads(run_dir: &Path) {
    let has = Command::new(python()).args(["-c", "import tensorboard"]).output();
    if !has.as_ref().is_ok_and(|o| o.status.success()) {
        eprintln!(
            "skipped: TensorBoard's reader: `{} -c \"import tensorboard\"` failed (pip install tensorboard)",
            python()
        );
        return;
    }
    let script = root().join("tests/tensorboard/read_events.py");
    let o = Command::new(python()).arg(script).arg(run_dir).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "{stdout}\n{stderr}");
    println!("{stdout}");
}

#[test]
fn a_regression_report_has_no_confusion_matrix() {
    let dir = tmp("report-fish");
    let out = dir.join("out");
    run(
        &dir,
        &[
            &root().join("examples/fish_regression.nn").display().to_string(),
            "--epochs",
            "2",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("id=\"curves\"") && html.contains("id=\"metrics\"") && html.contains("id=\"model\""));
    assert!(!html.contains("id=\"confusion\""));
    assert!(!html.to_lowercase().contains("http"));
}

#[test]
fn a_classifier_of_numbers_shows_its_samples_as_a_table() {
    let dir = tmp("report-table");
    // Three features; the class is the largest one's position.
    let mut csv = String::new();
    let mut state = 7u64;
    for _ in 0..80 {
        let x: Vec<f64> = (0..3)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((state >> 33) as f64 / (1u64 << 31) as f64) * 2.0 - 1.0
            })
            .collect();
        let class = (0..3).max_by(|&a, &b| x[a].total_cmp(&x[b])).unwrap();
        csv.push_str(&format!("{:.3},{:.3},{:.3},{class}\n", x[0], x[1], x[2]));
    }
    std::fs::write(dir.join("t.csv"), csv).unwrap();
    let nn = "dim N\nmodel Tab {\n    input x: [N, 3]\n    input y: int[N]\n    output logits = x |> dense(3)\n}\n\
              train tab {\n    model = Tab()\n    data = csv(\"t.csv\", x = 0..3, y = 3, header = false)\n\
              loss = cross_entropy(logits, y)\n    optimizer = adam(lr = 0.01)\n    batch = 16\n    epochs = 1\n\
              validate = split(0.25)\n}\n";
    std::fs::write(dir.join("tab.nn"), nn).unwrap();
    run(&dir, &["tab.nn", "--out", "o"]);
    let html = std::fs::read_to_string(dir.join("o/report.html")).unwrap();
    assert!(!html.contains("<img"), "numbers are not drawn as pictures");
    let table = html.split("<table class=\"samples\">").nth(1).unwrap().split("</table>").next().unwrap();
    let rows: Vec<&str> = table.split("<tr").skip(2).collect();
    assert_eq!(rows.len(), 20, "every validation row (fewer than 32)");
    let mut seen_right = false;
    for r in &rows {
        let c: Vec<&str> = r.split("<td>").skip(1).map(|c| c.split('<').next().unwrap()).collect();
        let wrong = r.starts_with(" class=\"wrong\"");
        assert_eq!(wrong, c[1] != c[2], "{r}");
        assert!(!(wrong && seen_right), "misclassified first");
        seen_right |= !wrong;
        assert_eq!(c[3].split(", ").count(), 3, "the row's values: {r}");
    }
}

#[test]
fn a_binary_classifier_gets_a_two_class_confusion_matrix() {
    let dir = tmp("report-binary");
    // Two features; the class is whether their sum is positive. A sigmoid output [N, 1] and binary labels.
    let mut csv = String::new();
    let mut state = 11u64;
    for _ in 0..100 {
        let mut next = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((state >> 33) as f64 / (1u64 << 31) as f64) * 2.0 - 1.0
        };
        let (a, b) = (next(), next());
        csv.push_str(&format!("{a:.3},{b:.3},{}\n", u8::from(a + b > 0.0)));
    }
    std::fs::write(dir.join("b.csv"), csv).unwrap();
    let nn = "dim N\nmodel Bin {\n    input x: [N, 2]\n    input y: int[N]\n\
              output p = dense(x, 1, activation = sigmoid)\n}\n\
              train bin {\n    model = Bin()\n    data = csv(\"b.csv\", x = 0..2, y = 2, header = false)\n\
              loss = binary_cross_entropy(p, y)\n    metrics = [accuracy(p, y)]\n    optimizer = adam(lr = 0.05)\n\
              batch = 10\n    epochs = 3\n    validate = split(0.3)\n}\n";
    std::fs::write(dir.join("bin.nn"), nn).unwrap();
    run(&dir, &["bin.nn", "--out", "o"]);
    let html = std::fs::read_to_string(dir.join("o/report.html")).unwrap();
    let table = html.split("<table class=\"confusion\">").nth(1).unwrap().split("</table>").next().unwrap();
    let rows: Vec<Vec<u64>> = table.split("<tr>").skip(2).map(cells).collect();
    assert_eq!(rows.len(), 2, "two classes");
    assert_eq!(rows.iter().map(|r| r[2]).sum::<u64>(), 30, "the 30 validation rows");
    // The diagonal is the validation accuracy (the threshold is the metric's, 0.5).
    let csv = std::fs::read_to_string(dir.join("o/history.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let last: Vec<f64> = csv.lines().last().unwrap().split(',').map(|v| v.parse().unwrap()).collect();
    let val_accuracy = last[header.iter().position(|h| *h == "val_accuracy").unwrap()];
    assert_eq!(rows[0][0] + rows[1][1], (val_accuracy * 30.0).round() as u64);
}
