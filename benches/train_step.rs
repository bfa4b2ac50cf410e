//! Benchmark: milliseconds per training step (forward, loss, backward,
//! optimizer update) of the models in `../shared/bench/pytorch-baseline.md`,
//! through `nnc run` on synthetic data, next to PyTorch's eager numbers.
//!
//! `cargo bench --bench train_step` prints one row per model: nnc's median
//! ms/step over the second and later epochs (the first includes compiling
//! the step) on the compiled backend and on the reference executor, their
//! ratio (the JIT's speed-up), PyTorch's, and nnc/PyTorch (< 1 means nnc
//! is faster). The PyTorch
//! column was measured on the project's reference machine (2 cores of an
//! AVX-512 Xeon); compare ratios only when both ran on the same kind of
//! machine. Not a test: timings never fail CI.
//!
//! `NNC_BENCH_ONLY=lstm` runs the models whose name contains `lstm`.

#![forbid(unsafe_code)]

use std::path::Path;
use std::process::Command;

/// (name, PyTorch eager ms/step on 2 threads with the malloc settings of the
/// baseline file, batch, samples, model + train source).
fn models(examples: &Path) -> Vec<(&'static str, f64, usize, usize, String)> {
    let ex = |f: &str| examples.join(f).display().to_string();
    vec![
        (
            "mlp 784-500-10, adam",
            1.65,
            100,
            2000,
            format!(
                "use \"{}\"\ntrain t {{\n    model = Mlp()\n    data = synthetic(n = 2000, classes = 10)\n    loss = \
                    cross_entropy(logits, labels)\n    optimizer = adam()\n    batch = 100\n    epochs = 3\n}}\n",
                ex("workshop_mlp.nn")
            ),
        ),
        (
            "convnet 2×(conv5 bn relu pool), adam",
            10.8,
            100,
            1000,
            format!(
                "use \"{}\"\ntrain t {{\n    model = ConvNet()\n    data = synthetic(n = 1000, classes = 10)\n    \
                    loss = cross_entropy(logits, labels)\n    optimizer = adam()\n    batch = 100\n    epochs = 3\n\
                        }}\n",
                ex("workshop_convnet.nn")
            ),
        ),
        (
            "stacked lstm 100-100-50, T=50",
            69.0,
            150,
            900,
            format!(
                "use \"{}\"\ntrain t {{\n    model = RnnA(vocab = 10000)\n    data = synthetic(n = 900, classes = \
                    2)\n    loss = binary_cross_entropy(p, label)\n    optimizer = adam()\n    batch = 150\n    \
                        epochs = 3\n}}\n",
                ex("sentiment_lstm.nn")
            ),
        ),
        (
            "gru 128 on 28×28",
            12.6,
            100,
            1000,
            "dim N\nmodel G {\n    input x: [N, 28, 28]\n    input labels: int[N]\n    output logits = x |> gru(128) \
                |> dense(10)\n}\ntrain t {\n    model = G()\n    data = synthetic(n = 1000, classes = 10)\n    loss = \
                    cross_entropy(logits, labels)\n    optimizer = adam()\n    batch = 100\n    epochs = 3\n\
                        }\n"
            .to_string(),
        ),
        (
            "transformer (embed 32, 2 heads, ff 32, T=100)",
            33.0,
            250,
            1500,
            format!(
                "use \"{}\"\ntrain t {{\n    model = TransformerClassifier(vocab = 10000, heads = 2)\n    data = \
                    synthetic(n = 1500, classes = 2)\n    loss = binary_cross_entropy(p, label)\n    optimizer = \
                        adam()\n    batch = 250\n    epochs = 3\n}}\n",
                ex("transformer_sentiment.nn")
            ),
        ),
        (
            "dense autoencoder 784-…-784, mse",
            1.79,
            100,
            2000,
            format!(
                "use \"{}\"\ntrain t {{\n    model = DenseAutoencoder()\n    data = synthetic(n = 2000)\n    loss = \
                    mse(decoded, x)\n    optimizer = adam()\n    batch = 100\n    epochs = 3\n}}\n",
                ex("dense_autoencoder.nn")
            ),
        ),
        (
            "linear regression 2→1, sgd",
            0.097,
            20,
            4000,
            "dim N\nmodel L {\n    input x: [N, 2]\n    input y: [N, 1]\n    output prediction = dense(x, 1)\n}\n\
                train t {\n    model = L()\n    data = synthetic(n = 4000)\n    loss = mse(prediction, y)\n    \
                    optimizer = sgd()\n    batch = 20\n    epochs = 3\n}\n"
                .to_string(),
        ),
    ]
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let nnc = env!("CARGO_BIN_EXE_nnc");
    let only = std::env::var("NNC_BENCH_ONLY").ok();
    let dir = std::env::temp_dir().join(format!("nnc-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    println!("{:<40} {:>9} {:>9} {:>8} {:>9} {:>8}", "model", "jit ms", "ref ms", "speedup", "torch ms", "jit/torch");
    for (name, torch_ms, batch, n, src) in models(&root.join("examples")) {
        if only.as_deref().is_some_and(|o| !name.contains(o)) {
            continue;
        }
        let file = dir.join("bench.nn");
        std::fs::write(&file, src).expect("write model");
        let mut ms = Vec::new();
        for backend in ["jit", "reference"] {
            let out = dir.join("out");
            let o = Command::new(nnc)
                .arg("run")
                .arg(&file)
                .args(["--backend", backend, "--out"])
                .arg(&out)
                .output()
                .expect("run nnc");
            if !o.status.success() {
                println!(
                    "{name:<40} {backend} failed: {}",
                    String::from_utf8_lossy(&o.stderr).lines().last().unwrap_or("")
                );
                break;
            }
            let history = std::fs::read_to_string(out.join("history.csv")).expect("history.csv");
            let mut lines = history.lines();
            let header: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
            let col = header.iter().position(|h| *h == "seconds").expect("a seconds column");
            let steps = n.div_ceil(batch) as f64;
            let mut per_step: Vec<f64> = lines
                .skip(1)
                .filter_map(|l| l.split(',').nth(col)?.parse::<f64>().ok())
                .map(|s| s * 1000.0 / steps)
                .collect();
            per_step.sort_by(f64::total_cmp);
            let Some(&median) = per_step.get(per_step.len() / 2) else { break };
            ms.push(median);
        }
        if let [jit, reference] = ms[..] {
            println!(
                "{name:<40} {jit:>9.2} {reference:>9.2} {:>7.2}x {torch_ms:>9.2} {:>8.2}",
                reference / jit,
                jit / torch_ms
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
