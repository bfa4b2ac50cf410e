//! Real headless Neovim, its built-in LSP client attached to `nnc lsp`
//! through `editors/nvim/nnc.lua`: a planted shape error shows up as a
//! diagnostic on its line, and hover shows an inferred shape.
//!
//! Needs `nvim` (Debian package `neovim`; `.ci/run` installs it). Without it
//! the test says so and passes.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PLANTED: &str = "dim N

model Planted {
    input images: [N, 28, 28, 1]
    let features = images |> conv2d(8, kernel = 3) |> max_pool(2)
    let bad = conv2d(features, 16, kernel = 20)
    output logits = bad |> flatten |> dense(10)
}
";

/// Runs in Neovim: opens the file, waits for diagnostics, hovers, writes
/// `key=value` lines to the output file and quits. Placeholders are filled in below.
const SCRIPT: &str = r#"
local out = {}
local function log(k, v) table.insert(out, k .. '=' .. tostring(v)) end
local function flat(s) return (tostring(s):gsub('\n', ' ')) end
local ok, err = pcall(function()
  vim.g.nnc_path = NNC
  dofile(PLUGIN)
  vim.cmd('edit ' .. vim.fn.fnameescape(FILE))
  local buf = vim.api.nvim_get_current_buf()
  log('filetype', vim.bo[buf].filetype)
  local arrived = vim.wait(30000, function() return #vim.diagnostic.get(buf) > 0 end, 20)
  log('diagnostics_arrived', arrived)
  for _, d in ipairs(vim.diagnostic.get(buf)) do
    local code = d.code or (d.user_data and d.user_data.lsp and d.user_data.lsp.code)
    log('diagnostic', d.lnum .. ':' .. tostring(code) .. ':' .. flat(d.message))
  end
  local params = {
    textDocument = { uri = vim.uri_from_bufnr(buf) },
    position = { line = HOVER_LINE, character = HOVER_COL },
  }
  local results = vim.lsp.buf_request_sync(buf, 'textDocument/hover', params, 20000)
  for _, r in pairs(results or {}) do
    if r.result and r.result.contents then log('hover', flat(r.result.contents.value or r.result.contents)) end
    if r.err then log('hover_error', flat(vim.inspect(r.err))) end
  end
end)
if not ok then log('error', flat(err)) end
vim.fn.writefile(out, OUT)
vim.cmd('qa!')
"#;

fn lua_string(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn nvim_available() -> bool {
    Command::new("nvim")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn neovim_shows_the_planted_shape_error_and_hovers_a_shape() {
    if !nvim_available() {
        println!("SKIPPED: `nvim` is not installed (apt-get install neovim); .ci/run installs it for CI");
        return;
    }
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("nvim");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let file = dir.join("planted.nn");
    std::fs::write(&file, PLANTED).expect("write model");
    let out = dir.join("out.txt");
    let plugin = Path::new(env!("CARGO_MANIFEST_DIR")).join("editors/nvim/nnc.lua");
    let bad_line = PLANTED.lines().position(|l| l.contains("kernel = 20")).expect("planted line");
    let hover_line = PLANTED.lines().position(|l| l.contains("let features")).expect("hover line");
    let script = SCRIPT
        .replace("NNC", &lua_string(env!("CARGO_BIN_EXE_nnc")))
        .replace("PLUGIN", &lua_string(&plugin.display().to_string()))
        .replace("FILE", &lua_string(&file.display().to_string()))
        .replace("OUT", &lua_string(&out.display().to_string()))
        .replace("HOVER_LINE", &hover_line.to_string())
        .replace("HOVER_COL", "10");
    let script_path = dir.join("test.lua");
    std::fs::write(&script_path, script).expect("write script");

    // Neovim's own state (logs, shada) and nnc's support files stay in the scratch dir.
    let mut child = Command::new("nvim")
        .args(["--headless", "--clean", "-n", "-i", "NONE", "-c"])
        .arg(format!("luafile {}", script_path.display()))
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("XDG_DATA_HOME", dir.join("data"))
        .env("XDG_STATE_HOME", dir.join("state"))
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nvim");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if child.try_wait().expect("wait for nvim").is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("nvim did not finish within 90 s; output so far: {:?}", std::fs::read_to_string(&out).ok());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let report = std::fs::read_to_string(&out).expect("nvim wrote no report");
    let lines: Vec<&str> = report.lines().collect();
    assert!(!lines.iter().any(|l| l.starts_with("error=")), "{report}");
    assert!(lines.contains(&"filetype=nn"), "{report}");
    assert!(lines.contains(&"diagnostics_arrived=true"), "{report}");
    let want = format!("diagnostic={bad_line}:E0304:");
    assert!(lines.iter().any(|l| l.starts_with(&want)), "expected E0304 on line {bad_line}: {report}");
    let hover = lines.iter().find(|l| l.starts_with("hover=")).unwrap_or_else(|| panic!("no hover: {report}"));
    assert!(hover.contains("let features: [N, 13, 13, 8]"), "{report}");
}
