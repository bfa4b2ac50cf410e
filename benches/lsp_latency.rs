//! Benchmark: how long an editor waits for diagnostics after a keystroke.
//! Drives `nnc lsp` over stdio like an editor and measures the time from
//! sending `didChange` to receiving the matching `publishDiagnostics`, on a
//! generated model of 2,000 lines (500 `dense |> relu` stages).
//!
//! `cargo bench --bench lsp_latency` prints the median and p95 in ms. Not a
//! test: timings never fail CI.

#![forbid(unsafe_code)]

#[path = "../tests/support/lsp_client.rs"]
mod lsp_client;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use lsp_client::Client;

const STAGES: usize = 500;
const EDITS: usize = 60;

/// Four lines per stage; `width` alternates with a literal so every shape
/// is really computed, and changes with each edit.
fn generate(width: usize) -> String {
    let mut s = format!(
        "dim N\n\n/// A generated deep MLP.\nmodel Deep(width = {width}) {{\n    input x: [N, 32]\n    let h0 = x\n"
    );
    for i in 1..=STAGES {
        let units = if i % 2 == 0 { "width".to_string() } else { "48".to_string() };
        s.push_str(&format!(
            "    // stage {i}: dense then relu\n    let h{i} = h{}\n        |> dense({units})\n        |> relu\n",
            i - 1
        ));
    }
    s.push_str("    output y = h500\n}\n");
    s
}

fn main() {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("lsp_latency");
    std::fs::create_dir_all(&tmp).expect("create temp dir");
    let file = tmp.join("deep.nn");
    let text = generate(64);
    std::fs::write(&file, &text).expect("write model");
    let uri = lsp_client::uri(&file);

    let mut client = Client::start(std::path::Path::new(env!("CARGO_BIN_EXE_nnc")), &tmp.join("cache"));
    client.initialize(&tmp);
    let t0 = Instant::now();
    client.open(&uri, &text);
    let first = client.diagnostics(&uri, Some(1));
    let open_time = t0.elapsed();
    assert!(first.is_empty(), "the generated model should be clean: {first:?}");

    let mut times: Vec<Duration> = Vec::with_capacity(EDITS);
    for edit in 0..EDITS {
        let version = edit as i64 + 2;
        let text = generate(64 + edit % 7);
        let t = Instant::now();
        client.change(&uri, version, &text);
        let diags = client.diagnostics(&uri, Some(version));
        times.push(t.elapsed());
        assert!(diags.is_empty(), "{diags:?}");
    }
    let code = client.shutdown();
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let median = times[times.len() / 2];
    let p95 = times[(times.len() * 95).div_ceil(100) - 1];
    println!(
        "lsp_latency: didChange → publishDiagnostics, {} lines, {} layers, {EDITS} edits",
        text.lines().count(),
        STAGES * 2
    );
    println!("  first open:  {:7.2} ms", ms(open_time));
    println!("  median:      {:7.2} ms", ms(median));
    println!("  p95:         {:7.2} ms", ms(p95));
    println!("  best:        {:7.2} ms", ms(times[0]));
    println!("  server exit code: {code:?}");
}
