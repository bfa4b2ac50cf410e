//! The run report and a model diagram as a person sees them: rendered by headless Chromium (Debian's
//! `chromium`, installed by `.ci/run`), screenshotted, and checked: every image on the page loaded
//! (`naturalWidth > 0`), every chart drew at a size with its axis labels and series names, and the screenshot
//! is a picture (a PNG that decodes, not one colour). The screenshots' paths are printed (`--nocapture`).
//! Skipped, saying why, when no Chromium is installed.

#![forbid(unsafe_code)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// The browser: `NNC_CHROMIUM`, else the first of the usual names that runs.
fn chromium() -> Option<String> {
    let candidates = std::env::var("NNC_CHROMIUM")
        .into_iter()
        .chain(["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"].into_iter().map(String::from));
    candidates.into_iter().find(|c| Command::new(c).arg("--version").output().is_ok_and(|o| o.status.success()))
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nnc-screens-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `c`'s output, or a panic after `secs` seconds (the browser is killed): a stuck browser fails the test
/// rather than hanging the suite.
fn output_within(mut c: Command, secs: u64) -> std::process::Output {
    use std::io::Read as _;
    let mut child = c.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = stdout.read_to_end(&mut b);
        b
    });
    let err = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = stderr.read_to_end(&mut b);
        b
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the browser did not finish within {secs} s");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    std::process::Output { status, stdout: out.join().unwrap(), stderr: err.join().unwrap() }
}

/// Headless Chromium with its own profile (tests run in parallel), no sandbox (CI runs as root), no GPU.
fn browser(exe: &str, profile: &Path) -> Command {
    let mut c = Command::new(exe);
    c.args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run"])
        .arg(format!("--user-data-dir={}", profile.display()));
    c
}

/// A screenshot of `page` (`file://`) at `size`, as a decoded RGB(A) image: (width, height, bytes per
/// pixel, pixels).
fn screenshot(exe: &str, dir: &Path, page: &Path, shot: &Path, size: (u32, u32)) -> (u32, u32, usize, Vec<u8>) {
    let mut c = browser(exe, &dir.join("profile-shot"));
    c.arg(format!("--screenshot={}", shot.display()))
        .arg(format!("--window-size={},{}", size.0, size.1))
        .arg("--virtual-time-budget=5000")
        .arg(format!("file://{}", page.display()));
    let o = output_within(c, 120);
    assert!(shot.exists(), "no screenshot: {}", String::from_utf8_lossy(&o.stderr));
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(shot).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    (info.width, info.height, info.color_type.samples(), buf)
}

/// The page's DOM after it loaded, with `probe` run at `load`: it writes what it found into the title.
fn probed_dom(exe: &str, dir: &Path, page: &Path) -> String {
    // A copy with the probe: the report itself has no script.
    let html = std::fs::read_to_string(page).unwrap();
    let probed = dir.join(format!("probed-{}", page.file_name().unwrap().to_str().unwrap()));
    std::fs::write(&probed, html.replacen("</body>", &format!("<script>{PROBE}</script></body>"), 1)).unwrap();
    let mut c = browser(exe, &dir.join("profile-dom"));
    c.args(["--virtual-time-budget=5000", "--dump-dom"]).arg(format!("file://{}", probed.display()));
    let o = output_within(c, 120);
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Counts the images and those that did not load (not complete, or no natural width), and the inline SVGs
/// that drew at no size; writes `PROBE images=… broken=… svgs=… empty_svgs=…` into the title, and the texts
/// of the charts into a `<pre id="probe-texts">`.
const PROBE: &str = "window.addEventListener('load', () => {\
  const imgs = [...document.images];\
  const broken = imgs.filter(i => !(i.complete && i.naturalWidth > 0)).length;\
  const svgs = [...document.querySelectorAll('body > svg, h2 + svg')];\
  const empty = svgs.filter(s => { const r = s.getBoundingClientRect(); return !(r.width > 0 && r.height > 0); });\
  document.title = `PROBE images=${imgs.length} broken=${broken} svgs=${svgs.length} empty_svgs=${empty.length}`;\
  const pre = document.createElement('pre'); pre.id = 'probe-texts';\
  pre.textContent = [...document.querySelectorAll('svg text')].map(t => t.textContent.trim()).join('\\n');\
  document.body.appendChild(pre);\
});";

/// The texts of the page's charts as the browser has them (one per line, from the probe).
fn chart_texts(dom: &str) -> Vec<String> {
    let pre = dom.split("<pre id=\"probe-texts\">").nth(1).and_then(|t| t.split("</pre>").next()).unwrap_or("");
    pre.lines().map(|l| l.trim().replace("&amp;", "&")).collect()
}

/// The numbers of the probe's title.
fn probe_counts(dom: &str) -> Vec<(String, usize)> {
    let title = dom.split("<title>").nth(1).and_then(|t| t.split("</title>").next()).unwrap_or("");
    assert!(title.starts_with("PROBE "), "the probe did not run: title {title:?}");
    title[6..]
        .split_whitespace()
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

/// A screenshot is a picture: not blank (one colour) and with a fair share of non-white pixels.
fn check_not_blank(name: &str, (w, h, bpp, px): &(u32, u32, usize, Vec<u8>)) {
    assert!(*w > 0 && *h > 0);
    let mut colours = std::collections::HashSet::new();
    let mut ink = 0usize;
    for p in px.chunks_exact(*bpp) {
        colours.insert(p[..3].to_vec());
        if p[..3].iter().any(|&c| c < 200) {
            ink += 1;
        }
    }
    let share = ink as f64 / (*w as f64 * *h as f64);
    assert!(colours.len() > 16, "{name}: {} colours: blank", colours.len());
    assert!(share > 0.01, "{name}: {:.2} % of pixels drawn", share * 100.0);
}

#[test]
fn the_report_of_the_workshop_convnet_renders_in_chromium() {
    let Some(exe) = chromium() else {
        eprintln!("skipped: no Chromium (`chromium --version` failed; apt-get install chromium)");
        return;
    };
    let dir = tmp("report");
    let out = dir.join("run");
    let example = root().join("examples/workshop_convnet.nn");
    let o = Command::new(nnc_bin())
        .current_dir(&dir)
        .args(["run", example.to_str().unwrap(), "--epochs", "1", "--steps", "5", "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let page = out.join("report.html");
    let dom = probed_dom(&exe, &dir, &page);
    let counts = probe_counts(&dom);
    let get = |k: &str| counts.iter().find(|c| c.0 == k).map(|c| c.1).unwrap();
    assert_eq!(get("images"), 1, "the sample grid: {counts:?}");
    assert_eq!(get("broken"), 0, "{counts:?}");
    assert_eq!(get("svgs"), 1, "the curves: {counts:?}");
    assert_eq!(get("empty_svgs"), 0, "{counts:?}");
    // The charts as rendered: axis labels and series names are text of the live DOM.
    let texts = chart_texts(&dom);
    for word in ["epoch", "loss", "accuracy", "train", "validation", "train, per step (smoothed)"] {
        assert!(texts.iter().any(|t| t == word), "no `{word}` in the rendered charts: {texts:?}");
    }
    let shot = dir.join("report.png");
    let image = screenshot(&exe, &dir, &page, &shot, (1100, 2400));
    check_not_blank("report", &image);
    println!("screenshot of report.html: {}", shot.display());
}

#[test]
fn a_model_diagram_renders_in_chromium() {
    let Some(exe) = chromium() else {
        eprintln!("skipped: no Chromium (`chromium --version` failed; apt-get install chromium)");
        return;
    };
    // A build without `nnc show` (a branch before it landed) has nothing to draw.
    if !Command::new(nnc_bin()).args(["show", "--help"]).output().is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: this nnc has no `nnc show` (`nnc show --help` failed)");
        return;
    }
    let dir = tmp("model");
    let svg = dir.join("model.svg");
    let example = root().join("examples/workshop_convnet.nn");
    let o = Command::new(nnc_bin())
        .args(["show", "model", example.to_str().unwrap(), "--out", svg.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The diagram as an image of a page, as a manual or a report would show it.
    let page = dir.join("model.html");
    let html = "<!DOCTYPE html><html><head><title>model</title></head>\
                <body><img alt=\"model\" src=\"model.svg\"></body></html>";
    std::fs::write(&page, html).unwrap();
    let counts = probe_counts(&probed_dom(&exe, &dir, &page));
    let get = |k: &str| counts.iter().find(|c| c.0 == k).map(|c| c.1).unwrap();
    assert_eq!((get("images"), get("broken")), (1, 0), "{counts:?}");
    let shot = dir.join("model.png");
    let image = screenshot(&exe, &dir, &svg, &shot, (1000, 1400));
    check_not_blank("model diagram", &image);
    println!("screenshot of `nnc show model`: {}", shot.display());
}
