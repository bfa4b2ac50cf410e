//! TensorBoard event files, so `tensorboard --logdir runs` shows nnc's runs as it shows Keras's and PyTorch's.
//!
//! Layout as Keras's `TensorBoard` callback writes it: a run directory holds `train/` and `validation/`, each
//! with one `events.out.tfevents.<seconds>.<host>` file; epoch scalars are `epoch_<quantity>` (`epoch_loss`,
//! `epoch_accuracy`) at step = epoch (0-based) in both, per-step losses `batch_loss` at the global step in
//! `train/`, and pictures (sample grids) are PNG image summaries.
//!
//! The format: a sequence of records `u64 length (LE) · u32 masked CRC-32C of the length · data · u32 masked
//! CRC-32C of the data` (TFRecord), each data an `Event` protocol buffer. The messages below are the fields of
//! TensorFlow's `event.proto` and `summary.proto` that nnc writes, with the same tags, encoded by `prost`
//! (hand-written derives: no protoc, no build script). The first event of a file is its version,
//! `brain.Event:2`. Records are appended and flushed after each epoch: readers take a file that grows.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use prost::Message;

/// `tensorflow.Event`: one record.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Event {
    /// Seconds since the Unix epoch.
    #[prost(double, tag = "1")]
    pub wall_time: f64,
    /// The global step the event belongs to.
    #[prost(int64, tag = "2")]
    pub step: i64,
    /// The file's version (first event only).
    #[prost(string, optional, tag = "3")]
    pub file_version: Option<String>,
    /// Values at this step.
    #[prost(message, optional, tag = "5")]
    pub summary: Option<Summary>,
}

/// `tensorflow.Summary`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Summary {
    /// The values.
    #[prost(message, repeated, tag = "1")]
    pub value: Vec<SummaryValue>,
}

/// `tensorflow.Summary.Value`: a scalar (`simple_value`) or an image.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SummaryValue {
    /// The series name.
    #[prost(string, tag = "1")]
    pub tag: String,
    /// A scalar.
    #[prost(float, optional, tag = "2")]
    pub simple_value: Option<f32>,
    /// An image.
    #[prost(message, optional, tag = "4")]
    pub image: Option<SummaryImage>,
}

/// `tensorflow.Summary.Image`: an encoded PNG with its size.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SummaryImage {
    /// Pixels high.
    #[prost(int32, tag = "1")]
    pub height: i32,
    /// Pixels wide.
    #[prost(int32, tag = "2")]
    pub width: i32,
    /// 1 grey, 3 RGB, 4 RGBA.
    #[prost(int32, tag = "3")]
    pub colorspace: i32,
    /// The PNG file's bytes.
    #[prost(bytes = "vec", tag = "4")]
    pub encoded_image_string: Vec<u8>,
}

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of TFRecord framing.
pub fn crc32c(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 { (c >> 1) ^ 0x82F6_3B78 } else { c >> 1 };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };
    !data.iter().fold(!0u32, |c, &b| TABLE[((c ^ b as u32) & 0xFF) as usize] ^ (c >> 8))
}

/// TFRecord's masked CRC: a CRC of data that holds CRCs is itself a poor checksum, so it is rotated and offset.
pub fn masked_crc(data: &[u8]) -> u32 {
    crc32c(data).rotate_right(15).wrapping_add(0xA282_EAD8)
}

/// One record's bytes: length, its masked CRC, the data, its masked CRC.
pub fn frame(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc(data).to_le_bytes());
    out
}

/// Why a file is not a sequence of well-formed records.
#[cfg(test)]
#[derive(Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The file ends inside a record.
    Truncated { at: usize },
    /// A checksum does not match (`what`: `length` or `data`).
    Checksum { at: usize, what: &'static str },
}

/// The records' data of a whole event file, every checksum verified.
#[cfg(test)]
fn unframe(mut bytes: &[u8]) -> Result<Vec<&[u8]>, FrameError> {
    let mut out = Vec::new();
    let mut at = 0;
    while !bytes.is_empty() {
        let truncated = FrameError::Truncated { at };
        let (len, rest) = bytes.split_first_chunk::<8>().ok_or(FrameError::Truncated { at })?;
        let (crc, rest) = rest.split_first_chunk::<4>().ok_or(FrameError::Truncated { at })?;
        if masked_crc(len) != u32::from_le_bytes(*crc) {
            return Err(FrameError::Checksum { at, what: "length" });
        }
        let n = usize::try_from(u64::from_le_bytes(*len)).map_err(|_| FrameError::Truncated { at })?;
        if rest.len() < n.saturating_add(4) {
            return Err(truncated);
        }
        let (data, rest) = rest.split_at(n);
        let (crc, rest) = rest.split_first_chunk::<4>().ok_or(FrameError::Truncated { at })?;
        if masked_crc(data) != u32::from_le_bytes(*crc) {
            return Err(FrameError::Checksum { at, what: "data" });
        }
        out.push(data);
        at += 16 + n;
        bytes = rest;
    }
    Ok(out)
}

/// An event file being appended to.
pub struct EventFile {
    path: PathBuf,
    file: File,
}

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// The host's name for the file name, as TensorFlow puts it there (letters, digits, `-`, `.` and `_` kept).
fn host() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::env::var("HOSTNAME"))
        .or_else(|_| std::env::var("COMPUTERNAME"))
        .unwrap_or_default();
    let clean: String = name.trim().chars().filter(|c| c.is_ascii_alphanumeric() || "-._".contains(*c)).collect();
    if clean.is_empty() { "localhost".into() } else { clean.chars().take(64).collect() }
}

impl EventFile {
    /// Creates `dir/events.out.tfevents.<seconds>.<host>` (never an existing file) with its version event.
    pub fn create(dir: &Path) -> std::io::Result<EventFile> {
        std::fs::create_dir_all(dir)?;
        let stamp = now() as u64;
        let host = host();
        // A second file in the same second (a resumed run) gets a suffix rather than appending to the first.
        let mut path = dir.join(format!("events.out.tfevents.{stamp}.{host}"));
        let mut k = 1;
        let file = loop {
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(f) => break f,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && k < 100 => {
                    path = dir.join(format!("events.out.tfevents.{stamp}.{host}.{k}"));
                    k += 1;
                }
                Err(e) => return Err(e),
            }
        };
        let mut f = EventFile { path, file };
        f.write(&Event { wall_time: now(), file_version: Some("brain.Event:2".into()), ..Event::default() })?;
        f.flush()?;
        Ok(f)
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write(&mut self, e: &Event) -> std::io::Result<()> {
        self.file.write_all(&frame(&e.encode_to_vec()))
    }

    /// Scalars at `step`, one event.
    pub fn scalars(&mut self, step: i64, values: &[(String, f64)]) -> std::io::Result<()> {
        let value = values
            .iter()
            .map(|(tag, v)| SummaryValue { tag: tag.clone(), simple_value: Some(*v as f32), image: None })
            .collect();
        self.write(&Event { wall_time: now(), step, summary: Some(Summary { value }), ..Event::default() })
    }

    /// A PNG image at `step`.
    pub fn image(
        &mut self,
        step: i64,
        tag: &str,
        png: &[u8],
        size: (usize, usize),
        channels: usize,
    ) -> std::io::Result<()> {
        let image = SummaryImage {
            height: i32::try_from(size.0).unwrap_or(i32::MAX),
            width: i32::try_from(size.1).unwrap_or(i32::MAX),
            colorspace: channels as i32,
            encoded_image_string: png.to_vec(),
        };
        let value = vec![SummaryValue { tag: tag.to_string(), simple_value: None, image: Some(image) }];
        self.write(&Event { wall_time: now(), step, summary: Some(Summary { value }), ..Event::default() })
    }

    /// Makes what was written visible to a reader.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// A run's two writers, as Keras lays them out: `train/` and `validation/`.
pub struct Board {
    pub train: EventFile,
    pub validation: Option<EventFile>,
}

impl Board {
    /// The writers under `run_dir`; `validation/` only for a run that validates.
    pub fn create(run_dir: &Path, validating: bool) -> std::io::Result<Board> {
        let train = EventFile::create(&run_dir.join("train"))?;
        let validation = if validating { Some(EventFile::create(&run_dir.join("validation"))?) } else { None };
        Ok(Board { train, validation })
    }

    /// A training step's loss (`batch_loss` at the global step).
    pub fn step(&mut self, global_step: usize, loss: f64) -> std::io::Result<()> {
        self.train.scalars(global_step as i64, &[("batch_loss".into(), loss)])
    }

    /// An epoch's record: `epoch_<name>` of the training values in `train/`, of the validation values in
    /// `validation/`, then both flushed.
    pub fn epoch(&mut self, r: &nnc_runtime::train::EpochRecord) -> std::io::Result<()> {
        let step = r.epoch as i64;
        let mut train = vec![("epoch_loss".to_string(), r.loss)];
        train.extend(r.metrics.iter().map(|(n, v)| (format!("epoch_{n}"), *v)));
        self.train.scalars(step, &train)?;
        self.train.flush()?;
        if let Some(v) = &mut self.validation {
            let mut val: Vec<(String, f64)> = r.val_loss.map(|l| ("epoch_loss".to_string(), l)).into_iter().collect();
            val.extend(r.val_metrics.iter().map(|(n, v)| (format!("epoch_{n}"), *v)));
            if !val.is_empty() {
                v.scalars(step, &val)?;
            }
            v.flush()?;
        }
        Ok(())
    }
}

/// The run's event files, or none after the first failure to write them (warned once): TensorBoard's files
/// are a view of the run, never a reason to stop it.
pub struct Writer {
    board: Option<Board>,
}

impl Writer {
    /// Opens the writers under `run_dir` (`Writer::off()` when that fails, with a warning).
    pub fn open(run_dir: &Path, validating: bool) -> Writer {
        match Board::create(run_dir, validating) {
            Ok(board) => Writer { board: Some(board) },
            Err(e) => {
                eprintln!("warning: no TensorBoard events: {}: {e}", run_dir.display());
                Writer::off()
            }
        }
    }

    /// A writer that writes nothing.
    pub fn off() -> Writer {
        Writer { board: None }
    }

    fn with(&mut self, f: impl FnOnce(&mut Board) -> std::io::Result<()>) {
        if let Some(b) = &mut self.board
            && let Err(e) = f(b)
        {
            eprintln!("warning: TensorBoard events stopped: {}: {e}", b.train.path().display());
            self.board = None;
        }
    }

    /// See [`Board::step`].
    pub fn step(&mut self, global_step: usize, loss: f64) {
        self.with(|b| b.step(global_step, loss));
    }

    /// One training scalar `tag` at `global_step` (`train/`).
    pub fn scalar(&mut self, global_step: usize, tag: &str, value: f64) {
        self.with(|b| b.train.scalars(global_step as i64, &[(tag.to_string(), value)]));
    }

    /// See [`Board::epoch`].
    pub fn epoch(&mut self, r: &nnc_runtime::train::EpochRecord) {
        self.with(|b| b.epoch(r));
    }

    /// A PNG image in `train/` or `validation/` (when the run validates) at `step`, flushed.
    pub fn image(
        &mut self,
        validation: bool,
        step: usize,
        tag: &str,
        png: &[u8],
        size: (usize, usize),
        channels: usize,
    ) {
        self.with(|b| {
            let f = match (&mut b.validation, validation) {
                (Some(v), true) => v,
                _ => &mut b.train,
            };
            f.image(step as i64, tag, png, size, channels)?;
            f.flush()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_of_the_standard_check_string() {
        // The check value of CRC-32C (RFC 3720, B.4; "123456789").
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
        // RFC 3720 B.4: 32 bytes of zeros.
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
    }

    #[test]
    fn frames_read_back_and_a_flipped_bit_is_caught() {
        let e = Event { wall_time: 1.5, step: 3, file_version: Some("brain.Event:2".into()), summary: None };
        let mut bytes = frame(&e.encode_to_vec());
        bytes.extend(frame(b"second"));
        let records = unframe(&bytes).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(Event::decode(records[0]).unwrap(), e);
        assert_eq!(records[1], b"second");
        let mut bad = bytes.clone();
        bad[14] ^= 1;
        assert_eq!(unframe(&bad), Err(FrameError::Checksum { at: 0, what: "data" }));
        bad = bytes.clone();
        bad[0] ^= 1;
        assert_eq!(unframe(&bad), Err(FrameError::Checksum { at: 0, what: "length" }));
        assert!(matches!(unframe(&bytes[..bytes.len() - 1]), Err(FrameError::Truncated { .. })));
    }
}
