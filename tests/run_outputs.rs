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
    // Opens offline: nothing names a URL or a file to fetch.
    assert!(!html.to_lowercase().contains("http"), "a URL in the report");
    assert!(!html.contains(" src=") && !html.contains(" href="), "an external resource");
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
