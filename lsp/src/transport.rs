//! JSON-RPC framing over a byte stream (`Content-Length` headers).
//!
//! `lsp-server`'s own stdio transport stops reading at the first malformed
//! message and would allocate whatever `Content-Length` claims; an editor
//! (or a fuzzer) sending one bad frame must not end the session. This reader
//! resynchronises on the next header, caps message sizes, and hands the
//! server either an `lsp_server::Message` or a description of what was wrong,
//! so the server can answer with a JSON-RPC error and keep serving.

use std::io::{self, BufRead, Read, Write};
use std::sync::mpsc;

use lsp_server::{Message, RequestId};

/// Larger messages are read and dropped: a 50,000-line file is ~2 MB.
pub const MAX_MESSAGE: usize = 256 << 20;

/// What the reader saw.
#[derive(Debug)]
pub enum Incoming {
    Message(Message),
    /// A frame that was not a JSON-RPC message; `id` when one could be read
    /// (the answer must carry it), and what was wrong.
    Malformed { id: Option<RequestId>, error: String },
}

/// Reads frames from `input` on a thread of its own until end of input;
/// the channel closes then.
pub fn spawn_reader(input: impl BufRead + Send + 'static) -> mpsc::Receiver<Incoming> {
    let (tx, rx) = mpsc::channel();
    let spawned = std::thread::Builder::new().name("lsp-reader".into()).spawn(move || {
        let mut input = input;
        loop {
            let incoming = match read_frame(&mut input) {
                Ok(Frame::Body(body)) => decode(&body),
                Ok(Frame::Bad(error)) => Incoming::Malformed { id: None, error },
                Ok(Frame::Eof) | Err(_) => break,
            };
            let is_exit = matches!(&incoming, Incoming::Message(Message::Notification(n)) if n.method == "exit");
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

enum Frame {
    Body(Vec<u8>),
    /// A frame whose headers were unusable; it was skipped.
    Bad(String),
    Eof,
}

fn read_frame(input: &mut impl BufRead) -> io::Result<Frame> {
    let mut length: Option<usize> = None;
    let mut problem: Option<String> = None;
    let mut saw_header = false;
    let mut line = Vec::new();
    loop {
        line.clear();
        // Header lines are short; a line without a newline for 64 KiB is garbage.
        let n = input.by_ref().take(64 << 10).read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(if saw_header { Frame::Bad("end of input inside headers".into()) } else { Frame::Eof });
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\r', '\n']);
        if text.is_empty() {
            if saw_header {
                break;
            }
            continue; // stray blank lines between frames
        }
        saw_header = true;
        match text.split_once(':') {
            Some((name, value)) if name.trim().eq_ignore_ascii_case("content-length") => match value.trim().parse::<usize>() {
                Ok(v) => length = Some(v),
                Err(_) => problem = Some(format!("invalid Content-Length `{}`", value.trim())),
            },
            Some(_) => {} // Content-Type and the like
            None => problem = Some(format!("malformed header line `{}`", truncate(text, 80))),
        }
    }
    if let Some(p) = problem {
        return Ok(Frame::Bad(p));
    }
    let Some(length) = length else { return Ok(Frame::Bad("missing Content-Length header".into())) };
    if length > MAX_MESSAGE {
        io::copy(&mut input.by_ref().take(length as u64), &mut io::sink())?;
        return Ok(Frame::Bad(format!("message of {length} bytes exceeds the limit of {MAX_MESSAGE}")));
    }
    let mut body = vec![0; length];
    match input.read_exact(&mut body) {
        Ok(()) => Ok(Frame::Body(body)),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(Frame::Eof),
        Err(e) => Err(e),
    }
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// JSON → `Message`, or what was wrong with it.
fn decode(body: &[u8]) -> Incoming {
    let value: serde_json::Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return Incoming::Malformed { id: None, error: format!("parse error: {e}") },
    };
    let id = value.get("id").and_then(|id| serde_json::from_value::<RequestId>(id.clone()).ok());
    if !value.is_object() {
        return Incoming::Malformed { id: None, error: "a JSON-RPC message must be an object".into() };
    }
    match serde_json::from_value::<Message>(value) {
        Ok(m) => Incoming::Message(m),
        Err(e) => Incoming::Malformed { id, error: format!("invalid message: {e}") },
    }
}

/// Writes one message; errors mean the client is gone.
pub fn write(out: &mut impl Write, msg: &Message) -> io::Result<()> {
    msg.write(out)
}

/// The answer to a message that could not be understood: JSON-RPC's
/// `ParseError` (or `InvalidRequest` when an id was readable), with
/// `id: null` when none was.
pub fn write_malformed(out: &mut impl Write, id: Option<&RequestId>, error: &str) -> io::Result<()> {
    let code = if id.is_some() { lsp_server::ErrorCode::InvalidRequest } else { lsp_server::ErrorCode::ParseError };
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": {"code": code as i32, "message": error},
    })
    .to_string();
    write!(out, "Content-Length: {}\r\n\r\n{body}", body.len())?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(input: &str) -> Vec<String> {
        let rx = spawn_reader(io::Cursor::new(input.as_bytes().to_vec()));
        rx.iter()
            .map(|i| match i {
                Incoming::Message(Message::Request(r)) => format!("request {}", r.method),
                Incoming::Message(Message::Notification(n)) => format!("notification {}", n.method),
                Incoming::Message(Message::Response(_)) => "response".into(),
                Incoming::Malformed { id, error } => format!("malformed {id:?}: {}", error.split(':').next().unwrap_or("")),
            })
            .collect()
    }

    fn frame(body: &str) -> String {
        format!("Content-Length: {}\r\n\r\n{body}", body.len())
    }

    #[test]
    fn survives_garbage_between_good_messages() {
        let good = frame(r#"{"jsonrpc":"2.0","id":1,"method":"hover","params":{}}"#);
        let input = format!(
            "{}{}garbage line\r\n\r\n{}Content-Length: x\r\n\r\n{}{}",
            frame("{not json"),
            frame(r#"{"jsonrpc":"2.0","id":7,"params":{}}"#),
            frame("[1, 2]"),
            good,
            frame(r#"{"jsonrpc":"2.0","method":"exit"}"#),
        );
        let got = frames(&input);
        assert_eq!(got[0], "malformed None: parse error");
        assert_eq!(got[1], "malformed Some(RequestId(I32(7))): invalid message");
        assert_eq!(got[2], "malformed None: malformed header line `garbage line`");
        assert_eq!(got[3], "malformed None: a JSON-RPC message must be an object");
        assert_eq!(got[4], "malformed None: invalid Content-Length `x`");
        assert!(got.contains(&"request hover".to_string()), "{got:?}");
        assert_eq!(got.last().map(String::as_str), Some("notification exit"));
    }

    #[test]
    fn oversized_messages_are_skipped_without_allocating() {
        let input = format!("Content-Length: {}\r\n\r\n", MAX_MESSAGE + 1);
        assert_eq!(frames(&input), ["malformed None: message of 268435457 bytes exceeds the limit of 268435456"]);
    }

    #[test]
    fn truncated_input_ends_the_stream() {
        assert!(frames("Content-Length: 100\r\n\r\n{\"jsonrpc\"").is_empty());
    }
}
