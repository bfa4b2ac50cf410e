//! The runtime's one pseudo-random generator: xoshiro256** seeded through
//! SplitMix64. Data shuffling, validation splits, synthetic data, and (for the
//! training code) initialisers and dropout draw from it, so a seed reproduces
//! a run bit for bit on every platform.
//!
//! Why our own generator rather than a crate: the sequence must never change
//! under us (a dependency update that changed `rand`'s algorithms would
//! silently change every seeded run), and the whole thing is forty lines.

/// A seeded generator (xoshiro256**, Blackman & Vigna).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rng {
    s: [u64; 4],
    /// The second value of the last Box–Muller pair, returned by the next
    /// `normal_f32` call (the transform produces two normals per draw).
    spare: Option<u32>,
}

/// One SplitMix64 step: used to expand a 64-bit seed into xoshiro's 256-bit
/// state (its authors' recommendation: nearby seeds give unrelated streams,
/// and the all-zero state, which xoshiro cannot leave, never occurs).
fn splitmix64(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    /// A generator seeded with `seed` (expanded by SplitMix64, so any seed, 0 included, is fine).
    pub fn new(seed: u64) -> Rng {
        let mut x = seed;
        let s = [splitmix64(&mut x), splitmix64(&mut x), splitmix64(&mut x), splitmix64(&mut x)];
        Rng { s, spare: None }
    }

    /// A generator for the thing called `name` (a parameter) under a
    /// stream: [`Rng::derive`] with the name hashed (FNV-1a, fixed forever
    /// unlike `std`'s hasher). A parameter's initial value then depends on
    /// the seed and its name only, not on which other parameters exist or
    /// were loaded from a checkpoint.
    pub fn derive_named(seed: u64, stream: u64, name: &str) -> Rng {
        let hash =
            name.bytes().fold(0xCBF2_9CE4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3));
        Rng::derive(seed, stream ^ hash)
    }

    /// An independent generator for a sub-task (an epoch, a layer, a data
    /// source), derived from a seed and a stream number. Deriving instead of
    /// continuing one stream keeps, say, epoch 3's shuffle the same whether
    /// or not epochs 1 and 2 were run in this process.
    pub fn derive(seed: u64, stream: u64) -> Rng {
        let mut x = seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03);
        let mixed = splitmix64(&mut x);
        Rng::new(mixed ^ stream)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1) with 24 random bits: every value is an exact f32.
    pub fn uniform_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 * (1.0 / (1u64 << 24) as f32)
    }

    /// Uniform in [0, 1) with 53 random bits.
    pub fn uniform_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in [0, n) without modulo bias (Lemire's
    /// multiply-and-reject). `n = 0` returns 0.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        let threshold = n.wrapping_neg() % n;
        loop {
            let m = (self.next_u64() as u128) * (n as u128);
            if (m as u64) >= threshold {
                return (m >> 64) as u64;
            }
        }
    }

    /// Standard normal by the Box–Muller transform. Computed in f64 and
    /// rounded: `ln` and `cos` come from the platform's libm, which may
    /// differ in the last f64 bit between systems; rounding to f32 hides
    /// that except in the rare case of a value sitting on an f32 rounding
    /// boundary, so draws agree bit for bit in practice.
    pub fn normal_f32(&mut self) -> f32 {
        if let Some(bits) = self.spare.take() {
            return f32::from_bits(bits);
        }
        // 1 − u lies in (0, 1], so the logarithm is finite.
        let u1 = 1.0 - self.uniform_f64();
        let u2 = self.uniform_f64();
        let r = (-2.0 * u1.ln()).sqrt();
        let theta = std::f64::consts::TAU * u2;
        self.spare = Some(((r * theta.sin()) as f32).to_bits());
        (r * theta.cos()) as f32
    }

    /// Standard normal in f64 by Box–Muller, for initialisers (which draw
    /// in f64 and round once to f32). Uses one value of each pair: the
    /// spare slot belongs to [`Rng::normal_f32`], and initialisation is not
    /// hot enough to be worth a second one.
    pub fn normal_f64(&mut self) -> f64 {
        // 1 − u lies in (0, 1], so the logarithm is finite.
        let u1 = 1.0 - self.uniform_f64();
        let u2 = self.uniform_f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Standard normal redrawn until it lies within two standard deviations
    /// (Keras's `truncated_normal`).
    pub fn truncated_normal_f64(&mut self) -> f64 {
        loop {
            let v = self.normal_f64();
            if v.abs() <= 2.0 {
                return v;
            }
        }
    }

    /// Fisher–Yates shuffle in place.
    pub fn shuffle<T>(&mut self, xs: &mut [T]) {
        for i in (1..xs.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            xs.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_is_pinned() {
        // These values pin the algorithm: a change here changes every seeded
        // run, so it must be deliberate. SplitMix64(0)'s first output is the
        // published 0xE220A8397B1DCDAF.
        let mut x = 0u64;
        assert_eq!(splitmix64(&mut x), 0xE220_A839_7B1D_CDAF);
        let mut r = Rng::new(42);
        let first: Vec<u64> = (0..3).map(|_| r.next_u64()).collect();
        assert_eq!(first, [0x1578_0b2e_0c2e_c716, 0x6104_d986_6d11_3a7e, 0xae17_5332_39e4_99a1]);
        let mut r = Rng::new(42);
        let normals: Vec<u32> = (0..3).map(|_| r.normal_f32().to_bits()).collect();
        assert_eq!(normals, [0xbe9b_454c, 0x3e93_b142, 0x3fac_0206]);
        assert_eq!(r.uniform_f32().to_bits(), 0x3f7d_e6dc);
        assert_ne!(Rng::new(42).next_u64(), Rng::new(43).next_u64());
    }

    #[test]
    fn xoshiro_matches_the_reference_implementation() {
        // Reference: xoshiro256** from state [1, 2, 3, 4] gives 11520, 0,
        // 1509978240, 1215971899390074240 (the authors' C code).
        let mut r = Rng { s: [1, 2, 3, 4], spare: None };
        let got: Vec<u64> = (0..4).map(|_| r.next_u64()).collect();
        assert_eq!(got, vec![11520, 0, 1509978240, 1215971899390074240]);
    }

    #[test]
    fn uniform_and_normal_moments() {
        let mut r = Rng::new(7);
        let n = 200_000;
        let u: Vec<f32> = (0..n).map(|_| r.uniform_f32()).collect();
        assert!(u.iter().all(|&v| (0.0..1.0).contains(&v)));
        let mean = u.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
        assert!((mean - 0.5).abs() < 0.005, "{mean}");
        let z: Vec<f64> = (0..n).map(|_| r.normal_f32() as f64).collect();
        let m = z.iter().sum::<f64>() / n as f64;
        let var = z.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / n as f64;
        assert!(m.abs() < 0.01 && (var - 1.0).abs() < 0.02, "mean {m} var {var}");
        assert!(z.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn below_is_in_range_and_roughly_even() {
        let mut r = Rng::new(1);
        let mut counts = [0usize; 7];
        for _ in 0..70_000 {
            counts[r.below(7) as usize] += 1;
        }
        assert!(counts.iter().all(|&c| (9_400..10_600).contains(&c)), "{counts:?}");
        assert_eq!(r.below(0), 0);
        assert_eq!(r.below(1), 0);
    }

    #[test]
    fn shuffle_is_a_seeded_permutation() {
        let mut a: Vec<usize> = (0..100).collect();
        let mut b = a.clone();
        Rng::new(5).shuffle(&mut a);
        Rng::new(5).shuffle(&mut b);
        assert_eq!(a, b);
        assert_ne!(a, (0..100).collect::<Vec<_>>());
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn f64_normals_and_truncation() {
        let mut r = Rng::new(11);
        let n = 100_000;
        let z: Vec<f64> = (0..n).map(|_| r.normal_f64()).collect();
        let m = z.iter().sum::<f64>() / n as f64;
        let var = z.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / n as f64;
        assert!(m.abs() < 0.01 && (var - 1.0).abs() < 0.02, "mean {m} var {var}");
        let t: Vec<f64> = (0..n).map(|_| r.truncated_normal_f64()).collect();
        assert!(t.iter().all(|v| v.abs() <= 2.0));
        // The variance of a standard normal truncated at ±2 is 0.7737.
        let tv = t.iter().map(|v| v * v).sum::<f64>() / n as f64;
        assert!((tv - 0.7737).abs() < 0.01, "{tv}");
    }

    #[test]
    fn named_streams_depend_on_the_name_only() {
        assert_eq!(Rng::derive_named(3, 1, "h.dense.kernel"), Rng::derive_named(3, 1, "h.dense.kernel"));
        assert_ne!(
            Rng::derive_named(3, 1, "h.dense.kernel").next_u64(),
            Rng::derive_named(3, 1, "h.dense.bias").next_u64()
        );
        assert_ne!(Rng::derive_named(3, 1, "a").next_u64(), Rng::derive_named(4, 1, "a").next_u64());
        // Pinned: FNV-1a of "" is its offset basis.
        assert_eq!(Rng::derive_named(3, 1, ""), Rng::derive(3, 1 ^ 0xCBF2_9CE4_8422_2325));
    }

    #[test]
    fn derived_streams_differ() {
        let a = Rng::derive(1, 0).next_u64();
        let b = Rng::derive(1, 1).next_u64();
        let c = Rng::derive(2, 0).next_u64();
        assert!(a != b && a != c && b != c);
        assert_eq!(Rng::derive(1, 1), Rng::derive(1, 1));
    }
}
