//! Hostile inputs: file access and bounded reads. A `.nn` file someone sent you must be safe to check and to
//! run: what it makes nnc read lies under the project root (E0501), what `nnc run` writes for it under `--out`
//! (E0504), only regular files are read (E0502: a FIFO would block, `/dev/zero` never ends), and every read
//! stops at a size cap (E0503), a gzip or npz bomb included. Refused files are never quoted.
//!
//! Each test builds a temporary directory: `project/` (the `.nn` files), and beside it a secret file and
//! an `outside/` directory that the project's files must not reach.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::nnc_bin;
use crate::lsp_client::Client;

/// Text no output may contain: it is only in files outside the project.
const SECRET: &str = "NNC-SECRET-c0ffee-7f3a9c";

/// Every command must finish within this (a FIFO read would block forever).
const TIMEOUT: Duration = Duration::from_secs(120);

struct Fixture {
    dir: PathBuf,
}

impl Fixture {
    fn new(name: &str) -> Fixture {
        let dir = std::env::temp_dir().join(format!("nnc-hostile-files-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("project")).unwrap();
        std::fs::create_dir_all(dir.join("outside")).unwrap();
        // Secrets in several formats, each a file a hostile `.nn` file might name.
        let secret_line = format!("{SECRET}: hunter2\n");
        for name in ["secret.nn", "secret.csv", "secret.txt", "secret.tsv", "secret.npy", "secret.npz", "secret-idx"] {
            std::fs::write(dir.join(name), &secret_line).unwrap();
        }
        std::fs::write(dir.join("outside/w.safetensors"), &secret_line).unwrap();
        Fixture { dir }
    }

    fn project(&self) -> PathBuf {
        self.dir.join("project")
    }

    /// Writes `text` to `project/rel`, returning the path.
    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.project().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    fn symlink(&self, target: &Path, rel: &str) {
        std::os::unix::fs::symlink(target, self.project().join(rel)).unwrap();
    }

    fn fifo(&self, rel: &str) -> PathBuf {
        let p = self.project().join(rel);
        let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
        // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo {}", p.display());
        p
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `nnc args…` in `cwd` with `env`, failing (not hanging) after [`TIMEOUT`].
fn nnc(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let out_file = cwd.join(format!(".stdout-{}", std::thread::current().name().unwrap_or("t").replace("::", "-")));
    let err_file = out_file.with_extension("stderr");
    let mut child = Command::new(nnc_bin())
        .current_dir(cwd)
        .args(args)
        .envs(env.iter().copied())
        .env("NNC_TEST_ENV_SECRET", SECRET)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_file).unwrap())
        .stderr(std::fs::File::create(&err_file).unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("nnc {args:?} did not finish within {TIMEOUT:?} (blocked on a file?)");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = Output { status, stdout: std::fs::read(&out_file).unwrap(), stderr: std::fs::read(&err_file).unwrap() };
    let _ = std::fs::remove_file(&out_file);
    let _ = std::fs::remove_file(&err_file);
    out
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Exited normally with `code`, no panic, and nothing of a secret in the output.
fn assert_exit(o: &Output, code: i32, case: &str) {
    let all = text(o);
    assert_eq!(o.status.code(), Some(code), "{case}: exit status {:?}\n{all}", o.status);
    assert!(!all.contains("panicked") && !all.contains("internal failure"), "{case}: panic\n{all}");
    assert!(!all.contains(SECRET) && !all.contains("hunter2"), "{case}: the output quotes a refused file\n{all}");
    assert!(!all.contains("root:x:0:0"), "{case}: the output quotes /etc/passwd\n{all}");
}

fn assert_refused(o: &Output, code: i32, diag: &str, case: &str) {
    assert_exit(o, code, case);
    let all = text(o);
    assert!(all.contains(diag), "{case}: expected {diag}\n{all}");
}

/// A model with a one-epoch train block on `data`, with extra train fields.
fn train_file(data: &str, extra: &str) -> String {
    format!(
        "dim N\n\nmodel M {{\n    input x: [N, 4]\n    output y = dense(x, 1)\n}}\n\n\
         train t {{\n    model     = M()\n    data      = {data}\n    loss      = mse(y, 0)\n    \
         optimizer = sgd()\n    batch     = 4\n    epochs    = 1\n{extra}}}\n"
    )
}

/// A character model fed by `data` (a `text(…, seq = 10, vocab = 8)` source).
fn text_file(data: &str) -> String {
    format!(
        "dim N\ndim V = 8\n\nmodel C {{\n    input tokens: int[N, 10]\n    \
         output logits = one_hot(tokens, V) |> dense(V)\n}}\n\n\
         train t {{\n    model     = C()\n    data      = {data}\n    loss      = cross_entropy(logits, next)\n    \
         optimizer = sgd()\n    batch     = 4\n    epochs    = 1\n}}\n"
    )
}

const MODEL: &str = "dim N\n\nmodel Small {\n    input x: [N, 4]\n    output y = dense(x, 2)\n}\n";

#[test]
fn use_outside_the_project_root_is_refused_and_never_quoted() {
    let f = Fixture::new("use");
    f.symlink(&f.dir.join("secret.nn"), "link.nn");
    std::fs::create_dir_all(f.project().join("sub")).unwrap();
    f.symlink(&f.dir, "sub/up");
    let abs = f.dir.join("secret.nn");
    let cases = [
        abs.to_str().unwrap().to_string(),
        "../secret.nn".into(),
        "sub/../../secret.nn".into(),
        "link.nn".into(),
        "sub/up/secret.nn".into(),
        "../../../../../../../../etc/passwd".into(),
        "/etc/passwd".into(),
        "/etc/shadow".into(),
        "/proc/self/environ".into(),
    ];
    for target in &cases {
        let file = f.write("m.nn", &format!("use \"{target}\"\n\n{MODEL}"));
        for args in [vec!["check"], vec!["check", "--format", "json"], vec!["summary"]] {
            let mut a = args.clone();
            a.push(file.to_str().unwrap());
            let o = nnc(&f.project(), &a, &[]);
            assert_refused(&o, 1, "E0501", &format!("use \"{target}\" ({args:?})"));
        }
    }
    // Inside the root, the same forms load.
    f.write("lib/blocks.nn", "dim K\n");
    let file = f.write("m.nn", &format!("use \"lib/blocks.nn\"\nuse \"sub/../lib/blocks.nn\"\n\n{MODEL}"));
    let o = nnc(&f.project(), &["check", file.to_str().unwrap()], &[]);
    assert_exit(&o, 0, "use inside the root");
}

#[test]
fn data_sources_outside_the_project_root_are_refused_by_check_and_run() {
    let f = Fixture::new("data");
    f.symlink(&f.dir.join("secret.csv"), "link.csv");
    let cases = [
        "csv(\"../secret.csv\", x = 0..4, header = false)",
        "csv(\"link.csv\", x = 0..4, header = false)",
        "text(\"../secret.txt\", seq = 10)",
        "text(\"/etc/shadow\", seq = 10)",
        "text(\"/proc/self/environ\", seq = 10)",
        "sentences(\"../secret.tsv\", tokens = 0, vocab = 10, header = false)",
        "npy(x = \"../secret.npy\")",
        "npz(\"../secret.npz\")",
        "idx(x = \"../secret-idx\")",
    ];
    for data in cases {
        let file = f.write("m.nn", &train_file(data, ""));
        let o = nnc(&f.project(), &["check", file.to_str().unwrap()], &[]);
        assert_refused(&o, 1, "E0501", &format!("check {data}"));
        let o = nnc(&f.project(), &["run", file.to_str().unwrap(), "--out", "out"], &[]);
        assert_refused(&o, 1, "E0501", &format!("run {data}"));
    }
}

#[test]
fn root_flag_and_marker_file_set_the_project_root() {
    let f = Fixture::new("root");
    f.write("lib/b.nn", "dim K\n");
    let file = f.write("models/m.nn", &format!("use \"../lib/b.nn\"\n\n{MODEL}"));
    let file = file.to_str().unwrap();
    // Default: the file's own directory, so `../lib` is outside.
    let o = nnc(&f.project(), &["check", file], &[]);
    assert_refused(&o, 1, "E0501", "no marker");
    // `--root` widens it explicitly.
    let project = f.project();
    let o = nnc(&f.project(), &["check", "--root", project.to_str().unwrap(), file], &[]);
    assert_exit(&o, 0, "--root project");
    let o = nnc(&f.project(), &["summary", "--root", "..", file], &[]);
    assert_exit(&o, 0, "--root relative");
    let o = nnc(&f.project(), &["check", "--root", "no/such/dir", file], &[]);
    assert_refused(&o, 2, "--root", "--root missing");
    // A marker file makes its directory the root of every file below it.
    f.write("nnc.toml", "");
    let o = nnc(&f.dir, &["check", file], &[]);
    assert_exit(&o, 0, "nnc.toml");
    // The marker does not reach above itself.
    let file = f.write("models/m.nn", &format!("use \"../../secret.nn\"\n\n{MODEL}"));
    let o = nnc(&f.dir, &["check", file.to_str().unwrap()], &[]);
    assert_refused(&o, 1, "E0501", "above the marker");
}

#[test]
fn checkpoints_are_written_only_inside_the_output_directory() {
    let f = Fixture::new("ckpt");
    let outside = f.dir.join("outside");
    let evil_abs = outside.join("evil.safetensors");
    let cases = [
        evil_abs.to_str().unwrap().to_string(),
        "../outside/evil.safetensors".into(),
        "../../outside/new_dir/evil_{epoch}.safetensors".into(),
        "a/../../../evil.safetensors".into(),
    ];
    for pattern in &cases {
        let file = f.write("m.nn", &train_file("synthetic(n = 8)", &format!("    checkpoint = \"{pattern}\"\n")));
        let o = nnc(&f.project(), &["check", file.to_str().unwrap()], &[]);
        assert_refused(&o, 1, "E0504", &format!("check {pattern}"));
        let o = nnc(&f.project(), &["run", file.to_str().unwrap(), "--out", "out/run"], &[]);
        assert_refused(&o, 1, "E0504", &format!("run {pattern}"));
    }
    let left: Vec<_> = std::fs::read_dir(&outside).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, vec![std::ffi::OsString::from("w.safetensors")], "nothing written outside --out");
    // A symlink inside the output directory that leads out is outside too
    // (the checker cannot see it; the run refuses before training).
    let out = f.project().join("out2");
    std::fs::create_dir_all(&out).unwrap();
    std::os::unix::fs::symlink(&outside, out.join("link")).unwrap();
    let file = f.write("m.nn", &train_file("synthetic(n = 8)", "    checkpoint = \"link/evil.safetensors\"\n"));
    let o = nnc(&f.project(), &["run", file.to_str().unwrap(), "--out", "out2"], &[]);
    assert_refused(&o, 1, "E0504", "symlink out of --out");
    assert!(!outside.join("evil.safetensors").exists());
    // Relative paths are relative to --out, subdirectories allowed.
    let file = f.write("m.nn", &train_file("synthetic(n = 8)", "    checkpoint = \"{train}/e{epoch}.safetensors\"\n"));
    let o = nnc(&f.project(), &["run", file.to_str().unwrap(), "--out", "out3"], &[]);
    assert_exit(&o, 0, "checkpoint inside --out");
    assert!(f.project().join("out3/t/e1.safetensors").is_file(), "{}", text(&o));
}

#[test]
fn init_load_reads_only_under_the_root_or_the_output_directory() {
    let f = Fixture::new("init");
    let abs = f.dir.join("outside/w.safetensors");
    for path in [abs.to_str().unwrap(), "../../../outside/w.safetensors", "../../../../../../etc/passwd"] {
        let file = f.write("m.nn", &train_file("synthetic(n = 8)", &format!("    init      = load(\"{path}\")\n")));
        let o = nnc(&f.project(), &["run", file.to_str().unwrap(), "--out", "out/run"], &[]);
        assert_refused(&o, 1, "E0501", &format!("init = load(\"{path}\")"));
    }
    // `--init` on the command line is the user's own pointing: read (and here rejected as not safetensors).
    let file = f.write("m.nn", &train_file("synthetic(n = 8)", ""));
    let o =
        nnc(&f.project(), &["run", file.to_str().unwrap(), "--out", "out/run", "--init", abs.to_str().unwrap()], &[]);
    assert_exit(&o, 1, "--init outside");
    assert!(!text(&o).contains("E0501"), "{}", text(&o));
}

#[test]
fn fifos_are_refused_without_blocking() {
    let f = Fixture::new("fifo");
    let pipe_nn = f.fifo("pipe.nn");
    f.fifo("pipe.csv");
    let weights = f.fifo("w.safetensors");
    // The root file itself, given on the command line.
    let o = nnc(&f.project(), &["check", pipe_nn.to_str().unwrap()], &[]);
    assert_refused(&o, 2, "E0502", "check FIFO");
    let o = nnc(&f.project(), &["fmt", "--check", pipe_nn.to_str().unwrap()], &[]);
    assert_refused(&o, 2, "E0502", "fmt FIFO");
    // A `use`d file and a data file.
    let file = f.write("m.nn", &format!("use \"pipe.nn\"\n\n{MODEL}"));
    let o = nnc(&f.project(), &["check", file.to_str().unwrap()], &[]);
    assert_refused(&o, 1, "E0502", "use FIFO");
    let file = f.write("t.nn", &train_file("csv(\"pipe.csv\", x = 0..4, header = false)", ""));
    let o = nnc(&f.project(), &["check", file.to_str().unwrap()], &[]);
    assert_refused(&o, 1, "E0502", "check csv FIFO");
    let o = nnc(&f.project(), &["run", file.to_str().unwrap(), "--out", "out"], &[]);
    assert_refused(&o, 1, "E0502", "run csv FIFO");
    // Paths on the command line are not confined, but are still read only if regular.
    let file = f.write("p.nn", MODEL);
    let args = [
        "predict",
        file.to_str().unwrap(),
        "--weights",
        weights.to_str().unwrap(),
        "--input",
        "x=x.npy",
        "--output",
        "y.npy",
    ];
    let o = nnc(&f.project(), &args, &[]);
    assert_refused(&o, 1, "E0502", "predict --weights FIFO");
}

#[test]
fn devices_are_refused_even_inside_the_root() {
    let f = Fixture::new("dev");
    let o = nnc(&f.project(), &["check", "/dev/zero"], &[]);
    assert_refused(&o, 2, "E0502", "check /dev/zero");
    let file = f.write("m.nn", &format!("use \"/dev/zero\"\n\n{MODEL}"));
    let o = nnc(&f.project(), &["check", file.to_str().unwrap()], &[]);
    assert_refused(&o, 1, "E0501", "use /dev/zero");
    let o = nnc(&f.project(), &["check", "--root", "/", file.to_str().unwrap()], &[]);
    assert_refused(&o, 1, "E0502", "use /dev/zero under --root /");
    let file = f.write("t.nn", &text_file("text(\"/dev/zero\", seq = 10, vocab = 8)"));
    let o = nnc(&f.project(), &["run", "--root", "/", file.to_str().unwrap(), "--out", "out"], &[]);
    assert_refused(&o, 1, "E0502", "text(/dev/zero) under --root /");
}

/// Streams `n` zero bytes through `w` in small chunks (nothing big in memory or on disk).
fn zeros(w: &mut impl Write, n: usize) {
    let chunk = vec![0u8; 1 << 16];
    let mut left = n;
    while left > 0 {
        let k = left.min(chunk.len());
        w.write_all(&chunk[..k]).unwrap();
        left -= k;
    }
}

/// An `.npz` whose one deflated entry `x.npy` inflates to `n` zero bytes.
fn npz_bomb(n: usize) -> Vec<u8> {
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    zeros(&mut enc, n);
    let data = enc.finish().unwrap();
    let mut crc = flate2::Crc::new();
    let chunk = vec![0u8; 1 << 16];
    for _ in 0..n / chunk.len() {
        crc.update(&chunk);
    }
    let name = b"x.npy";
    let mut z = Vec::new();
    let header = |z: &mut Vec<u8>, central: bool| {
        z.extend_from_slice(if central { &[0x50, 0x4b, 1, 2, 20, 0] } else { &[0x50, 0x4b, 3, 4] });
        z.extend_from_slice(&[20, 0, 0, 0, 8, 0, 0, 0, 0, 0]);
        z.extend_from_slice(&crc.sum().to_le_bytes());
        z.extend_from_slice(&(data.len() as u32).to_le_bytes());
        z.extend_from_slice(&(n as u32).to_le_bytes());
        z.extend_from_slice(&(name.len() as u16).to_le_bytes());
        z.extend_from_slice(&[0, 0]);
        if central {
            z.extend_from_slice(&[0; 12]); // comment length, disk, attributes, local offset 0
        }
        z.extend_from_slice(name);
    };
    header(&mut z, false);
    z.extend_from_slice(&data);
    let cd = z.len();
    header(&mut z, true);
    let cd_len = z.len() - cd;
    z.extend_from_slice(&[0x50, 0x4b, 5, 6, 0, 0, 0, 0, 1, 0, 1, 0]);
    z.extend_from_slice(&(cd_len as u32).to_le_bytes());
    z.extend_from_slice(&(cd as u32).to_le_bytes());
    z.extend_from_slice(&[0, 0]);
    z
}

#[test]
fn compressed_bombs_stop_at_the_data_cap() {
    let f = Fixture::new("bomb");
    const INFLATED: usize = 64 << 20;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    zeros(&mut gz, INFLATED);
    let gz = gz.finish().unwrap();
    assert!(gz.len() < 200_000, "the fixture stays small on disk: {}", gz.len());
    std::fs::write(f.project().join("bomb.csv.gz"), &gz).unwrap();
    std::fs::write(f.project().join("bomb.txt"), &gz).unwrap();
    std::fs::write(f.project().join("bomb.npz"), npz_bomb(INFLATED)).unwrap();
    let cap = [("NNC_MAX_DATA_BYTES", "4M")];
    let sources = [
        train_file("csv(\"bomb.csv.gz\", x = 0..4, header = false)", ""),
        text_file("text(\"bomb.txt\", seq = 10, vocab = 8)"),
        train_file("npz(\"bomb.npz\")", ""),
    ];
    for source in &sources {
        let file = f.write("m.nn", source);
        let data = source.lines().find(|l| l.contains("data")).unwrap_or_default();
        let o = nnc(&f.project(), &["run", file.to_str().unwrap(), "--out", "out"], &cap);
        assert_refused(&o, 1, "E0503", data);
        assert!(
            text(&o).contains("decompresses to more than 4 MiB") && text(&o).contains("NNC_MAX_DATA_BYTES"),
            "{}",
            text(&o)
        );
    }
    // An uncompressed data file over the cap is refused before it is read.
    let file = f.write("big.csv", &"0,0,0,0\n".repeat(1 << 10));
    let nn = f.write("m.nn", &train_file("csv(\"big.csv\", x = 0..4, header = false)", ""));
    let o = nnc(&f.project(), &["run", nn.to_str().unwrap(), "--out", "out"], &[("NNC_MAX_DATA_BYTES", "4K")]);
    assert_refused(&o, 1, "E0503", "big.csv");
    // One "is", not "is is" (the reason follows "`path` is").
    assert!(text(&o).contains("is larger than 4 KiB"), "{}", text(&o));
    assert!(!text(&o).contains("is is"), "{}", text(&o));
    drop(file);
}

#[test]
fn oversized_sources_are_refused() {
    let f = Fixture::new("big-source");
    let cap = [("NNC_MAX_SOURCE_BYTES", "1K")];
    f.write("big.nn", &"// padding padding padding padding padding\n".repeat(100));
    let file = f.write("m.nn", &format!("use \"big.nn\"\n\n{MODEL}"));
    let o = nnc(&f.project(), &["check", file.to_str().unwrap()], &cap);
    assert_refused(&o, 1, "E0503", "use over the cap");
    assert!(text(&o).contains("NNC_MAX_SOURCE_BYTES"), "{}", text(&o));
    let big = f.project().join("big.nn");
    let o = nnc(&f.project(), &["check", big.to_str().unwrap()], &cap);
    assert_refused(&o, 2, "E0503", "root file over the cap");
    // The same files pass under the default cap (16 MiB).
    let o = nnc(&f.project(), &["check", file.to_str().unwrap()], &[]);
    assert_exit(&o, 0, "default cap");
}

#[test]
fn language_server_reads_only_under_the_workspace_folder() {
    let f = Fixture::new("lsp");
    f.fifo("pipe.nn");
    f.symlink(&f.dir.join("secret.nn"), "link.nn");
    let doc_uri = crate::lsp_client::uri(&f.project().join("m.nn"));
    let doc = format!(
        "use \"../secret.nn\"\nuse \"link.nn\"\nuse \"/proc/self/environ\"\nuse \"pipe.nn\"\n\n{}",
        train_file("text(\"/dev/zero\", seq = 10)", "")
    );
    let mut server = Client::start_with_env(&nnc_bin(), &f.dir.join("cache"), &[("NNC_TEST_ENV_SECRET", SECRET)]);
    server.initialize(&f.project());
    server.open(&doc_uri, &doc);
    let diagnostics = server.diagnostics(&doc_uri, None);
    let all = serde_json::to_string(&diagnostics).unwrap();
    assert!(!all.contains(SECRET) && !all.contains("hunter2"), "the server quotes a refused file:\n{all}");
    let codes: Vec<(i64, String)> = diagnostics
        .iter()
        .map(|d| (d["range"]["start"]["line"].as_i64().unwrap(), d["code"].as_str().unwrap_or("").to_string()))
        .collect();
    for (line, code) in [(0, "E0501"), (1, "E0501"), (2, "E0501"), (3, "E0502")] {
        assert!(codes.contains(&(line, code.to_string())), "line {line}: expected {code} in {codes:?}");
    }
    // `/dev/zero` lies outside the workspace folder.
    assert!(codes.iter().any(|(l, c)| *l > 4 && c == "E0501"), "{codes:?}");
    assert_eq!(server.shutdown(), Some(0), "the server did not exit cleanly");
}
