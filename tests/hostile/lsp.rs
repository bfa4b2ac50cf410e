//! Hostile inputs: the language server's transport. A malformed frame (bad, huge or missing
//! `Content-Length`, a length that is too short, a body that is not JSON) or a request with an
//! id JSON-RPC does not allow gets a JSON-RPC error answer, and the server keeps serving:
//! `shutdown` and `exit` work afterwards. Every wait has a timeout (`lsp_client::TIMEOUT`), so a
//! server that hangs fails the test instead of hanging CI.

use super::lsp_client;

use std::path::PathBuf;

use lsp_client::Client;
use serde_json::{Value, json};

use crate::common;

/// A server for one test, its support files under a fresh temporary directory.
struct Session {
    client: Option<Client>,
    dir: PathBuf,
}

impl Session {
    fn start(name: &str) -> Session {
        let dir = std::env::temp_dir().join(format!("nnc-hostile-lsp-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temporary directory");
        let mut client = Client::start(&common::nnc_bin(), &dir.join("cache"));
        client.initialize(&dir);
        Session { client: Some(client), dir }
    }

    fn client(&mut self) -> &mut Client {
        self.client.as_mut().expect("running")
    }

    /// The next answer with `"id": null` (to a message that could not be read).
    fn null_id_error(&mut self, what: &str) -> Value {
        let m = self.client().wait_for(what, |m| m.get("id") == Some(&Value::Null) && m.get("method").is_none());
        assert!(m["result"].is_null(), "{what}: {m}");
        m
    }

    /// The server still answers, and `shutdown` then `exit` end it cleanly.
    fn still_serves_and_shuts_down(mut self, what: &str) {
        let mut client = self.client.take().expect("running");
        let r = client.request_raw(
            "textDocument/hover",
            json!({"textDocument": {"uri": "file:///x.nn"}, "position": {"line": 0, "character": 0}}),
        );
        assert!(r.get("error").is_none(), "{what}: hover after it failed: {r}");
        assert_eq!(client.shutdown(), Some(0), "{what}: exit code after shutdown");
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        drop(self.client.take());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn frame(body: &str) -> Vec<u8> {
    format!("Content-Length: {}\r\n\r\n{body}", body.len()).into_bytes()
}

#[test]
fn lsp_bad_content_length_is_answered_and_the_stream_resynchronises() {
    let next = r#"{"jsonrpc":"2.0","id":"after","method":"shutdown"}"#;
    let cases: [(&str, Vec<u8>); 6] = [
        ("over the cap", b"Content-Length: 300000000\r\n\r\n".to_vec()),
        ("2^64-1", b"Content-Length: 18446744073709551615\r\n\r\n".to_vec()),
        ("2^64", b"Content-Length: 18446744073709551616\r\n\r\n".to_vec()),
        ("garbage", b"Content-Length: lots\r\n\r\n{\"jsonrpc\":\"2.0\"}".to_vec()),
        ("missing", b"Content-Type: application/vscode-jsonrpc\r\n\r\n{\"id\":1}".to_vec()),
        ("not a header", b"hello there\r\n\r\n".to_vec()),
    ];
    for (what, bad) in cases {
        let mut s = Session::start(&what.replace(['^', ' '], "_"));
        let mut bytes = bad;
        bytes.extend(frame(next));
        s.client().send_raw(&bytes);
        let err = s.null_id_error(what);
        assert_eq!(err["error"]["code"], -32700, "{what}: {err}");
        // The request right behind the bad frame is read and answered.
        let answer = s.client().wait_for(what, |m| m["id"] == "after");
        assert!(answer.get("error").is_none() && answer["result"].is_null(), "{what}: {answer}");
        // It was a shutdown: `exit` now ends the server with 0.
        s.client().notify("exit", Value::Null);
        assert_eq!(s.client().wait_exit(), Some(0), "{what}");
    }
}

#[test]
fn lsp_too_short_or_too_long_content_length_costs_one_message() {
    let shutdown = r#"{"jsonrpc":"2.0","id":41,"method":"shutdown"}"#;
    for (what, length) in [("too short", 10), ("far too short", 1), ("too long", shutdown.len() + 20)] {
        let mut s = Session::start(&what.replace(' ', "_"));
        let mut bytes = format!("Content-Length: {length}\r\n\r\n{shutdown}").into_bytes();
        bytes.extend(frame(concat!(
            r#"{"jsonrpc":"2.0","id":42,"method":"textDocument/documentSymbol","#,
            r#""params":{"textDocument":{"uri":"file:///none.nn"}}}"#,
        )));
        s.client().send_raw(&bytes);
        let err = s.null_id_error(what);
        assert!([-32700, -32600].contains(&err["error"]["code"].as_i64().unwrap_or(0)), "{what}: {err}");
        // The request after the broken frame is answered (too long: its header was inside the
        // body read, and is found there).
        let answer = s.client().wait_for(what, |m| m["id"] == 42);
        assert!(answer.get("error").is_none(), "{what}: {answer}");
        s.still_serves_and_shuts_down(what);
    }
}

#[test]
fn lsp_unparsable_json_is_a_parse_error_with_null_id() {
    let mut s = Session::start("unparsable");
    for body in ["{not json", "{\"id\": 3, \"method\": ", "\u{0}\u{1}", ""] {
        s.client().send_raw(&frame(body));
        let err = s.null_id_error(body);
        assert_eq!(err["error"]["code"], -32700, "{body:?}: {err}");
    }
    s.still_serves_and_shuts_down("unparsable JSON");
}

#[test]
fn lsp_request_ids_are_echoed_exactly() {
    let mut s = Session::start("ids");
    // 2^31 and 2^53 + 1 do not fit an i32 or an f64; 2^64 - 1 only a u64.
    let ids =
        [json!(2147483648_u64), json!(9007199254740993_u64), json!(18446744073709551615_u64), json!(-7), json!("id ✓")];
    for id in ids {
        let body = json!({"jsonrpc": "2.0", "id": id, "method": "textDocument/documentSymbol",
                          "params": {"textDocument": {"uri": "file:///none.nn"}}});
        s.client().send(&body);
        let answer = s.client().wait_for(&format!("the answer to id {id}"), |m| m.get("id") == Some(&id));
        assert!(answer.get("error").is_none(), "{id}: {answer}");
    }
    // An unknown method still answers, with the id.
    s.client().send(&json!({"jsonrpc": "2.0", "id": 4294967296_u64, "method": "no/such"}));
    let answer = s.client().wait_for("unknown method", |m| m.get("id") == Some(&json!(4294967296_u64)));
    assert_eq!(answer["error"]["code"], -32601, "{answer}");
    s.still_serves_and_shuts_down("large ids");
}

#[test]
fn lsp_invalid_request_ids_get_invalid_request_with_null_id() {
    let mut s = Session::start("bad_ids");
    for id in ["1.5", "null", "true", "[1]", "{\"a\":1}", "1e2"] {
        let body = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"shutdown"}}"#);
        s.client().send_raw(&frame(&body));
        let err = s.null_id_error(id);
        assert_eq!(err["error"]["code"], -32600, "{id}: {err}");
        assert!(err["error"]["message"].as_str().is_some_and(|m| m.contains("id")), "{id}: {err}");
    }
    // None of them was taken as `shutdown`: requests are still served.
    s.still_serves_and_shuts_down("invalid ids");
}
