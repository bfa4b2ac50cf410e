//! JSON-RPC framing over a byte stream (`Content-Length` headers).
//!
//! `lsp-server`'s own stdio transport stops reading at the first malformed
//! message and would allocate whatever `Content-Length` claims; an editor
//! (or a fuzzer) sending one bad frame must not end the session. This reader
//! caps message sizes and, after any frame it could not use (bad or missing
//! `Content-Length`, a body that is not JSON), resynchronises by scanning for
//! the next `Content-Length` header — never buffering more than a header
//! line. It hands the server requests (with their ids exactly as sent),
//! notifications, or a description of what was wrong, so the server can
//! answer with a JSON-RPC error and keep serving.

use std::io::{self, BufRead, Read, Write};
use std::sync::mpsc;

use lsp_server::{ErrorCode, Message, Notification};
use serde::Serialize;
use serde_json::Value as Json;
use serde_json::value::RawValue;

/// Larger messages are refused: a 50,000-line file is ~2 MB.
pub const MAX_MESSAGE: usize = 256 << 20;

/// Header lines are short; a line without a newline for this long is garbage.
const MAX_HEADER_LINE: u64 = 64 << 10;

/// The header every frame starts with, lower case (headers are case-insensitive).
const CONTENT_LENGTH: &[u8] = b"content-length";

/// A request id as the client wrote it: a JSON string or an integer literal
/// of any length. Kept as raw text, so the answer echoes it byte for byte
/// (`2^64` must not come back as `1.8446744073709552e19`).
#[derive(Debug, Clone)]
pub struct Id(Box<RawValue>);

impl Id {
    /// The id's JSON text, if `raw` is one JSON-RPC allows (a string or an
    /// integer: no fraction, exponent, `null`, boolean, array or object).
    pub(crate) fn parse(raw: &RawValue) -> Option<Id> {
        let text = raw.get().trim();
        let digits = text.strip_prefix('-').unwrap_or(text);
        let integer = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
        let ok = integer || text.starts_with('"');
        ok.then(|| RawValue::from_string(text.to_string()).ok()).flatten().map(Id)
    }

    #[cfg(test)] // only tests print ids
    pub fn as_str(&self) -> &str {
        self.0.get()
    }
}

/// What the reader saw.
#[derive(Debug)]
pub enum Incoming {
    Request {
        id: Id,
        method: String,
        params: Json,
    },
    Notification(Notification),
    /// An answer to a request (the server sends none, so these are dropped).
    Response,
    /// A frame that was not a valid JSON-RPC message: the id when a valid one
    /// could be read (the answer must carry it, else it carries `null`), the
    /// JSON-RPC error code and what was wrong.
    Malformed {
        id: Option<Id>,
        code: ErrorCode,
        error: String,
    },
}

impl Incoming {
    fn malformed(id: Option<Id>, code: ErrorCode, error: impl Into<String>) -> Incoming {
        Incoming::Malformed { id, code, error: error.into() }
    }

    fn is_exit(&self) -> bool {
        matches!(self, Incoming::Notification(n) if n.method == "exit")
    }
}

/// Reads frames from `input` on a thread of its own until end of input;
/// the channel closes then.
pub fn spawn_reader(input: impl BufRead + Send + 'static) -> mpsc::Receiver<Incoming> {
    let (tx, rx) = mpsc::channel();
    let spawned = std::thread::Builder::new().name("lsp-reader".into()).spawn(move || {
        let mut reader = FrameReader::new(input);
        // End of input or a read error ends the session: the channel closes.
        while let Ok(Some(incoming)) = reader.next_frame() {
            let is_exit = incoming.is_exit();
            if tx.send(incoming).is_err() || is_exit {
                break;
            }
        }
    });
    if let Err(e) = spawned {
        // Without a reader there is no session: the closed channel says so.
        eprintln!("nnc lsp: cannot start the reader thread: {e}");
    }
    rx
}

struct FrameReader<R> {
    input: R,
    /// Bytes given back to the stream: the tail of a header line, from a
    /// `Content-Length` that started in its middle (after a too-short body).
    pushback: io::Cursor<Vec<u8>>,
    /// The last frame was unusable: skip to the next `Content-Length` first.
    resync: bool,
}

/// The outcome of reading one frame's headers.
enum Headers {
    Length(usize),
    Bad(String),
    Eof,
}

impl<R: BufRead> FrameReader<R> {
    fn new(input: R) -> FrameReader<R> {
        FrameReader { input, pushback: io::Cursor::new(Vec::new()), resync: false }
    }

    /// The pushed-back bytes, then the input.
    fn stream(&mut self) -> impl BufRead + '_ {
        (&mut self.pushback).chain(&mut self.input)
    }

    /// The next frame; `None` at end of input.
    fn next_frame(&mut self) -> io::Result<Option<Incoming>> {
        let mut first = Vec::new();
        if std::mem::take(&mut self.resync) {
            if !self.skip_to_content_length()? {
                return Ok(None);
            }
            first.extend_from_slice(b"Content-Length");
        }
        let length = match self.read_headers(first)? {
            Headers::Length(n) => n,
            Headers::Bad(error) => {
                self.resync = true;
                return Ok(Some(Incoming::malformed(None, ErrorCode::ParseError, error)));
            }
            Headers::Eof => return Ok(None),
        };
        let mut body = Vec::new();
        let read = self.stream().take(length as u64).read_to_end(&mut body)?;
        if read < length {
            return Ok(None); // the input ended inside the body
        }
        let incoming = decode(&body);
        // A body that is not JSON usually means its length was wrong: too
        // short, and its rest is in the stream before the next header; too
        // long, and the next header is inside it. Scan both.
        if matches!(&incoming, Incoming::Malformed { code: ErrorCode::ParseError, .. }) {
            self.give_back(body);
            self.resync = true;
        }
        Ok(Some(incoming))
    }

    /// Puts `bytes` back in front of the stream (before what is still pushed back).
    fn give_back(&mut self, mut bytes: Vec<u8>) {
        let at = usize::try_from(self.pushback.position()).unwrap_or(usize::MAX);
        bytes.extend_from_slice(self.pushback.get_ref().get(at..).unwrap_or_default());
        self.pushback = io::Cursor::new(bytes);
    }

    /// Consumes bytes up to and including the next `Content-Length`
    /// (case-insensitive); false at end of input. Buffers nothing.
    fn skip_to_content_length(&mut self) -> io::Result<bool> {
        let mut matched = 0;
        loop {
            let mut stream = self.stream();
            let buf = stream.fill_buf()?;
            if buf.is_empty() {
                return Ok(false);
            }
            let mut used = 0;
            let mut found = false;
            for &b in buf {
                used += 1;
                let b = b.to_ascii_lowercase();
                // The needle has no prefix that is also a suffix, so a
                // mismatch restarts at its first byte.
                matched = if b == CONTENT_LENGTH[matched] { matched + 1 } else { usize::from(b == CONTENT_LENGTH[0]) };
                if matched == CONTENT_LENGTH.len() {
                    found = true;
                    break;
                }
            }
            stream.consume(used);
            if found {
                return Ok(true);
            }
        }
    }

    /// Reads header lines up to the blank line; `first` is the start of the
    /// first line when resynchronising consumed it.
    fn read_headers(&mut self, first: Vec<u8>) -> io::Result<Headers> {
        let mut length: Option<usize> = None;
        let mut problem: Option<String> = None;
        let mut saw_header = false;
        let mut line = first;
        loop {
            let n = self.stream().take(MAX_HEADER_LINE).read_until(b'\n', &mut line)?;
            if n == 0 && line.is_empty() {
                return Ok(if saw_header { Headers::Bad("end of input inside headers".into()) } else { Headers::Eof });
            }
            let complete = line.ends_with(b"\n");
            let text = String::from_utf8_lossy(&line).trim_end_matches(['\r', '\n']).to_string();
            line.clear();
            if text.is_empty() {
                if saw_header {
                    break;
                }
                continue; // stray blank lines between frames
            }
            saw_header = true;
            // A header that starts inside this line (after the rest of a
            // too-short body) begins the next frame: give it back.
            if let Some(at) = find_content_length(&text).filter(|&at| at > 0) {
                let mut tail = text.as_bytes()[at..].to_vec();
                if complete {
                    tail.extend_from_slice(b"\r\n");
                }
                self.give_back(tail);
                return Ok(Headers::Bad(format!("malformed header line `{}`", truncate(&text[..at], 80))));
            }
            if !complete {
                return Ok(Headers::Bad(format!("header line `{}…` is too long", truncate(&text, 80))));
            }
            match text.split_once(':') {
                Some((name, value)) if name.trim().eq_ignore_ascii_case("content-length") => {
                    match value.trim().parse::<usize>() {
                        Ok(v) if v > MAX_MESSAGE => {
                            problem = Some(format!("message of {v} bytes exceeds the limit of {MAX_MESSAGE}"))
                        }
                        Ok(v) => length = Some(v),
                        Err(_) => problem = Some(format!("invalid Content-Length `{}`", truncate(value.trim(), 80))),
                    }
                }
                Some((name, _)) if is_token(name) => {} // Content-Type and the like
                _ => problem = Some(format!("malformed header line `{}`", truncate(&text, 80))),
            }
        }
        Ok(match (problem, length) {
            (Some(p), _) => Headers::Bad(p),
            (None, None) => Headers::Bad("missing Content-Length header".into()),
            (None, Some(n)) => Headers::Length(n),
        })
    }
}

/// Where `content-length` (any case) starts in `text`.
fn find_content_length(text: &str) -> Option<usize> {
    text.as_bytes().windows(CONTENT_LENGTH.len()).position(|w| w.eq_ignore_ascii_case(CONTENT_LENGTH))
}

/// An HTTP header name (RFC 9110 token).
fn is_token(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// Only the id, as raw text (the rest is read from the `Json` value).
#[derive(serde::Deserialize)]
struct RawId<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
}

/// JSON → a request, notification or response, or what was wrong with it
/// (JSON-RPC 2.0 §5.1: `-32700` for text that is not JSON, `-32600` for JSON
/// that is not a valid message; `id: null` unless a valid id was read).
fn decode(body: &[u8]) -> Incoming {
    let value: Json = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return Incoming::malformed(None, ErrorCode::ParseError, format!("parse error: {e}")),
    };
    let Json::Object(mut object) = value else {
        return Incoming::malformed(None, ErrorCode::InvalidRequest, "a JSON-RPC message must be an object");
    };
    let method = object.remove("method");
    let params = object.remove("params").unwrap_or(Json::Null);
    let Some(raw_id) = object.get("id").map(|_| serde_json::from_slice::<RawId>(body)) else {
        // No id: a notification.
        return match method {
            Some(Json::String(method)) => Incoming::Notification(Notification { method, params }),
            _ if object.contains_key("result") || object.contains_key("error") => Incoming::Response,
            _ => Incoming::malformed(None, ErrorCode::InvalidRequest, "a message without an id needs a `method`"),
        };
    };
    // `"id": null` deserialises as `None`: invalid for a request.
    let id = match raw_id {
        Ok(RawId { id: Some(raw) }) => Id::parse(raw),
        _ => None,
    };
    match (method, id) {
        (Some(Json::String(method)), Some(id)) => Incoming::Request { id, method, params },
        (None, _) if object.contains_key("result") || object.contains_key("error") => Incoming::Response,
        (Some(Json::String(_)), None) => Incoming::malformed(
            None,
            ErrorCode::InvalidRequest,
            format!(
                "invalid request id `{}`: it must be a string or an integer",
                truncate(&object["id"].to_string(), 80)
            ),
        ),
        (_, id) => Incoming::malformed(id, ErrorCode::InvalidRequest, "a request needs a string `method`"),
    }
}

/// Writes one message; errors mean the client is gone.
pub fn write(out: &mut impl Write, msg: &Message) -> io::Result<()> {
    msg.write(out)
}

#[derive(Serialize)]
struct ErrorObject<'a> {
    code: i32,
    message: &'a str,
}

/// A response, with the id written exactly as the request had it.
#[derive(Serialize)]
struct Reply<'a> {
    jsonrpc: &'static str,
    /// `None` is written as `null`: the id of an answer to an unreadable request.
    id: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'a Json>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorObject<'a>>,
}

fn write_reply(out: &mut impl Write, reply: &Reply) -> io::Result<()> {
    let body = serde_json::to_string(reply).map_err(io::Error::other)?;
    write!(out, "Content-Length: {}\r\n\r\n{body}", body.len())?;
    out.flush()
}

/// The answer to a request: its result, or an error code and message.
pub fn write_response(out: &mut impl Write, id: &Id, result: Result<&Json, (i32, &str)>) -> io::Result<()> {
    let (result, error) = match result {
        Ok(r) => (Some(r), None),
        Err((code, message)) => (None, Some(ErrorObject { code, message })),
    };
    write_reply(out, &Reply { jsonrpc: "2.0", id: Some(&id.0), result, error })
}

/// The answer to a message that could not be understood, with `id: null`
/// when no valid id was read.
pub fn write_malformed(out: &mut impl Write, id: Option<&Id>, code: ErrorCode, error: &str) -> io::Result<()> {
    let error = Some(ErrorObject { code: code as i32, message: error });
    write_reply(out, &Reply { jsonrpc: "2.0", id: id.map(|i| &*i.0), result: None, error })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(input: &str) -> Vec<String> {
        let rx = spawn_reader(io::Cursor::new(input.as_bytes().to_vec()));
        rx.iter()
            .map(|i| match i {
                Incoming::Request { id, method, .. } => format!("request {method} {}", id.as_str()),
                Incoming::Notification(n) => format!("notification {}", n.method),
                Incoming::Response => "response".into(),
                Incoming::Malformed { id, code, error } => {
                    let id = id.as_ref().map_or("null", Id::as_str).to_string();
                    format!("malformed {id} {}: {}", code as i32, error.split(':').next().unwrap_or(""))
                }
            })
            .collect()
    }

    fn frame(body: &str) -> String {
        format!("Content-Length: {}\r\n\r\n{body}", body.len())
    }

    const EXIT: &str = r#"{"jsonrpc":"2.0","method":"exit"}"#;

    #[test]
    fn survives_garbage_between_good_messages() {
        let good = frame(r#"{"jsonrpc":"2.0","id":1,"method":"hover","params":{}}"#);
        let input = format!(
            "{}{}garbage line\r\n\r\n{}Content-Length: x\r\n\r\n{}{}{}",
            frame("{not json"),
            frame(r#"{"jsonrpc":"2.0","id":7,"params":{}}"#),
            frame("[1, 2]"),
            frame("{}"),
            good,
            frame(EXIT),
        );
        let got = frames(&input);
        assert_eq!(
            got,
            [
                "malformed null -32700: parse error",
                "malformed 7 -32600: a request needs a string `method`",
                "malformed null -32700: malformed header line `garbage line`",
                "malformed null -32600: a JSON-RPC message must be an object",
                "malformed null -32700: invalid Content-Length `x`",
                "malformed null -32600: a message without an id needs a `method`",
                "request hover 1",
                "notification exit",
            ]
        );
    }

    #[test]
    fn oversized_and_unreadable_lengths_resynchronise_on_the_next_header() {
        for length in ["300000000", "18446744073709551615", "18446744073709551616", "-1", "ten", ""] {
            let input = format!(
                "Content-Length: {length}\r\n\r\n{}{}",
                frame(r#"{"jsonrpc":"2.0","id":1,"method":"m"}"#),
                frame(EXIT)
            );
            let got = frames(&input);
            assert_eq!(got.len(), 3, "{length}: {got:?}");
            assert!(got[0].starts_with("malformed null -32700"), "{length}: {got:?}");
            assert_eq!(got[1..], ["request m 1", "notification exit"], "{length}");
        }
        // No Content-Length at all: the body is skipped up to the next frame.
        let input = format!("Content-Type: x\r\n\r\n{{\"id\":1}}{}{}", frame(r#"{"id":2,"method":"m"}"#), frame(EXIT));
        assert_eq!(
            frames(&input),
            ["malformed null -32700: missing Content-Length header", "request m 2", "notification exit"]
        );
    }

    #[test]
    fn wrong_lengths_cost_one_message_at_most() {
        let shutdown = r#"{"jsonrpc":"2.0","id":3,"method":"shutdown"}"#;
        // Too short: the rest of the body is skipped.
        let input = format!("Content-Length: 10\r\n\r\n{shutdown}{}{}", frame(shutdown), frame(EXIT));
        assert_eq!(frames(&input), ["malformed null -32700: parse error", "request shutdown 3", "notification exit"]);
        // Too short but the prefix parses (`{}`): the tail is garbage before the next header.
        let input = format!("Content-Length: 2\r\n\r\n{{}}\"id\":1}}{}{}", frame(shutdown), frame(EXIT));
        let got = frames(&input);
        assert_eq!(got[0], "malformed null -32600: a message without an id needs a `method`");
        assert!(got[1].starts_with("malformed null -32700: malformed header line"), "{got:?}");
        assert_eq!(got[2..], ["request shutdown 3", "notification exit"]);
        // Too long: the next header is inside the body read; it is found there.
        let input = format!("Content-Length: 60\r\n\r\n{shutdown}{}{}", frame(shutdown), frame(EXIT));
        assert_eq!(frames(&input), ["malformed null -32700: parse error", "request shutdown 3", "notification exit"]);
    }

    #[test]
    fn ids_are_kept_exactly_or_refused() {
        let valid = [
            "2147483648",
            "9007199254740992",
            "18446744073709551615",
            "-5",
            "123456789012345678901234567890",
            r#""a\"b""#,
        ];
        for id in valid {
            let got = frames(&frame(&format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"m"}}"#)));
            assert_eq!(got, [format!("request m {id}")]);
        }
        for id in ["1.5", "1e3", "null", "true", "[1]", "{}"] {
            let got = frames(&frame(&format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"m"}}"#)));
            assert_eq!(
                got,
                ["malformed null -32600: invalid request id `".to_string() + &id.replace("1e3", "1000.0") + "`"]
            );
        }
    }

    #[test]
    fn responses_are_written_with_the_id_as_sent() {
        let raw = RawValue::from_string("18446744073709551616".into()).expect("raw");
        let id = Id::parse(&raw).expect("valid");
        let mut out = Vec::new();
        write_response(&mut out, &id, Ok(&Json::Null)).expect("write");
        let text = String::from_utf8(out).expect("utf-8");
        assert!(text.ends_with(r#"{"jsonrpc":"2.0","id":18446744073709551616,"result":null}"#), "{text}");
    }

    #[test]
    fn truncated_input_ends_the_stream() {
        assert!(frames("Content-Length: 100\r\n\r\n{\"jsonrpc\"").is_empty());
    }
}
