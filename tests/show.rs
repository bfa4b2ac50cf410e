//! `nnc show`, looked at as a person would: every example's model diagram is well-formed SVG naming every
//! layer and the shape on every edge; the filters and feature maps of a trained workshop ConvNet are the
//! numbers of its checkpoint (PNG pixels compared with kernels and with a convolution computed here); sample
//! grids carry the data's labels; hostile arguments get clear errors.

#![forbid(unsafe_code)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use common::*;
use nnc_compiler::graph::{NodeKind, Operand, TRef};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nnc-show-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn nnc<S: AsRef<std::ffi::OsStr>>(cwd: &Path, args: &[S]) -> Output {
    Command::new(nnc_bin()).current_dir(cwd).args(args).output().unwrap()
}

/// `nnc ARGS`, which must succeed.
fn ok(cwd: &Path, args: &[&str]) -> String {
    let o = nnc(cwd, args);
    let (out, err) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "nnc {args:?}\n{out}\n{err}");
    format!("{out}{err}")
}

/// `nnc ARGS`, which must fail with exit code `code`; returns stderr.
fn fails<S: AsRef<std::ffi::OsStr> + std::fmt::Debug>(cwd: &Path, args: &[S], code: i32) -> String {
    let o = nnc(cwd, args);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(code), "nnc {args:?}\n{}\n{err}", String::from_utf8_lossy(&o.stdout));
    assert!(!err.contains("panicked"), "{err}");
    err
}

fn example(name: &str) -> String {
    root().join("examples").join(name).display().to_string()
}

/// Every text node of an SVG document, parsed as XML (a malformed document fails here).
fn svg_texts(svg: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("not XML: {e}"));
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    doc.descendants().filter(|n| n.has_tag_name("text")).map(|n| n.text().unwrap_or("").trim().to_string()).collect()
}

/// The tensors a typed-graph node reads (the test's own walk, not the drawing code's).
fn reads(kind: &NodeKind) -> Vec<TRef> {
    let t = |o: &Operand| if let Operand::Tensor(t) = o { Some(*t) } else { None };
    match kind {
        NodeKind::Layer { inputs, .. } => inputs.clone(),
        NodeKind::Binary { lhs, rhs, .. } => [t(lhs), t(rhs)].into_iter().flatten().collect(),
        NodeKind::Index { base, .. } => vec![*base],
        _ => Vec::new(),
    }
}

#[test]
fn every_example_model_is_drawn_with_its_layers_and_edge_shapes() {
    let dir = tmp("models");
    let files: Vec<PathBuf> = nn_files("examples").into_iter().chain(nn_files("examples/zoo")).collect();
    assert!(files.len() >= 30, "{files:?}");
    for f in &files {
        let out = dir.join(format!("{}.svg", f.file_stem().unwrap().to_string_lossy()));
        ok(&dir, &["show", "model", &f.display().to_string(), "--out", &out.display().to_string()]);
        let svg = std::fs::read_to_string(&out).unwrap();
        let texts = svg_texts(&svg);
        let a = analyse_path(f);
        let own: Vec<_> = a.result.models.iter().filter(|m| m.file == nnc_syntax::FileId(0)).collect();
        assert!(!own.is_empty(), "{}", f.display());
        for m in own {
            assert!(texts.contains(&format!("model {}", m.name)), "{}: model {}", f.display(), m.name);
            for l in &m.layers {
                assert!(texts.contains(&l.name), "{}: layer {} not drawn", f.display(), l.name);
            }
            for name in m.inputs.iter().map(|(n, _)| n).chain(m.outputs.iter().map(|(n, _)| n)) {
                assert!(texts.contains(name), "{}: {name} not drawn", f.display());
            }
            // Every edge's shape, as the checker infers it (symbolic: `[N, 28, 28, 16]`).
            let mut edges: Vec<TRef> = m.graph.nodes.iter().flat_map(|n| reads(&n.kind)).collect();
            edges.extend(m.outputs.iter().filter_map(|(_, v)| v.as_tensor()?.node));
            for r in edges {
                let shape = m.graph.ty(r).to_string();
                assert!(texts.contains(&shape), "{}: edge shape {shape} not drawn", f.display());
            }
        }
    }
    // The symbolic batch dim and block rectangles where the model has blocks.
    let resnet = std::fs::read_to_string(dir.join("resnet50.svg")).unwrap();
    assert!(resnet.contains("[N, 56, 56, 256]") && resnet.contains("class=\"block\""));
}

#[test]
fn blocks_collapse_to_one_box_each_with_depth() {
    let dir = tmp("depth");
    let f = root().join("examples/zoo/resnet50.nn").display().to_string();
    ok(&dir, &["show", "model", &f, "--out", "full.svg"]);
    ok(&dir, &["show", "model", &f, "--depth", "0", "--out", "top.svg"]);
    let full = std::fs::read_to_string(dir.join("full.svg")).unwrap();
    let top = std::fs::read_to_string(dir.join("top.svg")).unwrap();
    let nodes = |s: &str| s.matches("<g class=\"node ").count();
    assert!(nodes(&top) * 4 < nodes(&full), "{} vs {}", nodes(&top), nodes(&full));
    let texts = svg_texts(&top);
    assert!(texts.iter().any(|t| t.starts_with("block ")), "{texts:?}");
    assert!(top.contains("class=\"node collapsed\""));
    // The shapes between collapsed blocks are still on the edges.
    assert!(texts.contains(&"[N, 7, 7, 2048]".to_string()), "{texts:?}");
}

/// A workshop ConvNet trained for a few steps (once per test binary), with its checkpoint.
fn trained() -> &'static (PathBuf, PathBuf) {
    static DIR: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tmp("trained");
        let w = dir.join("w.safetensors");
        let f = example("workshop_convnet.nn");
        let (run, ws) = (dir.join("run").display().to_string(), w.display().to_string());
        ok(&dir, &["run", &f, "--epochs", "1", "--steps", "3", "--out", &run, "--save", &ws]);
        (dir, w)
    })
}

/// A PNG decoded to RGB bytes: (width, height, pixels).
fn decode(path: &Path) -> (usize, usize, Vec<u8>) {
    let bytes = std::fs::read(path).unwrap();
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes)).read_info().unwrap();
    let mut buf = vec![0u8; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb);
    buf.truncate(info.buffer_size());
    (info.width as usize, info.height as usize, buf)
}

/// The checkpoint's tensor `name` as (shape, values).
fn tensor(w: &Path, name: &str) -> (Vec<usize>, Vec<f32>) {
    let (list, _) = nnc_runtime::io::load_checkpoint_typed(w).unwrap();
    let t = list.into_iter().find(|t| t.name == name).unwrap_or_else(|| panic!("no {name}"));
    (t.value.shape().to_vec(), t.value.iter().copied().collect())
}

/// Grey levels as the grid draws a tile scaled from its own minimum to its maximum.
fn grey(vals: &[f64]) -> Vec<u8> {
    let (lo, hi) = vals.iter().fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    vals.iter().map(|v| if hi > lo { ((v - lo) / (hi - lo) * 255.0).round() as u8 } else { 128 }).collect()
}

/// Tile `index` of a zoom-1 grid of `h`×`w` tiles in `columns` (2-pixel gaps), as grey levels.
fn tile(png: &(usize, usize, Vec<u8>), index: usize, columns: usize, (h, w): (usize, usize)) -> Vec<u8> {
    let (top, left) = (2 + (index / columns) * (h + 2), 2 + (index % columns) * (w + 2));
    let mut out = Vec::new();
    for y in 0..h {
        for x in 0..w {
            let at = ((top + y) * png.0 + left + x) * 3;
            assert!(png.2[at] == png.2[at + 1] && png.2[at] == png.2[at + 2], "not grey");
            out.push(png.2[at]);
        }
    }
    out
}

fn close(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.abs_diff(*y) <= 1)
}

#[test]
fn filters_are_the_checkpoints_kernels_normalised_as_the_workshop_does() {
    let (dir, w) = trained();
    let f = example("workshop_convnet.nn");
    let ws = w.display().to_string();
    let args = ["show", "filters", &f, "--weights", &ws, "--layer", "conv2", "--colormap", "gray", "--zoom", "1"];
    ok(dir, &[&args[..], &["--out", "conv2.png"]].concat());
    let png = decode(&dir.join("conv2.png"));
    let (shape, k) = tensor(w, "conv2.kernel");
    assert_eq!(shape, [5, 5, 16, 32]);
    // 32 filters × 16 input channels, 12 to a row as in the workshop: 43 rows of 5×5 tiles.
    assert_eq!((png.0, png.1), (2 + 12 * 7, 2 + 43 * 7));
    for (i, j) in [(0, 0), (0, 15), (7, 3), (31, 15)] {
        let vals: Vec<f64> = (0..25).map(|p| f64::from(k[p * 16 * 32 + j * 32 + i])).collect();
        // np.minimum(1, np.maximum(0, (k - mean) / std + 0.5)), then imshow's own min–max.
        let mean = vals.iter().sum::<f64>() / 25.0;
        let std = (vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 25.0).sqrt();
        let norm: Vec<f64> = vals.iter().map(|v| ((v - mean) / std + 0.5).clamp(0.0, 1.0)).collect();
        let drawn = tile(&png, i * 16 + j, 12, (5, 5));
        assert!(close(&drawn, &grey(&norm)), "filter {i},{j}: {drawn:?} vs {:?}", grey(&norm));
    }
    // The SVG labels each tile `filter,channel`, as the workshop's titles do, in viridis by default.
    ok(dir, &["show", "filters", &f, "--weights", &ws, "--layer", "conv1", "--out", "conv1.svg"]);
    let svg = std::fs::read_to_string(dir.join("conv1.svg")).unwrap();
    let texts = svg_texts(&svg);
    assert_eq!(svg.matches("<image ").count(), 16);
    assert!(texts.contains(&"0,0".to_string()) && texts.contains(&"15,0".to_string()), "{texts:?}");
}

/// A `.npy` of float32 with `shape`.
fn write_npy(path: &Path, shape: &[usize], vals: &[f32]) {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({},), }}", dims.join(", "));
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for v in vals {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn activations_are_the_layers_outputs_one_tile_per_channel() {
    let (dir, w) = trained();
    let f = example("workshop_convnet.nn");
    let ws = w.display().to_string();
    // conv1 of an input given as .npy, checked against a 5×5 'same' convolution computed here.
    let image: Vec<f32> =
        (0..784).map(|p| (((p * 37) % 101) as f32 / 100.0) * ((p / 28 + p % 28) % 3) as f32).collect();
    write_npy(&dir.join("x.npy"), &[1, 28, 28, 1], &image);
    let common = ["show", "activations", &f, "--weights", &ws, "--colormap", "gray", "--zoom", "1"];
    ok(dir, &[&common[..], &["--layer", "conv1", "--input", "images=x.npy", "--out", "conv1.png"]].concat());
    let png = decode(&dir.join("conv1.png"));
    let ((_, k), (_, b)) = (tensor(w, "conv1.kernel"), tensor(w, "conv1.bias"));
    for ch in [0, 5, 15] {
        let mut out = vec![0f64; 784];
        for (y, x) in (0..28).flat_map(|y| (0..28).map(move |x| (y, x))) {
            let mut s = f64::from(b[ch]);
            for (dy, dx) in (0..5).flat_map(|dy| (0..5).map(move |dx| (dy, dx))) {
                let (iy, ix) = (y as i64 + dy as i64 - 2, x as i64 + dx as i64 - 2);
                if (0..28).contains(&iy) && (0..28).contains(&ix) {
                    s += f64::from(image[(iy * 28 + ix) as usize]) * f64::from(k[(dy * 5 + dx) * 16 + ch]);
                }
            }
            out[y * 28 + x] = s;
        }
        let drawn = tile(&png, ch, 8, (28, 28));
        let want = grey(&out);
        let off = drawn.iter().zip(&want).filter(|(a, b)| a.abs_diff(**b) > 1).count();
        assert_eq!(off, 0, "channel {ch}: {off} pixels differ");
    }
    // From the train block's data: conv2's 32 channels (the workshop's figure), then every image-shaped layer.
    ok(dir, &[&common[..], &["--layer", "conv2", "--index", "3", "--columns", "4", "--out", "conv2.svg"]].concat());
    let svg = std::fs::read_to_string(dir.join("conv2.svg")).unwrap();
    svg_texts(&svg);
    assert_eq!(svg.matches("<image ").count(), 32);
    // The same row through the train block (its `let images = images / 255` applied) and as a .npy of the
    // file's row divided here: the same picture.
    ok(dir, &[&common[..], &["--layer", "conv2", "--index", "3", "--out", "via-block.png"]].concat());
    let gz = std::fs::read(root().join("data/mnist_5k.csv.gz")).unwrap();
    let mut csv = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut csv).unwrap();
    let row: Vec<f32> =
        csv.lines().nth(3).unwrap().split(',').take(784).map(|v| v.parse::<f32>().unwrap() / 255.0).collect();
    write_npy(&dir.join("row3.npy"), &[1, 28, 28, 1], &row);
    let npy = ["--layer", "conv2", "--input", "images=row3.npy", "--out", "via-npy.png"];
    ok(dir, &[&common[..], &npy].concat());
    let (a, b) = (decode(&dir.join("via-block.png")), decode(&dir.join("via-npy.png")));
    assert_eq!((a.0, a.1), (b.0, b.1));
    let off = a.2.iter().zip(&b.2).filter(|(x, y)| x.abs_diff(**y) > 1).count();
    assert_eq!(off, 0, "{off} of {} values differ", a.2.len());
    ok(dir, &[&common[..], &["--out", "all.svg"]].concat());
    let all = std::fs::read_to_string(dir.join("all.svg")).unwrap();
    let texts = svg_texts(&all);
    // conv1, bn1, relu, pool (16 each), conv2, bn2, relu, pool (32 each).
    assert_eq!(all.matches("<image ").count(), 4 * 16 + 4 * 32, "{texts:?}");
    assert!(texts.iter().any(|t| t == "features.max_pool_1: row 0, 32 × 7×7"), "{texts:?}");
    ok(dir, &[&common[..], &["--out", "all.png"]].concat());
    decode(&dir.join("all.png"));
}

#[test]
fn samples_are_the_first_rows_with_their_labels() {
    let dir = tmp("samples");
    let f = example("digits_mlp.nn");
    ok(&dir, &["show", "samples", &f, "--count", "12", "--out", "s.svg"]);
    let svg = std::fs::read_to_string(dir.join("s.svg")).unwrap();
    let texts = svg_texts(&svg);
    assert_eq!(svg.matches("<image ").count(), 12);
    // The labels are the data file's last column, first 12 rows.
    let gz = std::fs::read(root().join("data/digits.csv.gz")).unwrap();
    let mut csv = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut csv).unwrap();
    let labels: Vec<String> = csv.lines().take(12).map(|l| l.rsplit(',').next().unwrap().trim().to_string()).collect();
    let drawn: Vec<&String> = texts.iter().skip(1).collect();
    assert_eq!(drawn, labels.iter().collect::<Vec<_>>());
    // --spread: rows evenly spaced over the MNIST file, which is sorted by class (500 of each).
    let mnist = example("workshop_convnet.nn");
    ok(&dir, &["show", "samples", &mnist, "--spread", "--count", "20", "--out", "spread.svg"]);
    let texts = svg_texts(&std::fs::read_to_string(dir.join("spread.svg")).unwrap());
    let want: Vec<String> = (0..20).map(|i| (i / 2).to_string()).collect();
    assert_eq!(texts[1..], want[..]);
    // 8×8 digits, flattened to 64 columns, come back as 8×8 tiles.
    ok(&dir, &["show", "samples", &f, "--count", "3", "--zoom", "1", "--out", "s.png"]);
    let png = decode(&dir.join("s.png"));
    assert_eq!((png.0, png.1), (2 + 3 * 10, 2 + 10));
}

#[test]
fn hostile_arguments_get_clear_errors() {
    let (dir, w) = trained();
    let f = example("workshop_convnet.nn");
    let ws = w.display().to_string();
    let filters = |extra: &[&str]| -> Vec<String> {
        let head = ["show", "filters", f.as_str(), "--weights", ws.as_str()];
        head.iter().chain(extra).chain(&["--out", "x.svg"]).map(|s| s.to_string()).collect()
    };
    let e = fails(dir, &filters(&["--layer", "conv3"]), 2);
    assert!(e.contains("no layer `conv3`") && e.contains("conv1, conv2"), "{e}");
    let e = fails(dir, &filters(&["--layer", "fc"]), 2);
    assert!(e.contains("`fc` is a dense layer, not a convolution") && e.contains("conv1, conv2"), "{e}");
    let e = fails(dir, &filters(&[]), 2);
    assert!(e.contains("name one with --layer; the conv layers of `ConvNet`: conv1, conv2"), "{e}");
    let mlp = example("digits_mlp.nn");
    let e = fails(dir, &["show", "filters", &mlp, "--weights", &ws, "--out", "x.svg"], 2);
    assert!(e.contains("model `DigitsMlp` has no conv layer"), "{e}");
    let e = fails(dir, &["show", "filters", &f, "--weights", "missing.safetensors", "--layer", "conv1"], 1);
    assert!(e.contains("missing.safetensors") && e.contains("No such file"), "{e}");
    // A checkpoint of another model: the workshop's weights for the MNIST CNN example.
    let other = example("mnist_cnn.nn");
    let e = fails(dir, &["show", "filters", &other, "--weights", &ws, "--layer", "conv1", "--out", "x.svg"], 1);
    assert!(e.contains("does not fit model `MnistCnn`"), "{e}");
    let e = fails(dir, &["show", "activations", &f, "--weights", &ws, "--layer", "cnv2", "--out", "x.svg"], 2);
    assert!(e.contains("did you mean `conv2`"), "{e}");
    let e = fails(dir, &["show", "activations", &f, "--weights", &ws, "--index", "99999", "--out", "x.svg"], 2);
    assert!(e.contains("--index 99999: the data has 5000 rows"), "{e}");
    // A model no train block trains (the GAN's generator: a multi-model block), and no --input.
    let gan = example("mnist_gan.nn");
    let e = fails(dir, &["show", "activations", &gan, "--weights", &ws, "--model", "Generator", "--out", "x.svg"], 2);
    assert!(e.contains("no train block trains model `Generator`") && e.contains("--input NAME=FILE"), "{e}");
    let e = fails(dir, &["show", "samples", &f, "--out", "no/such/dir/x.svg"], 2);
    assert!(e.contains("the directory `no/such/dir` does not exist"), "{e}");
    let e = fails(dir, &["show", "model", &f, "--out", "x.png"], 2);
    assert!(e.contains("use --out PATH.svg"), "{e}");
    let e = fails(dir, &["show", "model", &f, "--out", "x.jpg"], 2);
    assert!(e.contains(".svg or .png"), "{e}");
    fails(dir, &["show", "samples", &f, "--count", "0"], 2);
    let e = fails(dir, &["show", "model", "missing.nn", "--out", "x.svg"], 2);
    assert!(e.contains("cannot read `missing.nn`"), "{e}");
    std::fs::write(dir.join("broken.nn"), "model M {\n    input x: [N, 3]\n    output y = dense(x, 4)\n}\n").unwrap();
    let e = fails(dir, &["show", "model", "broken.nn", "--out", "x.svg"], 1);
    assert!(e.contains("E0102") && e.contains("broken.nn has errors; nothing drawn"), "{e}");
    // A huge count draws every row (the source has 5000), never more.
    let out = ok(dir, &["show", "samples", &f, "--count", "99999999999999", "--zoom", "1", "--out", "every-row.png"]);
    assert!(out.contains("the data has 5000 rows"), "{out}");
    // Not `all.png`: the activations test writes that name in the same shared directory, in parallel.
    let png = decode(&dir.join("every-row.png"));
    assert_eq!((png.0, png.1), (2 + 8 * 30, 2 + 625 * 30));
    assert!(!dir.join("x.svg").exists(), "a failed show wrote its output");
}

#[test]
fn a_three_channel_conv_draws_one_rgb_tile_per_filter() {
    let dir = tmp("rgb");
    let f = example("keras_shapes_conv.nn");
    let w = dir.join("w.safetensors");
    let ws = w.display().to_string();
    ok(&dir, &["run", &f, "--epochs", "1", "--steps", "2", "--out", "run", "--save", &ws]);
    let layer = "features.conv2d";
    ok(&dir, &["show", "filters", &f, "--weights", &ws, "--layer", layer, "--zoom", "1", "--out", "rgb.png"]);
    let png = decode(&dir.join("rgb.png"));
    let (shape, k) = tensor(&w, "features.conv2d.kernel");
    assert_eq!(shape, [2, 2, 3, 32]);
    assert_eq!((png.0, png.1), (2 + 12 * 4, 2 + 3 * 4));
    for i in [0, 13, 31] {
        // The filter's 2×2×3 values standardised together, drawn as RGB in [0, 1].
        let vals: Vec<f64> = (0..12).map(|p| f64::from(k[p * 32 + i])).collect();
        let mean = vals.iter().sum::<f64>() / 12.0;
        let std = (vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 12.0).sqrt();
        let want: Vec<u8> =
            vals.iter().map(|v| (((v - mean) / std + 0.5).clamp(0.0, 1.0) * 255.0).round() as u8).collect();
        let (top, left) = (2 + (i / 12) * 4, 2 + (i % 12) * 4);
        let mut drawn = Vec::new();
        for y in 0..2 {
            let at = ((top + y) * png.0 + left) * 3;
            drawn.extend_from_slice(&png.2[at..at + 6]);
        }
        assert!(close(&drawn, &want), "filter {i}: {drawn:?} vs {want:?}");
    }
    // --per-channel: one grey tile per (filter, channel) instead.
    let args = ["show", "filters", &f, "--weights", &ws, "--per-channel", "--colormap", "gray", "--out", "grey.svg"];
    ok(&dir, &args);
    assert_eq!(std::fs::read_to_string(dir.join("grey.svg")).unwrap().matches("<image ").count(), 96);
}

#[test]
fn a_model_with_a_thousand_long_skip_connections_stays_small() {
    // Every layer also reads the input: 1500 edges spanning up to 3000 ranks. Reserving a slot on every
    // rank each crosses would be millions of slots (an 80 MB picture); beyond a budget they are drawn straight.
    let dir = tmp("skips");
    let mut src = String::from("dim N\nmodel Skips {\n    input x: [N, 8]\n");
    let mut prev = "x".to_string();
    for i in 0..1500 {
        src.push_str(&format!("    let h{i} = dense({prev}, 8) + x\n"));
        prev = format!("h{i}");
    }
    src.push_str(&format!("    output y = {prev}\n}}\n"));
    std::fs::write(dir.join("skips.nn"), src).unwrap();
    let started = std::time::Instant::now();
    ok(&dir, &["show", "model", "skips.nn", "--out", "skips.svg"]);
    let svg = std::fs::read_to_string(dir.join("skips.svg")).unwrap();
    assert!(svg.len() < 8 << 20, "{} bytes", svg.len());
    assert!(started.elapsed().as_secs() < 20, "{:?}", started.elapsed());
    svg_texts(&svg);
    // Edges: dense ← previous, + ← dense, + ← x per line, and the output's.
    assert_eq!(svg.matches("<g class=\"node layer\">").count(), 1500);
    assert_eq!(svg.matches("<g class=\"edge\">").count(), 1500 * 3 + 1);
}
