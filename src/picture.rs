//! Image grids: data samples, reconstructions, generated samples, conv filters and feature maps as one
//! picture — a PNG (pixels only: no fonts on a fresh machine) or an SVG whose tiles are inline PNGs and whose
//! labels are SVG `<text>` the viewer renders. `report.html`, `nnc show` and the TensorBoard images all draw
//! through here, so every picture normalises and lays out tiles the same way.

use std::fmt::{self, Write as _};

use base64::Engine as _;

/// One image: `height × width × channels` values in row-major HWC order, `channels` 1 (grey) or 3 (RGB).
#[derive(Clone, Debug)]
pub struct Tile {
    pub height: usize,
    pub width: usize,
    pub channels: usize,
    pub pixels: Vec<f32>,
    /// Drawn under the tile in SVG (PNG has no text).
    pub label: Option<String>,
    /// A red frame (a misclassified sample, say).
    pub mark: bool,
}

impl Tile {
    /// A tile without label or mark.
    pub fn new(height: usize, width: usize, channels: usize, pixels: Vec<f32>) -> Tile {
        Tile { height, width, channels, pixels, label: None, mark: false }
    }

    /// The same tile with a label.
    pub fn labelled(self, label: impl Into<String>) -> Tile {
        Tile { label: Some(label.into()), ..self }
    }

    fn check(&self, index: usize) -> Result<(), PictureError> {
        let expected = self.height.checked_mul(self.width).and_then(|p| p.checked_mul(self.channels));
        let shape_ok = matches!(self.channels, 1 | 3) && self.height > 0 && self.width > 0;
        if !shape_ok || expected != Some(self.pixels.len()) {
            return Err(PictureError::BadTile {
                index,
                height: self.height,
                width: self.width,
                channels: self.channels,
                values: self.pixels.len(),
            });
        }
        Ok(())
    }

    /// The finite minimum and maximum of the tile's values (`None` when none is finite).
    fn range(&self) -> Option<(f32, f32)> {
        let finite = self.pixels.iter().copied().filter(|v| v.is_finite());
        finite.fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
    }
}

/// How values become grey levels: `lo` → black, `hi` → white, linearly, clamped.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scale {
    /// Each tile from its own minimum to its own maximum (filters, feature maps: each kernel normalised).
    PerTile,
    /// One range over every tile (samples that should stay comparable).
    Shared,
    /// A fixed range, e.g. `Fixed(0.0, 1.0)` for pixels already scaled, `Fixed(-1.0, 1.0)` for tanh outputs.
    Fixed(f32, f32),
}

/// Tiles in rows of `columns`, each enlarged `zoom` times (nearest neighbour, so pixels stay visible).
#[derive(Clone, Debug)]
pub struct Grid {
    pub tiles: Vec<Tile>,
    pub columns: usize,
    pub scale: Scale,
    pub zoom: usize,
    /// Drawn above the grid in SVG.
    pub title: Option<String>,
}

/// Why a grid cannot be drawn.
#[derive(Clone, Debug, PartialEq)]
pub enum PictureError {
    /// A grid without tiles.
    Empty,
    /// A tile whose values do not fill its shape, or with other than 1 or 3 channels.
    BadTile { index: usize, height: usize, width: usize, channels: usize, values: usize },
    /// The picture would exceed [`MAX_PIXELS`].
    TooLarge { width: usize, height: usize },
    /// The PNG encoder failed (it writes to memory, so this is not expected).
    Encode(String),
}

impl fmt::Display for PictureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PictureError::Empty => write!(f, "nothing to draw: the grid has no tiles"),
            PictureError::BadTile { index, height, width, channels, values } => write!(
                f,
                "tile {index} is {height}×{width}×{channels} but holds {values} values \
                 (a tile needs 1 or 3 channels and height × width × channels values)"
            ),
            PictureError::TooLarge { width, height } => {
                write!(f, "a {width}×{height} picture is above the limit of {MAX_PIXELS} pixels; draw fewer tiles")
            }
            PictureError::Encode(e) => write!(f, "PNG encoding failed: {e}"),
        }
    }
}

impl std::error::Error for PictureError {}

/// The largest picture drawn (64 Mpixel, 192 MB of RGB): a bound on memory, whatever a data file claims.
pub const MAX_PIXELS: usize = 1 << 26;

/// Pixels between tiles (and around the grid); the mark is drawn in this gap.
const GAP: usize = 2;
const BACKGROUND: [u8; 3] = [255, 255, 255];
const MARK: [u8; 3] = [220, 30, 30];

impl Grid {
    /// A grid of `tiles` in rows of `columns`, zoom 1, normalised per tile, without title.
    pub fn new(tiles: Vec<Tile>, columns: usize) -> Grid {
        Grid { tiles, columns, scale: Scale::PerTile, zoom: 1, title: None }
    }

    /// Rows and columns actually used.
    fn shape(&self) -> (usize, usize) {
        let columns = self.columns.clamp(1, self.tiles.len().max(1));
        (self.tiles.len().div_ceil(columns), columns)
    }

    /// The size of one cell before the gap: the largest tile, enlarged.
    fn cell(&self) -> (usize, usize) {
        let zoom = self.zoom.max(1);
        let height = self.tiles.iter().map(|t| t.height).max().unwrap_or(0);
        let width = self.tiles.iter().map(|t| t.width).max().unwrap_or(0);
        (height.saturating_mul(zoom), width.saturating_mul(zoom))
    }

    fn validate(&self) -> Result<(), PictureError> {
        if self.tiles.is_empty() {
            return Err(PictureError::Empty);
        }
        for (i, tile) in self.tiles.iter().enumerate() {
            tile.check(i)?;
        }
        let (rows, columns) = self.shape();
        let (cell_h, cell_w) = self.cell();
        let size = |cells: usize, cell: usize| cells.checked_mul(cell.saturating_add(GAP))?.checked_add(GAP);
        let (Some(width), Some(height)) = (size(columns, cell_w), size(rows, cell_h)) else {
            return Err(PictureError::TooLarge { width: usize::MAX, height: usize::MAX });
        };
        if width.checked_mul(height).is_none_or(|p| p > MAX_PIXELS) {
            return Err(PictureError::TooLarge { width, height });
        }
        Ok(())
    }

    /// The `(lo, hi)` each tile is drawn with.
    fn ranges(&self) -> Vec<(f32, f32)> {
        let shared = || {
            self.tiles
                .iter()
                .filter_map(Tile::range)
                .reduce(|(a, b), (c, d)| (a.min(c), b.max(d)))
                .unwrap_or((0.0, 1.0))
        };
        match self.scale {
            Scale::PerTile => self.tiles.iter().map(|t| t.range().unwrap_or((0.0, 1.0))).collect(),
            Scale::Shared => vec![shared(); self.tiles.len()],
            Scale::Fixed(lo, hi) => vec![(lo, hi); self.tiles.len()],
        }
    }

    /// The whole grid as one RGB PNG: tiles on a white background with a gap between them, marked tiles framed red.
    pub fn to_png(&self) -> Result<Vec<u8>, PictureError> {
        self.validate()?;
        let (rows, columns) = self.shape();
        let (cell_h, cell_w) = self.cell();
        let width = columns * (cell_w + GAP) + GAP;
        let height = rows * (cell_h + GAP) + GAP;
        let mut rgb = vec![0u8; width * height * 3];
        for px in rgb.chunks_exact_mut(3) {
            px.copy_from_slice(&BACKGROUND);
        }
        let zoom = self.zoom.max(1);
        for (i, (tile, range)) in self.tiles.iter().zip(self.ranges()).enumerate() {
            let top = GAP + (i / columns) * (cell_h + GAP);
            let left = GAP + (i % columns) * (cell_w + GAP);
            if tile.mark {
                frame(&mut rgb, width, (top - 1, left - 1), (cell_h + 2, cell_w + 2));
            }
            for y in 0..tile.height * zoom {
                for x in 0..tile.width * zoom {
                    let colour = tile_colour(tile, y / zoom, x / zoom, range);
                    let at = ((top + y) * width + left + x) * 3;
                    rgb[at..at + 3].copy_from_slice(&colour);
                }
            }
        }
        encode_png(&rgb, width, height)
    }

    /// The grid as a standalone SVG: each tile an inline PNG drawn pixelated at `zoom`, its label below it,
    /// marked tiles framed red, the title above.
    pub fn to_svg(&self) -> Result<String, PictureError> {
        self.validate()?;
        let (rows, columns) = self.shape();
        let (cell_h, cell_w) = self.cell();
        let labelled = self.tiles.iter().any(|t| t.label.is_some());
        let label_h = if labelled { 14 } else { 0 };
        let title_h = if self.title.is_some() { 20 } else { 0 };
        let (pitch_x, pitch_y) = (cell_w + 2 * GAP, cell_h + label_h + 2 * GAP);
        let width = columns * pitch_x + GAP;
        let height = title_h + rows * pitch_y + GAP;
        let mut svg = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
             viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" font-size=\"11\">\n"
        );
        if let Some(title) = &self.title {
            let _ = writeln!(svg, "<text x=\"{GAP}\" y=\"14\" font-size=\"13\">{}</text>", escape(title));
        }
        let zoom = self.zoom.max(1);
        for (i, (tile, range)) in self.tiles.iter().zip(self.ranges()).enumerate() {
            let x = GAP + (i % columns) * pitch_x;
            let y = title_h + GAP + (i / columns) * pitch_y;
            let png = tile_png(tile, range)?;
            let data = base64::engine::general_purpose::STANDARD.encode(png);
            let (w, h) = (tile.width * zoom, tile.height * zoom);
            let _ = write!(
                svg,
                "<image x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{h}\" style=\"image-rendering:pixelated\" \
                 href=\"data:image/png;base64,{data}\"/>"
            );
            if tile.mark {
                let _ = write!(
                    svg,
                    "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#dc1e1e\" \
                     stroke-width=\"2\"/>",
                    x - 1,
                    y - 1,
                    w + 2,
                    h + 2
                );
            }
            if let Some(label) = &tile.label {
                let fill = if tile.mark { "#dc1e1e" } else { "#222" };
                let _ = write!(svg, "<text x=\"{x}\" y=\"{}\" fill=\"{fill}\">{}</text>", y + h + 12, escape(label));
            }
            svg.push('\n');
        }
        svg.push_str("</svg>\n");
        Ok(svg)
    }
}

/// One pixel of a tile as RGB, its values mapped from `range` to 0–255 (non-finite values draw black).
fn tile_colour(tile: &Tile, y: usize, x: usize, (lo, hi): (f32, f32)) -> [u8; 3] {
    let at = (y * tile.width + x) * tile.channels;
    let level = |v: f32| {
        if !v.is_finite() {
            return 0;
        }
        let span = hi - lo;
        let t = if span > 0.0 && span.is_finite() { (v - lo) / span } else { 0.5 };
        // A range of ±∞ or NaN (a `Fixed` one given so) still draws something rather than dividing by it.
        if t.is_finite() { (t.clamp(0.0, 1.0) * 255.0).round() as u8 } else { 0 }
    };
    match tile.channels {
        3 => [level(tile.pixels[at]), level(tile.pixels[at + 1]), level(tile.pixels[at + 2])],
        _ => [level(tile.pixels[at]); 3],
    }
}

/// A red rectangle outline `size` big at `corner` (top, left) in an RGB buffer `width` pixels wide.
fn frame(rgb: &mut [u8], width: usize, (top, left): (usize, usize), (height, frame_w): (usize, usize)) {
    let mut paint = |y: usize, x: usize| {
        let at = (y * width + x) * 3;
        rgb[at..at + 3].copy_from_slice(&MARK);
    };
    for x in left..left + frame_w {
        paint(top, x);
        paint(top + height - 1, x);
    }
    for y in top..top + height {
        paint(y, left);
        paint(y, left + frame_w - 1);
    }
}

/// One tile alone as a PNG at its own size (the SVG enlarges it).
fn tile_png(tile: &Tile, range: (f32, f32)) -> Result<Vec<u8>, PictureError> {
    let mut rgb = Vec::with_capacity(tile.height * tile.width * 3);
    for y in 0..tile.height {
        for x in 0..tile.width {
            rgb.extend_from_slice(&tile_colour(tile, y, x, range));
        }
    }
    encode_png(&rgb, tile.width, tile.height)
}

fn encode_png(rgb: &[u8], width: usize, height: usize) -> Result<Vec<u8>, PictureError> {
    let too_large = || PictureError::TooLarge { width, height };
    let (w, h) = (u32::try_from(width).map_err(|_| too_large())?, u32::try_from(height).map_err(|_| too_large())?);
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| PictureError::Encode(e.to_string()))?;
    writer.write_image_data(rgb).map_err(|e| PictureError::Encode(e.to_string()))?;
    writer.finish().map_err(|e| PictureError::Encode(e.to_string()))?;
    Ok(out)
}

/// Text for SVG/HTML: `&`, `<`, `>` and quotes escaped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(png_bytes: &[u8]) -> (usize, usize, Vec<u8>) {
        let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        buf.truncate(info.buffer_size());
        (info.width as usize, info.height as usize, buf)
    }

    fn pixel(rgb: &[u8], width: usize, y: usize, x: usize) -> [u8; 3] {
        let at = (y * width + x) * 3;
        [rgb[at], rgb[at + 1], rgb[at + 2]]
    }

    #[test]
    fn per_tile_scale_maps_each_tiles_minimum_to_black_and_maximum_to_white() {
        let a = Tile::new(1, 2, 1, vec![-3.0, 5.0]);
        let b = Tile::new(1, 2, 1, vec![10.0, 10.5]);
        let (w, h, rgb) = decode(&Grid::new(vec![a, b], 2).to_png().unwrap());
        assert_eq!((w, h), (2 * (2 + GAP) + GAP, 1 + 2 * GAP));
        assert_eq!(pixel(&rgb, w, GAP, GAP), [0; 3]);
        assert_eq!(pixel(&rgb, w, GAP, GAP + 1), [255; 3]);
        let second = GAP + 2 + GAP;
        assert_eq!(pixel(&rgb, w, GAP, second), [0; 3]);
        assert_eq!(pixel(&rgb, w, GAP, second + 1), [255; 3]);
        assert_eq!(pixel(&rgb, w, 0, 0), BACKGROUND);
    }

    #[test]
    fn shared_and_fixed_scales_keep_tiles_comparable() {
        let tiles = vec![Tile::new(1, 1, 1, vec![0.0]), Tile::new(1, 1, 1, vec![2.0])];
        let mut grid = Grid::new(tiles, 2);
        grid.scale = Scale::Shared;
        let (w, _, rgb) = decode(&grid.to_png().unwrap());
        assert_eq!(pixel(&rgb, w, GAP, GAP), [0; 3]);
        assert_eq!(pixel(&rgb, w, GAP, GAP + 1 + GAP), [255; 3]);
        grid.scale = Scale::Fixed(0.0, 4.0);
        let (w, _, rgb) = decode(&grid.to_png().unwrap());
        assert_eq!(pixel(&rgb, w, GAP, GAP + 1 + GAP), [128; 3]);
    }

    #[test]
    fn rgb_tiles_zoom_and_marks() {
        let mut tile = Tile::new(1, 1, 3, vec![1.0, 0.0, 0.5]);
        tile.mark = true;
        let mut grid = Grid::new(vec![tile], 1);
        grid.scale = Scale::Fixed(0.0, 1.0);
        grid.zoom = 3;
        let (w, h, rgb) = decode(&grid.to_png().unwrap());
        assert_eq!((w, h), (3 + 2 * GAP, 3 + 2 * GAP));
        for (y, x) in [(GAP, GAP), (GAP + 2, GAP + 2)] {
            assert_eq!(pixel(&rgb, w, y, x), [255, 0, 128]);
        }
        assert_eq!(pixel(&rgb, w, GAP - 1, GAP - 1), MARK);
        assert_eq!(pixel(&rgb, w, GAP + 3, GAP + 3), MARK);
    }

    #[test]
    fn constant_and_non_finite_tiles_draw_without_dividing_by_zero() {
        let grid = Grid::new(vec![Tile::new(1, 3, 1, vec![7.0, f32::NAN, f32::INFINITY])], 1);
        let (w, _, rgb) = decode(&grid.to_png().unwrap());
        assert_eq!(pixel(&rgb, w, GAP, GAP), [128; 3]);
        assert_eq!(pixel(&rgb, w, GAP, GAP + 1), [0; 3]);
    }

    #[test]
    fn bad_grids_are_errors_not_panics() {
        assert_eq!(Grid::new(vec![], 4).to_png(), Err(PictureError::Empty));
        let short = Tile::new(2, 2, 1, vec![0.0; 3]);
        assert!(matches!(Grid::new(vec![short], 1).to_png(), Err(PictureError::BadTile { index: 0, .. })));
        let two_channels = Tile::new(1, 1, 2, vec![0.0; 2]);
        assert!(matches!(Grid::new(vec![two_channels], 1).to_svg(), Err(PictureError::BadTile { .. })));
        let overflow = Tile { height: usize::MAX, width: 2, channels: 1, pixels: vec![], label: None, mark: false };
        assert!(matches!(Grid::new(vec![overflow], 1).to_png(), Err(PictureError::BadTile { .. })));
        let mut huge = Grid::new(vec![Tile::new(1, 1, 1, vec![0.0])], 1);
        huge.zoom = 1 << 20;
        assert!(matches!(huge.to_png(), Err(PictureError::TooLarge { .. })));
    }

    #[test]
    fn svg_holds_every_tile_its_label_escaped_and_the_title() {
        let tiles = vec![Tile::new(2, 2, 1, vec![0.0, 1.0, 2.0, 3.0]).labelled("7 <> 1"); 5];
        let mut grid = Grid::new(tiles, 3);
        grid.title = Some("epoch 1 & 2".into());
        let svg = grid.to_svg().unwrap();
        assert_eq!(svg.matches("<image ").count(), 5);
        assert_eq!(svg.matches("7 &lt;&gt; 1").count(), 5);
        assert!(svg.contains("epoch 1 &amp; 2"));
        assert!(svg.contains("data:image/png;base64,iVBOR"), "inline PNGs start with the PNG signature");
    }
}
