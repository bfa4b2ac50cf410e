//! Memory: checked sizes of shapes, an estimate of what a run will hold
//! before it allocates anything big, and the machine's memory to compare it with.
//!
//! Why: a model of 4·10⁹ parameters used to grow for most of a minute before
//! the allocator gave up, and `dense(x, 10^18)` died with "capacity overflow".
//! `nnc run` and `nnc predict` now estimate parameters, optimizer state,
//! gradients and the activations of one step from the lowered function, and
//! refuse when that exceeds the memory the machine has (or `--max-memory`).
//! Every size here is computed with checked arithmetic: a product that does
//! not fit is a [`TooLarge`] error, never a wrapped number.

use nnc_compiler::ir::{Func, Id, Op};

/// Bytes of one value in the runtime (all values are f32 there).
const F32: u64 = 4;

/// A size that does not fit the machine's address space.
#[derive(Clone, Debug, PartialEq)]
pub struct TooLarge {
    /// What was being sized (a node, a parameter, a buffer).
    pub what: String,
    /// Its shape.
    pub shape: Vec<usize>,
}

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} of shape {:?} is too large: its size overflows this machine's address space",
            self.what, self.shape
        )
    }
}

impl std::error::Error for TooLarge {}

/// The number of elements of `shape`, if it fits a `usize`.
pub fn numel(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// Bytes of an f32 array of `shape`, if an allocation of them is possible
/// at all (Rust caps allocations at `isize::MAX` bytes).
pub fn f32_bytes(shape: &[usize]) -> Option<usize> {
    numel(shape)?.checked_mul(F32 as usize).filter(|&b| b <= isize::MAX as usize)
}

/// Elements of an f32 buffer of `shape`, or [`TooLarge`] naming `what`.
pub fn checked_len(shape: &[usize], what: impl FnOnce() -> String) -> Result<usize, TooLarge> {
    match f32_bytes(shape) {
        Some(_) => Ok(numel(shape).expect("f32_bytes checked the product")),
        None => Err(TooLarge { what: what(), shape: shape.to_vec() }),
    }
}

/// Checks that every node and parameter of `f` has an allocatable size, so
/// that no executor's allocation derived from a shape can overflow.
pub fn check_func(f: &Func) -> Result<(), TooLarge> {
    for p in &f.params {
        checked_len(&p.shape, || format!("parameter `{}`", p.name))?;
    }
    for (i, n) in f.nodes.iter().enumerate() {
        checked_len(&n.shape, || match n.layer {
            Some(l) => format!("the value of layer `{}` (node %{i})", f.layers[l as usize]),
            None => format!("node %{i}"),
        })?;
    }
    Ok(())
}

/// The peak bytes of values alive at once when `f` runs op by op for `keep`
/// (each value allocated where it is computed and freed after its last
/// reader; kept values live to the end). Parameters and reshapes (views)
/// are not counted; convolutions' patch buffers are ([`conv_scratch`]).
/// The compiled backend's memory plan stores fewer values
/// (fused kernels keep their intermediates in registers), so this is an
/// upper estimate of its arena.
pub fn peak_activations(f: &Func, keep: &[Id]) -> Result<u64, TooLarge> {
    check_func(f)?;
    let live = nnc_jit::fuse::live_nodes(f, keep);
    let mut last_use: Vec<usize> = vec![0; f.nodes.len()];
    for (i, n) in f.nodes.iter().enumerate().filter(|(i, _)| live[*i]) {
        last_use[i] = last_use[i].max(i);
        for &a in &n.args {
            last_use[a as usize] = i;
        }
    }
    for &k in keep {
        last_use[k as usize] = usize::MAX;
    }
    let mut dying: Vec<Vec<usize>> = vec![Vec::new(); f.nodes.len()];
    for (i, &l) in last_use.iter().enumerate() {
        if live[i] && l != usize::MAX {
            dying[l].push(i);
        }
    }
    let bytes = |i: usize| match f.nodes[i].op {
        Op::Param(_) | Op::Reshape => 0,
        _ => f32_bytes(&f.nodes[i].shape).expect("check_func") as u64,
    };
    let (mut now, mut peak) = (0u64, 0u64);
    for i in 0..f.nodes.len() {
        if !live[i] {
            continue;
        }
        // Sums of allocatable sizes over a bounded node count: u64 holds them,
        // but saturate rather than trust that.
        now = now.saturating_add(bytes(i));
        peak = peak.max(now);
        for &d in &dying[i] {
            now = now.saturating_sub(bytes(d));
        }
    }
    Ok(peak.saturating_add(conv_scratch(f)?))
}

/// Floats of one im2col chunk of the compiled backend's convolutions
/// (`library::CHUNK_FLOATS`): a chunk holds whole samples, at least one.
const CONV_CHUNK_FLOATS: u64 = 1 << 19;

/// Bytes of the patch (im2col) buffers of `f`'s convolutions: each keeps
/// two (one per thread) of at least one sample's patches, `pixels × taps`
/// floats, for the whole run. Checked: a product that overflows is [`TooLarge`].
pub fn conv_scratch(f: &Func) -> Result<u64, TooLarge> {
    let mut total = 0u64;
    for (i, n) in f.nodes.iter().enumerate() {
        let (w, x, out) = match &n.op {
            Op::Conv2d { window, groups: 1 } => (window, f.shape(n.args[0]), n.shape.as_slice()),
            Op::Conv2dInputGrad { window, groups: 1 } => (window, n.shape.as_slice(), f.shape(n.args[0])),
            Op::Conv2dKernelGrad { window, groups: 1 } => (window, f.shape(n.args[0]), f.shape(n.args[1])),
            // Grouped convolutions run as direct loops without patches; a
            // kernel gradient keeps one partial sum of the kernel's size.
            Op::Conv2dKernelGrad { .. } => {
                total = total.saturating_add((numel(&n.shape).unwrap_or(usize::MAX) as u64).saturating_mul(F32));
                continue;
            }
            _ => continue,
        };
        let (Some(&c), true) = (x.get(3), out.len() == 4) else { continue };
        let too_large = || TooLarge {
            what: format!("the patch matrix of convolution %{i}"),
            shape: vec![out[1], out[2], w.kernel[0], w.kernel[1], c],
        };
        let one = [out[1], out[2], w.kernel[0], w.kernel[1], c].iter().try_fold(1u64, |a, &d| a.checked_mul(d as u64));
        let one = one.ok_or_else(too_large)?;
        let floats = one.max(CONV_CHUNK_FLOATS.min(one.saturating_mul(out[0] as u64)));
        let bytes = floats.checked_mul(2 * F32).filter(|&b| b <= isize::MAX as u64).ok_or_else(too_large)?;
        total = total.saturating_add(bytes);
    }
    Ok(total)
}

/// What a run or a prediction is estimated to hold at its peak.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Estimate {
    /// Bytes of parameters (moving statistics included).
    pub params: u64,
    /// Optimizer slots (moments, accumulators); 0 for prediction.
    pub optimizer: u64,
    /// Gradients handed to the optimizer (copies of the step's outputs).
    pub gradients: u64,
    /// Values of one step alive at once, for `batch` rows.
    pub activations: u64,
    /// The batch size the activations were estimated for.
    pub batch: usize,
}

impl Estimate {
    /// The sum of all parts, in bytes (saturating).
    pub fn total(&self) -> u64 {
        self.params.saturating_add(self.optimizer).saturating_add(self.gradients).saturating_add(self.activations)
    }

    /// "parameters 1.2 GB + optimizer state 2.4 GB + …"
    pub fn breakdown(&self) -> String {
        let mut parts = vec![format!("parameters {}", human(self.params))];
        if self.optimizer > 0 {
            parts.push(format!("optimizer state {}", human(self.optimizer)));
        }
        if self.gradients > 0 {
            parts.push(format!("gradients {}", human(self.gradients)));
        }
        parts.push(format!("activations for a batch of {} {}", self.batch, human(self.activations)));
        parts.join(" + ")
    }
}

/// Bytes of f32 parameters of these shapes (checked).
pub fn param_bytes<'a>(shapes: impl IntoIterator<Item = (&'a str, &'a [usize])>) -> Result<u64, TooLarge> {
    let mut total = 0u64;
    for (name, shape) in shapes {
        let b =
            f32_bytes(shape).ok_or_else(|| TooLarge { what: format!("parameter `{name}`"), shape: shape.to_vec() })?;
        total = total.saturating_add(b as u64);
    }
    Ok(total)
}

/// Bytes as people read them: 512 B, 3.1 MB, 80.0 GB (powers of 1000, as `ls -h --si`).
pub fn human(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < units.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 { format!("{bytes} B") } else { format!("{v:.1} {}", units[u]) }
}

/// Parses `--max-memory` sizes: `800M`, `8G`, `1.5GB`, `2GiB`, `1000000` (bytes).
/// Decimal units are powers of 1000, binary ones (`Ki`, `Mi`, `Gi`, `Ti`) of 1024.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num.parse().map_err(|_| format!("`{s}` is not a size (e.g. 800M, 8G, 1.5GB)"))?;
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "ki" | "kib" => 1024.0,
        "mi" | "mib" => 1024.0 * 1024.0,
        "gi" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "ti" | "tib" => 1024.0f64.powi(4),
        other => return Err(format!("`{other}` is not a size unit (B, K, M, G, T, or KiB, MiB, GiB, TiB)")),
    };
    let bytes = value * scale;
    if !bytes.is_finite() || bytes < 1.0 || bytes >= u64::MAX as f64 {
        return Err(format!("`{s}` is not a usable memory size"));
    }
    Ok(bytes as u64)
}

/// The memory a process of this machine can use.
#[derive(Clone, Debug, PartialEq)]
pub struct Machine {
    /// Bytes that can be allocated without swapping (MemAvailable, or what
    /// the cgroup limit leaves, whichever is lower).
    pub available: u64,
    /// Bytes of physical memory.
    pub total: u64,
    /// Where `available` comes from, for the message.
    pub source: String,
}

/// Reads the machine's memory: `/proc/meminfo` and the cgroup limit of this
/// process (v2 `memory.max`, v1 `memory.limit_in_bytes`). `None` where none
/// of them can be read (not Linux): the check is then skipped.
pub fn machine() -> Option<Machine> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok();
    let field = |name: &str| -> Option<u64> {
        let text = meminfo.as_deref()?;
        let line = text.lines().find(|l| l.starts_with(name))?;
        let kb: u64 = line[name.len()..].trim_start_matches(':').split_whitespace().next()?.parse().ok()?;
        kb.checked_mul(1024)
    };
    let mut best = match (field("MemAvailable"), field("MemTotal")) {
        (Some(a), Some(t)) => Some(Machine { available: a, total: t, source: "MemAvailable".into() }),
        (None, Some(t)) => Some(Machine { available: t, total: t, source: "MemTotal".into() }),
        _ => None,
    };
    if let Some((limit, used)) = cgroup_limit() {
        let left = limit.saturating_sub(used);
        if best.as_ref().is_none_or(|m| left < m.available) {
            best = Some(Machine { available: left, total: limit, source: "the cgroup memory limit".into() });
        }
    }
    best
}

/// (limit, usage) of this process's memory cgroup, when it has a limit.
fn cgroup_limit() -> Option<(u64, u64)> {
    let read = |p: &str| std::fs::read_to_string(p).ok().and_then(|s| s.trim().parse::<u64>().ok());
    // cgroup v2: the process's own group (from /proc/self/cgroup), else the root's files.
    let own = std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|t| t.lines().find_map(|l| l.strip_prefix("0::").map(|p| p.trim().to_string())));
    let mut dirs = Vec::new();
    if let Some(p) = own {
        dirs.push(format!("/sys/fs/cgroup{}", if p == "/" { String::new() } else { p }));
    }
    dirs.push("/sys/fs/cgroup".to_string());
    for d in &dirs {
        // "max" (no limit) does not parse: no limit here.
        if let Some(limit) = read(&format!("{d}/memory.max")) {
            return Some((limit, read(&format!("{d}/memory.current")).unwrap_or(0)));
        }
    }
    // cgroup v1; an unlimited group reports a number near 2^63.
    let limit = read("/sys/fs/cgroup/memory/memory.limit_in_bytes").filter(|&l| l < (1u64 << 60))?;
    Some((limit, read("/sys/fs/cgroup/memory/memory.usage_in_bytes").unwrap_or(0)))
}

/// How a run's estimate is compared with memory (`--max-memory`, `--no-memory-check`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Limit {
    /// The machine's available memory ([`machine`]); no check where it is unknown.
    #[default]
    Machine,
    /// A fixed number of bytes.
    Bytes(u64),
    /// No check.
    Off,
}

/// Why a run was refused before it allocated.
#[derive(Clone, Debug, PartialEq)]
pub enum MemoryError {
    /// A size overflowed the address space before the estimate was made.
    TooLarge(TooLarge),
    /// The estimate exceeds the limit.
    Exceeds {
        /// What was estimated.
        estimate: Estimate,
        /// The limit in bytes (`--max-memory`, or what the machine has available).
        limit: u64,
        /// What the estimate is for ("training", "prediction").
        what: String,
    },
}

impl std::fmt::Display for MemoryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MemoryError::TooLarge(t) => write!(f, "{t}"),
            MemoryError::Exceeds { estimate, limit, what } => write!(
                f,
                "this needs about {} ({}), more than {} ({what}); use a smaller model or batch, \
                 or set the limit with --max-memory SIZE (--no-memory-check skips the check)",
                human(estimate.total()),
                estimate.breakdown(),
                human(*limit),
            ),
        }
    }
}

impl std::error::Error for MemoryError {}

impl From<TooLarge> for MemoryError {
    fn from(t: TooLarge) -> Self {
        MemoryError::TooLarge(t)
    }
}

/// Compares `estimate` with `limit`. Returns what is left of the limit for
/// the compiled programs' arenas once parameters, optimizer state and
/// gradients are held (`u64::MAX` when nothing is checked): the estimate's
/// activations are an upper estimate, so a memory plan over this cap means
/// the estimate was wrong, and the program refuses to allocate rather than
/// let the allocator abort.
pub fn check(estimate: &Estimate, limit: Limit) -> Result<u64, MemoryError> {
    let (bytes, what) = match limit {
        Limit::Off => return Ok(u64::MAX),
        Limit::Bytes(b) => (b, "the limit set by --max-memory".to_string()),
        Limit::Machine => match machine() {
            Some(m) => (
                m.available,
                format!(
                    "{} available on this machine, of {} in total, by {}",
                    human(m.available),
                    human(m.total),
                    m.source
                ),
            ),
            None => return Ok(u64::MAX),
        },
    };
    if estimate.total() > bytes {
        return Err(MemoryError::Exceeds { estimate: estimate.clone(), limit: bytes, what });
    }
    let fixed = estimate.params.saturating_add(estimate.optimizer).saturating_add(estimate.gradients);
    Ok(bytes.saturating_sub(fixed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_checked() {
        assert_eq!(numel(&[2, 3, 4]), Some(24));
        assert_eq!(numel(&[]), Some(1));
        assert_eq!(numel(&[usize::MAX, 2]), None);
        assert_eq!(f32_bytes(&[1 << 62]), None);
        assert_eq!(f32_bytes(&[10, 10]), Some(400));
        let e = checked_len(&[1_000_000_000_000_000_000, 8], || "parameter `k`".into()).unwrap_err();
        assert!(e.to_string().contains("parameter `k` of shape [1000000000000000000, 8] is too large"), "{e}");
    }

    #[test]
    fn sizes_parse_and_print() {
        assert_eq!(parse_size("8G"), Ok(8_000_000_000));
        assert_eq!(parse_size("1.5GB"), Ok(1_500_000_000));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size(" 800m "), Ok(800_000_000));
        for bad in ["", "G", "-1G", "1X", "0", "1e999", "nan"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert_eq!(human(512), "512 B");
        assert_eq!(human(80_000_000_000), "80.0 GB");
        assert_eq!(human(u64::MAX), "18.4 EB");
    }

    #[test]
    fn the_machine_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            let m = machine().expect("/proc/meminfo");
            assert!(m.available > 0 && m.available <= m.total.max(m.available), "{m:?}");
        }
    }

    #[test]
    fn an_estimate_over_the_limit_is_refused_with_its_parts() {
        let e = Estimate {
            params: 40_000_000_000,
            optimizer: 80_000_000_000,
            gradients: 40_000_000_000,
            activations: 1000,
            batch: 32,
        };
        let err = check(&e, Limit::Bytes(1_000_000_000)).unwrap_err().to_string();
        assert!(
            err.contains("about 160.0 GB")
                && err.contains("parameters 40.0 GB")
                && err.contains("optimizer state 80.0 GB"),
            "{err}"
        );
        assert!(
            err.contains("more than 1.0 GB") && err.contains("--max-memory") && err.contains("--no-memory-check"),
            "{err}"
        );
        assert!(check(&e, Limit::Off).is_ok());
    }
}
