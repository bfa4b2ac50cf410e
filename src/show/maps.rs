//! The image grids of `nnc show`: a conv layer's kernels, one input's feature maps, a data source's samples.
//! Each is a `picture::Grid`; one-channel tiles are coloured here (viridis, as matplotlib's `imshow` does in the
//! MNIST workshop's figures) or left grey for the picture module to scale.

use std::fmt::Write as _;

use ndarray::{ArrayD, Axis};
use nnc_compiler::check::train::TrainInfo;
use nnc_compiler::graph::{Graph, NodeKind, Operand, TRef};
use nnc_runtime::exec::Tensor;
use nnc_runtime::train::Dataset;

use super::{Colormap, Look};
use crate::picture::{Grid, MAX_PIXELS, Scale, Tile};
use crate::run::Failure;

/// What `nnc show activations` draws: which layer (or every image-shaped one), which row, from where.
pub struct ActivationRequest<'a> {
    pub layer: Option<&'a str>,
    pub index: usize,
    pub inputs: &'a [String],
    pub train: Option<&'a str>,
}

/// The names of the model's convolutions: layers with a `kernel` of rank 3 (1-D) or 4 (2-D).
fn conv_layers(m: &nnc_compiler::ModelInfo) -> Vec<&str> {
    m.layers.iter().filter(|r| conv_param(r).is_some()).map(|r| r.name.as_str()).collect()
}

/// The checkpoint name of a layer's conv kernel (records name parameters relative to the layer).
fn conv_param(r: &nnc_compiler::LayerRecord) -> Option<String> {
    let kernel = r.params.iter().find(|p| p.name == "kernel" && matches!(p.shape.len(), 3 | 4))?;
    Some(format!("{}.{}", r.name, kernel.name))
}

/// The conv layer `layer` (or the model's only one): its name and its kernel's checkpoint name. Decided before
/// any checkpoint is read, so a wrong `--layer` costs nothing.
pub fn pick_conv(m: &nnc_compiler::ModelInfo, layer: Option<&str>) -> Result<(String, String), Failure> {
    let convs = conv_layers(m);
    let list = || {
        if convs.is_empty() {
            format!("model `{}` has no conv layer (a layer with a 1-D or 2-D conv kernel)", m.name)
        } else {
            format!("the conv layers of `{}`: {}", m.name, convs.join(", "))
        }
    };
    let record = match layer {
        Some(name) => m.layers.iter().find(|r| r.name == name).ok_or_else(|| {
            let hint = nnc_compiler::layers::suggest(name, convs.iter().copied())
                .map_or(String::new(), |s| format!("did you mean `{s}`? "));
            Failure::usage(format!("no layer `{name}` in model `{}`; {hint}{}", m.name, list()))
        })?,
        None => match convs.as_slice() {
            [one] => m.layers.iter().find(|r| r.name == *one).expect("listed from the layers"),
            [] => return Err(Failure::usage(list())),
            _ => return Err(Failure::usage(format!("name one with --layer; {}", list()))),
        },
    };
    let param = conv_param(record).ok_or_else(|| {
        Failure::usage(format!(
            "`{}` is a {} layer, not a convolution: it has no kernel to draw as filters; {}",
            record.name,
            record.layer,
            list()
        ))
    })?;
    Ok((record.name.clone(), param))
}

/// The workshop's normalisation of one kernel: standardised, shifted by 0.5 and clipped to [0, 1]
/// (`np.minimum(1, np.maximum(0, (k − mean) / std + 0.5))`; a constant kernel is all 0.5).
pub fn standardise(k: &[f32]) -> Vec<f32> {
    let n = k.len().max(1) as f64;
    let mean = k.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let var = k.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n;
    let std = var.sqrt();
    k.iter()
        .map(|&v| {
            let z = if std > 0.0 { (f64::from(v) - mean) / std } else { 0.0 };
            (z + 0.5).clamp(0.0, 1.0) as f32
        })
        .collect()
}

/// A conv kernel `[KH, KW, C, F]` (or `[K, C, F]`) as tiles: per (filter, input channel) in that order, or one
/// RGB tile per filter when C is 3 and not `per_channel`.
pub fn filters(name: &str, kernel: &ArrayD<f32>, per_channel: bool, look: &Look) -> Result<Grid, Failure> {
    let shape = kernel.shape().to_vec();
    let (kh, kw, c, f) = match shape.as_slice() {
        [kh, kw, c, f] => (*kh, *kw, *c, *f),
        [k, c, f] => (1, *k, *c, *f),
        _ => return Err(Failure::new(format!("`{name}`'s kernel has shape {shape:?}, not a conv kernel"))),
    };
    let k4 = kernel.to_shape((kh, kw, c, f)).map_err(|e| Failure::new(e.to_string()))?;
    let colormap = look.colormap.unwrap_or(Colormap::Viridis);
    let mut tiles = Vec::new();
    let rgb = c == 3 && !per_channel;
    for i in 0..f {
        if rgb {
            let hwc = (0..kh).flat_map(|y| (0..kw).flat_map(move |x| (0..3).map(move |ch| (y, x, ch))));
            let vals: Vec<f32> = hwc.map(|(y, x, ch)| k4[[y, x, ch, i]]).collect();
            tiles.push(Tile::new(kh, kw, 3, standardise(&vals)).labelled(i.to_string()));
            continue;
        }
        for j in 0..c {
            let hw = (0..kh).flat_map(|y| (0..kw).map(move |x| (y, x)));
            let vals: Vec<f32> = hw.map(|(y, x)| k4[[y, x, j, i]]).collect();
            tiles.push(colour(kh, kw, standardise(&vals), colormap).labelled(format!("{i},{j}")));
        }
    }
    let title = format!("{name} {shape:?}");
    grid(tiles, look, 12, title, if rgb { Scale::Fixed(0.0, 1.0) } else { scale_for(colormap) })
}

fn scale_for(c: Colormap) -> Scale {
    match c {
        // Viridis tiles are coloured already (each from its own range, as `imshow` does).
        Colormap::Viridis => Scale::Fixed(0.0, 1.0),
        Colormap::Gray => Scale::PerTile,
    }
}

/// A one-channel tile: grey values as they are (the grid scales them), or coloured by viridis after scaling
/// to the tile's own range (matplotlib's `imshow` default).
fn colour(h: usize, w: usize, vals: Vec<f32>, c: Colormap) -> Tile {
    match c {
        Colormap::Gray => Tile::new(h, w, 1, vals),
        Colormap::Viridis => {
            let finite = vals.iter().copied().filter(|v| v.is_finite());
            let (lo, hi) = finite.fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
            let span = hi - lo;
            let rgb = vals
                .iter()
                .flat_map(|&v| {
                    let t = if span > 0.0 && v.is_finite() { (v - lo) / span } else { 0.0 };
                    viridis(t)
                })
                .collect();
            Tile::new(h, w, 3, rgb)
        }
    }
}

/// matplotlib's viridis at `t` ∈ [0, 1], as a degree-6 polynomial fit per channel (Matt Zucker's public-domain
/// fit; within about 0.01 of the 256-entry table, which a unit test below samples).
pub fn viridis(t: f32) -> [f32; 3] {
    const C: [[f64; 3]; 7] = [
        [0.277_727_327_223_417_7, 0.005_407_344_544_966_578, 0.334_099_805_335_306_1],
        [0.105_093_043_108_577_4, 1.404_613_529_898_575, 1.384_590_162_594_685],
        [-0.330_861_828_725_556_3, 0.214_847_559_468_213, 0.095_095_163_028_236_59],
        [-4.634_230_498_983_486, -5.799_100_973_351_585, -19.332_440_956_279_87],
        [6.228_269_936_347_081, 14.179_933_366_805_09, 56.690_552_600_681_05],
        [4.776_384_997_670_288, -13.745_145_377_746_01, -65.353_032_633_372_34],
        [-5.435_455_855_934_631, 4.645_852_612_178_535, 26.312_435_249_583_2],
    ];
    let t = f64::from(t.clamp(0.0, 1.0));
    let mut out = [0f32; 3];
    for (ch, o) in out.iter_mut().enumerate() {
        let v = C.iter().rev().fold(0.0, |acc, c| acc * t + c[ch]);
        *o = v.clamp(0.0, 1.0) as f32;
    }
    out
}

fn grid(tiles: Vec<Tile>, look: &Look, columns: usize, title: String, scale: Scale) -> Result<Grid, Failure> {
    let largest = tiles.iter().map(|t| t.height.max(t.width)).max().unwrap_or(1).max(1);
    let zoom = look.zoom.map_or_else(|| (64 / largest).clamp(1, 16), |z| z as usize);
    let columns = look.columns.map_or(columns, |c| c as usize);
    Ok(Grid { tiles, columns, scale, zoom, title: Some(title) })
}

/// The layers whose outputs to draw, as outputs of `graph`: the one named `layer`, else every layer with an
/// image-shaped (`[N, H, W, C]`) output.
pub fn pick_layers(graph: &Graph, layer: Option<&str>, model: &str) -> Result<Vec<(String, TRef)>, Failure> {
    let layers: Vec<(&str, u32, usize)> = graph
        .nodes
        .iter()
        .enumerate()
        .filter_map(|(i, n)| match &n.kind {
            NodeKind::Layer { name, .. } => Some((name.as_str(), i as u32, n.outputs.first()?.dims.len())),
            _ => None,
        })
        .collect();
    let r = |id: u32| TRef { node: id, output: 0 };
    match layer {
        Some(name) => match layers.iter().find(|l| l.0 == name) {
            Some(l) => Ok(vec![(name.to_string(), r(l.1))]),
            None => {
                let names: Vec<&str> = layers.iter().map(|l| l.0).collect();
                let hint = nnc_compiler::layers::suggest(name, names.iter().copied())
                    .map_or(String::new(), |s| format!("did you mean `{s}`? "));
                let shown = names.iter().take(40).copied().collect::<Vec<_>>().join(", ");
                let more = if names.len() > 40 { format!(" … ({} in all)", names.len()) } else { String::new() };
                Err(Failure::usage(format!("no layer `{name}` in model `{model}`; {hint}its layers: {shown}{more}")))
            }
        },
        None => {
            let maps: Vec<(String, TRef)> =
                layers.iter().filter(|l| l.2 == 4).map(|l| (l.0.to_string(), r(l.1))).collect();
            if maps.is_empty() {
                return Err(Failure::usage(format!(
                    "model `{model}` has no layer with an image-shaped [N, H, W, C] output; name one with --layer"
                )));
            }
            Ok(maps)
        }
    }
}

/// Row `index` of every array of `ds`.
pub fn row(ds: &Dataset, index: usize) -> Result<Dataset, Failure> {
    let n = ds.len();
    if index >= n {
        return Err(Failure::usage(format!("--index {index}: the data has {n} rows (0 to {})", n.saturating_sub(1))));
    }
    Ok(ds.take(&[index]))
}

/// One grid per layer output `[1, H, W, C]` (or `[1, T, C]`, `[1, D]`): a tile per channel, each from its own
/// minimum to its maximum, labelled with the channel's number.
pub fn feature_grids(
    layers: &[(String, TRef)],
    outs: &[ArrayD<f32>],
    index: usize,
    look: &Look,
) -> Result<Vec<Grid>, Failure> {
    let colormap = look.colormap.unwrap_or(Colormap::Viridis);
    let mut grids = Vec::new();
    // Every layer of a large network at once (VGG's 224×224 maps, hundreds of channels) would be a picture of
    // gigapixels: the layers' values together are bounded like one grid's pixels.
    let total = outs.iter().fold(0usize, |sum, o| sum.saturating_add(o.len()));
    if total > MAX_PIXELS {
        return Err(Failure::usage(format!(
            "the {} layers' feature maps hold {total} values, above the limit of {MAX_PIXELS} pixels; \
             name one layer with --layer",
            layers.len()
        )));
    }
    for ((name, _), out) in layers.iter().zip(outs) {
        let shape = out.shape().to_vec();
        let (h, w, c) = match shape.as_slice() {
            [_, h, w, c] => (*h, *w, *c),
            [_, t, c] => (1, *t, *c),
            [_, d] => (1, *d, 1),
            _ => return Err(Failure::new(format!("`{name}`'s output has shape {shape:?}: no feature maps to draw"))),
        };
        let flat: Vec<f32> = out.iter().copied().collect();
        let tiles: Vec<Tile> = (0..c)
            .map(|ch| {
                let vals: Vec<f32> = (0..h * w).map(|p| flat[p * c + ch]).collect();
                colour(h, w, vals, colormap).labelled(ch.to_string())
            })
            .collect();
        let title = format!("{name}: row {index}, {c} × {h}×{w}");
        grids.push(grid(tiles, look, 8, title, scale_for(colormap))?);
    }
    Ok(grids)
}

/// The data array a tensor of the block's graph is read from, through arithmetic and indexing
/// (`let images = images / 255` reads data array `images`).
fn data_array(g: &Graph, mut r: TRef) -> Option<String> {
    for _ in 0..g.nodes.len() {
        match &g.nodes.get(r.node as usize)?.kind {
            NodeKind::Data { name } => return Some(name.clone()),
            NodeKind::Binary { lhs: Operand::Tensor(t), .. } | NodeKind::Binary { rhs: Operand::Tensor(t), .. } => {
                r = *t
            }
            NodeKind::Index { base, .. } => r = *base,
            _ => return None,
        }
    }
    None
}

/// (height, width, channels) of one sample of per-sample shape `per`, if it is an image: `[H, W]`,
/// `[H, W, 1|3]`, or `[D]` with D a square (a flattened grey image).
fn image_shape(per: &[usize]) -> Option<(usize, usize, usize)> {
    match per {
        [h, w] if *h > 1 && *w > 1 => Some((*h, *w, 1)),
        [h, w, c] if matches!(c, 1 | 3) && *h > 1 && *w > 1 => Some((*h, *w, *c)),
        [d] => {
            let s = (*d as f64).sqrt().round() as usize;
            (s > 1 && s * s == *d).then_some((s, s, 1))
        }
        _ => None,
    }
}

/// The first `count` rows (or `count` rows evenly `spread` over the source) of the block's image data as a
/// grid, labelled with their class labels (a one-number-per-row data array a loss or metric compares with),
/// else with their row numbers.
pub fn samples(info: &TrainInfo, raw: &Dataset, count: usize, spread: bool, look: &Look) -> Result<Grid, Failure> {
    let g = &info.graph;
    let fed: Vec<String> = info.feeds.iter().filter_map(|(_, r)| data_array(g, *r)).collect();
    // Integer rows flattened to a square are token ids, not pixels: only [N, H, W(, C)] integers are images.
    let per = |name: &str| match raw.arrays.get(name)? {
        Tensor::I(a) if a.ndim() < 3 => None,
        t => Some(shape(t).get(1..).unwrap_or(&[]).to_vec()),
    };
    let candidates = fed.iter().cloned().chain(raw.arrays.keys().cloned());
    let image = candidates.into_iter().find(|n| per(n).as_deref().and_then(image_shape).is_some());
    let Some(image) = image else {
        let mut shapes = String::new();
        for (k, t) in &raw.arrays {
            let _ = write!(shapes, " `{k}` {:?}", shape(t));
        }
        return Err(Failure::usage(format!(
            "train block `{}` has no image data (arrays:{shapes}); samples are drawn from [N, H, W], \
             [N, H, W, 1|3] or [N, H·W] arrays",
            info.name
        )));
    };
    let (h, w, c) = per(&image).as_deref().and_then(image_shape).expect("found above");
    let labels = label_array(info, raw);
    let n = raw.len();
    if count > n {
        eprintln!("note: the data has {n} rows; drawing all of them");
    }
    let count = count.min(n);
    // A bound before copying rows: the picture module would refuse the grid anyway.
    if count.saturating_mul(h * w) > MAX_PIXELS {
        return Err(Failure::usage(format!("{count} samples of {h}×{w} exceed {MAX_PIXELS} pixels; draw fewer")));
    }
    // The first rows, or rows evenly spaced over the source (a file sorted by class shows every class).
    let rows: Vec<usize> =
        if spread { (0..count).map(|i| i * n / count.max(1)).collect() } else { (0..count).collect() };
    let pick = |i: usize| -> Vec<f32> {
        match &raw.arrays[&image] {
            Tensor::F(a) => a.index_axis(Axis(0), i).iter().copied().collect(),
            Tensor::I(a) => a.index_axis(Axis(0), i).iter().map(|&v| v as f32).collect(),
        }
    };
    let tiles = rows
        .iter()
        .map(|&i| {
            let vals = pick(i);
            let label = labels.as_ref().and_then(|l| label_text(l, i)).unwrap_or_else(|| format!("#{i}"));
            match (c, look.colormap) {
                (1, Some(Colormap::Viridis)) => colour(h, w, vals, Colormap::Viridis).labelled(label),
                _ => Tile::new(h, w, c, vals).labelled(label),
            }
        })
        .collect();
    let title = format!("{image}: {count} of {n}");
    let scale = if look.colormap == Some(Colormap::Viridis) && c == 1 { Scale::Fixed(0.0, 1.0) } else { Scale::Shared };
    grid(tiles, look, 8, title, scale)
}

/// The block's class labels: a data array with one number per row that a loss or metric takes as its target.
fn label_array<'a>(info: &TrainInfo, raw: &'a Dataset) -> Option<&'a Tensor<f32>> {
    let g = &info.graph;
    let name = g.nodes.iter().find_map(|n| match &n.kind {
        NodeKind::Objective { target: Operand::Tensor(t), .. } => {
            let name = data_array(g, *t)?;
            (shape(raw.arrays.get(&name)?).len() == 1).then_some(name)
        }
        _ => None,
    })?;
    raw.arrays.get(&name)
}

/// Row `i`'s label as text.
fn label_text(labels: &Tensor<f32>, i: usize) -> Option<String> {
    match labels {
        Tensor::F(a) => a.get(i).map(|v| v.to_string()),
        Tensor::I(a) => a.get(i).map(|v| v.to_string()),
    }
}

/// Standalone SVGs one under the other, nested in one SVG.
pub fn stack_svgs(parts: &[Vec<u8>]) -> String {
    let (mut body, mut y, mut width) = (String::new(), 0usize, 0usize);
    for p in parts {
        let text = String::from_utf8_lossy(p);
        let attr = |name: &str| -> usize {
            let key = format!(" {name}=\"");
            text.find(&key).and_then(|at| text[at + key.len()..].split('"').next()?.parse().ok()).unwrap_or(0)
        };
        let (w, h) = (attr("width"), attr("height"));
        let _ = writeln!(body, "{}", text.replacen("<svg ", &format!("<svg x=\"0\" y=\"{y}\" "), 1));
        y += h + 16;
        width = width.max(w);
    }
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{y}\" viewBox=\"0 0 {width} {y}\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n{body}</svg>\n"
    )
}

/// RGB PNGs one under the other on white, 16 pixels apart.
pub fn stack_pngs(parts: &[Vec<u8>]) -> Result<Vec<u8>, String> {
    let mut images = Vec::new();
    for p in parts {
        let mut reader = png::Decoder::new(std::io::Cursor::new(p)).read_info().map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; reader.output_buffer_size().ok_or("PNG too large")?];
        let info = reader.next_frame(&mut buf).map_err(|e| e.to_string())?;
        buf.truncate(info.buffer_size());
        images.push((info.width as usize, info.height as usize, buf));
    }
    let width = images.iter().map(|i| i.0).max().unwrap_or(1);
    let height = images.iter().map(|i| i.1 + 16).sum::<usize>();
    if width.saturating_mul(height) > MAX_PIXELS {
        return Err(format!("a {width}×{height} picture is above the limit of {MAX_PIXELS} pixels; give --layer"));
    }
    let mut rgb = vec![255u8; width * height * 3];
    let mut top = 0;
    for (w, h, buf) in &images {
        for y in 0..*h {
            let dst = ((top + y) * width) * 3;
            rgb[dst..dst + w * 3].copy_from_slice(&buf[y * w * 3..(y + 1) * w * 3]);
        }
        top += h + 16;
    }
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, width as u32, height as u32);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header().map_err(|e| e.to_string())?;
    writer.write_image_data(&rgb).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    Ok(out)
}

fn shape(t: &Tensor<f32>) -> &[usize] {
    match t {
        Tensor::F(a) => a.shape(),
        Tensor::I(a) => a.shape(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viridis_matches_matplotlibs_table() {
        // matplotlib's `_viridis_data` at 0, 64, 128, 191 and 255 of its 256 entries.
        let table = [
            (0.0, [0.267004, 0.004874, 0.329415]),
            (64.0 / 255.0, [0.231674, 0.318106, 0.544834]),
            (128.0 / 255.0, [0.127568, 0.566949, 0.550556]),
            (191.0 / 255.0, [0.360741, 0.785964, 0.387814]),
            (1.0, [0.993248, 0.906157, 0.143936]),
        ];
        for (t, want) in table {
            let got = viridis(t as f32);
            for ch in 0..3 {
                assert!((got[ch] - want[ch]).abs() < 0.015, "viridis({t}) = {got:?}, want {want:?}");
            }
        }
    }

    #[test]
    fn a_constant_kernel_is_mid_grey_and_values_clip() {
        assert_eq!(standardise(&[0.3; 4]), vec![0.5; 4]);
        // mean 0, std 1: z + 0.5 clipped to [0, 1].
        assert_eq!(standardise(&[-1.0, 1.0]), vec![0.0, 1.0]);
    }
}
