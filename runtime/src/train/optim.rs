//! Optimizers with the exact update rules Keras 3 documents, plus weight
//! decay, gradient clipping and learning-rate schedules (docs/src/decisions.md).

use std::collections::BTreeMap;

use ndarray::{ArrayD, Zip};
use nnc_compiler::schema;
use nnc_compiler::types::{CallValue, Value};

/// The update rule and its hyper-parameters (defaults as in Keras 3).
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    /// `sgd`: stochastic gradient descent, with optional (Nesterov) momentum.
    Sgd {
        /// Momentum (0: plain SGD).
        momentum: f64,
        /// Nesterov momentum.
        nesterov: bool,
    },
    /// `adam`: Adam.
    Adam {
        /// Decay of the first-moment average.
        beta1: f64,
        /// Decay of the second-moment average.
        beta2: f64,
        /// Added to the denominator.
        epsilon: f64,
    },
    /// `adamax`: Adam with the infinity norm.
    Adamax {
        /// Decay of the first-moment average.
        beta1: f64,
        /// Decay of the infinity-norm average.
        beta2: f64,
        /// Added to the denominator.
        epsilon: f64,
    },
    /// `rmsprop`: RMSprop.
    RmsProp {
        /// Decay of the squared-gradient average.
        rho: f64,
        /// Momentum (0: none).
        momentum: f64,
        /// Added to the denominator.
        epsilon: f64,
    },
    /// `adagrad`: Adagrad.
    Adagrad {
        /// Starting value of the squared-gradient sums.
        initial_accumulator: f64,
        /// Added to the denominator.
        epsilon: f64,
    },
    /// `adadelta`: Adadelta.
    Adadelta {
        /// Decay of the running averages.
        rho: f64,
        /// Added inside the square roots.
        epsilon: f64,
    },
    /// `lion`: Lion (sign of interpolated momentum).
    Lion {
        /// Interpolation of the update's sign.
        beta1: f64,
        /// Decay of the momentum.
        beta2: f64,
    },
}

/// How the learning rate changes during training.
#[derive(Clone, Debug, PartialEq)]
pub enum Schedule {
    /// The learning rate stays as given.
    Constant,
    /// lr · factor^⌊epoch / every⌋
    StepDecay {
        /// Epochs between decays.
        every: usize,
        /// The factor applied at each decay.
        factor: f64,
    },
    /// lr · rate^(step / every)
    ExponentialDecay {
        /// The factor per `every` steps.
        rate: f64,
        /// Steps per factor (the decay is continuous: `step / every` is not rounded).
        every: usize,
    },
    /// lr · factor after `patience` epochs without improvement of the monitored value.
    ReduceOnPlateau {
        /// The factor applied when the monitored value stalls.
        factor: f64,
        /// Epochs without improvement before a decay.
        patience: usize,
    },
}

/// An optimizer as the train block declares it.
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    /// The update rule.
    pub kind: Kind,
    /// The initial learning rate.
    pub lr: f64,
    /// How the rate changes.
    pub schedule: Schedule,
    /// L2 weight decay: `wd·w` is added to the gradient of decayed weights (Lion decays the weights itself); 0: none.
    pub weight_decay: f64,
    /// Clip the global gradient norm to this, if set.
    pub clip_norm: Option<f64>,
    /// Clip each gradient element to `[-v, v]`, if set.
    pub clip_value: Option<f64>,
}

/// An option of a call: as written, else the schema's declared default (the checker
/// rejected names the schema does not declare, so a missing default is a schema bug
/// that reads as 0 rather than a panic mid-run).
fn num(c: &CallValue, name: &str) -> f64 {
    c.arg(name).and_then(Value::as_f64).or_else(|| schema::default_f64(&c.name, name)).unwrap_or(0.0)
}

impl Spec {
    /// The optimizer a train block names (`adam(lr = 1e-3)`, schedules in `lr`).
    pub fn from_value(v: Option<&Value>) -> Result<Spec, String> {
        let default_call = CallValue { name: "sgd".into(), args: vec![] };
        let c = match v {
            Some(Value::Call(c)) => c.as_ref(),
            None => &default_call,
            Some(other) => return Err(format!("`optimizer` must be a call such as adam(lr = 1e-3), found {other}")),
        };
        let default_lr = num(c, "lr");
        let (lr, schedule) = match c.arg("lr").or_else(|| c.positional(0)) {
            Some(Value::Call(s)) => {
                let base = s
                    .positional(0)
                    .and_then(Value::as_f64)
                    .or_else(|| s.arg("lr").and_then(Value::as_f64))
                    .unwrap_or(default_lr);
                let schedule = match s.name.as_str() {
                    "step_decay" => Schedule::StepDecay { every: num(s, "every") as usize, factor: num(s, "factor") },
                    "exponential_decay" => {
                        Schedule::ExponentialDecay { rate: num(s, "rate"), every: num(s, "every") as usize }
                    }
                    "reduce_on_plateau" => {
                        Schedule::ReduceOnPlateau { factor: num(s, "factor"), patience: num(s, "patience") as usize }
                    }
                    other => return Err(format!("`{other}` is not a learning-rate schedule")),
                };
                (base, schedule)
            }
            Some(v) => (v.as_f64().unwrap_or(default_lr), Schedule::Constant),
            None => (default_lr, Schedule::Constant),
        };
        let n = |name: &str| num(c, name);
        let kind = match c.name.as_str() {
            "sgd" => Kind::Sgd {
                momentum: n("momentum"),
                nesterov: match c.arg("nesterov") {
                    Some(Value::Bool(b)) => *b,
                    _ => schema::default_bool("sgd", "nesterov").unwrap_or(false),
                },
            },
            "adam" => Kind::Adam { beta1: n("beta1"), beta2: n("beta2"), epsilon: n("epsilon") },
            "adamax" => Kind::Adamax { beta1: n("beta1"), beta2: n("beta2"), epsilon: n("epsilon") },
            "rmsprop" => Kind::RmsProp { rho: n("rho"), momentum: n("momentum"), epsilon: n("epsilon") },
            "adagrad" => Kind::Adagrad { initial_accumulator: n("initial_accumulator"), epsilon: n("epsilon") },
            "adadelta" => Kind::Adadelta { rho: n("rho"), epsilon: n("epsilon") },
            "lion" => Kind::Lion { beta1: n("beta1"), beta2: n("beta2") },
            other => return Err(format!("`{other}` is not an optimizer")),
        };
        Ok(Spec {
            kind,
            lr,
            schedule,
            weight_decay: n("weight_decay"),
            clip_norm: c.arg("clip_norm").and_then(Value::as_f64),
            clip_value: c.arg("clip_value").and_then(Value::as_f64),
        })
    }

    /// Slot tensors per parameter the optimizer keeps (for memory estimates).
    pub fn slots(&self) -> usize {
        match self.kind {
            Kind::Sgd { momentum, .. } => usize::from(momentum != 0.0),
            Kind::RmsProp { momentum, .. } => 1 + usize::from(momentum > 0.0),
            Kind::Adagrad { .. } | Kind::Lion { .. } => 1,
            Kind::Adam { .. } | Kind::Adamax { .. } | Kind::Adadelta { .. } => 2,
        }
    }

    /// The optimizer's name as written in `.nn` (`adam`).
    pub fn name(&self) -> &'static str {
        match self.kind {
            Kind::Sgd { .. } => "sgd",
            Kind::Adam { .. } => "adam",
            Kind::Adamax { .. } => "adamax",
            Kind::RmsProp { .. } => "rmsprop",
            Kind::Adagrad { .. } => "adagrad",
            Kind::Adadelta { .. } => "adadelta",
            Kind::Lion { .. } => "lion",
        }
    }
}

/// Optimizer state for a list of parameters.
pub struct Optimizer {
    /// What it was made from.
    pub spec: Spec,
    /// Updates done so far (Adam's t).
    pub iterations: u64,
    /// Up to two slots per parameter name (moments, accumulators).
    slots: std::collections::HashMap<String, [Option<ArrayD<f32>>; 2]>,
    /// The schedule's current multiplier (plateau reductions).
    plateau_scale: f64,
    best: f64,
    bad_epochs: usize,
}

impl Optimizer {
    /// An optimizer with empty state (slots are created at the first step).
    pub fn new(spec: Spec) -> Optimizer {
        Optimizer {
            spec,
            iterations: 0,
            slots: Default::default(),
            plateau_scale: 1.0,
            best: f64::INFINITY,
            bad_epochs: 0,
        }
    }

    /// The learning rate for `epoch` (0-based) at the current iteration.
    pub fn lr(&self, epoch: usize) -> f64 {
        let lr = self.spec.lr;
        match self.spec.schedule {
            Schedule::Constant => lr,
            Schedule::StepDecay { every, factor } => lr * factor.powi((epoch / every.max(1)) as i32),
            Schedule::ExponentialDecay { rate, every } => lr * rate.powf(self.iterations as f64 / every.max(1) as f64),
            Schedule::ReduceOnPlateau { .. } => lr * self.plateau_scale,
        }
    }

    /// The state a resumed run needs besides the weights: the slot tensors
    /// as (slot index, parameter name, value), and the counters as strings
    /// (checkpoint metadata).
    pub fn state(&self) -> (crate::checkpoint::OptimizerSlots, BTreeMap<String, String>) {
        let mut tensors = Vec::new();
        for (name, slots) in &self.slots {
            for (k, slot) in slots.iter().enumerate() {
                if let Some(v) = slot {
                    tensors.push((k, name.clone(), v.clone()));
                }
            }
        }
        tensors.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        let mut meta = BTreeMap::new();
        meta.insert("optimizer".into(), self.spec.name().to_string());
        meta.insert("optimizer.iterations".into(), self.iterations.to_string());
        meta.insert("optimizer.plateau_scale".into(), format!("{:e}", self.plateau_scale));
        meta.insert("optimizer.best".into(), format!("{:e}", self.best));
        meta.insert("optimizer.bad_epochs".into(), self.bad_epochs.to_string());
        (tensors, meta)
    }

    /// Restores what [`Optimizer::state`] saved. The optimizer must be the
    /// same kind (its slots mean different things otherwise).
    pub fn restore(
        &mut self,
        tensors: Vec<(usize, String, ArrayD<f32>)>,
        meta: &BTreeMap<String, String>,
    ) -> Result<(), String> {
        match meta.get("optimizer") {
            Some(kind) if kind == self.spec.name() => {}
            Some(kind) => {
                return Err(format!(
                    "the checkpoint's optimizer state is {kind}'s, the train block uses {}",
                    self.spec.name()
                ));
            }
            None => return Err("the checkpoint has no optimizer state (it was not saved by `nnc run`)".into()),
        }
        let num = |k: &str| {
            meta.get(k)
                .and_then(|v| v.parse::<f64>().ok())
                .ok_or_else(|| format!("the checkpoint's `{k}` is missing or not a number"))
        };
        self.iterations = num("optimizer.iterations")? as u64;
        self.plateau_scale = num("optimizer.plateau_scale")?;
        self.best = num("optimizer.best")?;
        self.bad_epochs = num("optimizer.bad_epochs")? as usize;
        self.slots.clear();
        for (k, name, v) in tensors {
            if k > 1 {
                return Err(format!("optimizer slot {k} of `{name}` does not exist"));
            }
            self.slots.entry(name).or_insert([None, None])[k] = Some(v);
        }
        Ok(())
    }

    /// Called after each epoch with the monitored value (plateau schedules).
    pub fn end_epoch(&mut self, monitored: f64) {
        if let Schedule::ReduceOnPlateau { factor, patience } = self.spec.schedule {
            if monitored < self.best - 1e-12 {
                self.best = monitored;
                self.bad_epochs = 0;
            } else {
                self.bad_epochs += 1;
                if self.bad_epochs > patience {
                    self.plateau_scale *= factor;
                    self.bad_epochs = 0;
                }
            }
        }
    }

    /// One update. `decay[i]` says whether weight decay applies to parameter
    /// i (kernels and embeddings only). Gradients are modified in place by
    /// decay and clipping.
    // long: one match arm per optimizer's update rule, after the shared decay and clipping (a table).
    pub fn step(
        &mut self,
        names: &[String],
        params: &mut [&mut ArrayD<f32>],
        grads: &mut [ArrayD<f32>],
        decay: &[bool],
        epoch: usize,
    ) {
        let wd = self.spec.weight_decay;
        // Lion decays the weights itself, outside the sign (Keras 3); the others add wd·w to the gradient.
        let decoupled = matches!(self.spec.kind, Kind::Lion { .. });
        if wd != 0.0 && !decoupled {
            for ((g, p), d) in grads.iter_mut().zip(params.iter()).zip(decay) {
                if *d {
                    Zip::from(g).and(&**p).for_each(|g, &w| *g += wd as f32 * w);
                }
            }
        }
        if let Some(c) = self.spec.clip_value {
            for g in grads.iter_mut() {
                g.mapv_inplace(|v| v.clamp(-c as f32, c as f32));
            }
        }
        if let Some(c) = self.spec.clip_norm {
            let norm =
                grads.iter().map(|g| g.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>()).sum::<f64>().sqrt();
            if norm > c {
                let s = (c / norm) as f32;
                for g in grads.iter_mut() {
                    g.mapv_inplace(|v| v * s);
                }
            }
        }
        let lr = self.lr(epoch);
        self.iterations += 1;
        let t = self.iterations as f64;
        for (i, (p, g)) in params.iter_mut().zip(grads.iter()).enumerate() {
            let slots = self.slots.entry(names[i].clone()).or_insert([None, None]);
            let zeros = || ArrayD::<f32>::zeros(g.raw_dim());
            match self.spec.kind {
                Kind::Sgd { momentum, nesterov } => {
                    if momentum == 0.0 {
                        Zip::from(&mut **p).and(g).for_each(|w, &g| *w -= (lr as f32) * g);
                    } else {
                        let v = slots[0].get_or_insert_with(zeros);
                        let (m, lr) = (momentum as f32, lr as f32);
                        Zip::from(&mut **p).and(v).and(g).for_each(|w, v, &g| {
                            *v = m * *v - lr * g;
                            *w += if nesterov { m * *v - lr * g } else { *v };
                        });
                    }
                }
                Kind::Adam { beta1, beta2, epsilon } => {
                    let alpha = (lr * (1.0 - beta2.powf(t)).sqrt() / (1.0 - beta1.powf(t))) as f32;
                    let (b1, b2, eps) = (beta1 as f32, beta2 as f32, epsilon as f32);
                    let [m, v] = slots;
                    let (m, v) = (m.get_or_insert_with(zeros), v.get_or_insert_with(zeros));
                    let update = |w: &mut f32, m: &mut f32, v: &mut f32, g: f32| {
                        *m += (1.0 - b1) * (g - *m);
                        *v += (1.0 - b2) * (g * g - *v);
                        *w -= alpha * *m / (v.sqrt() + eps);
                    };
                    match (p.as_slice_mut(), m.as_slice_mut(), v.as_slice_mut(), g.as_slice()) {
                        // One pass over the four arrays, in two halves on two threads when large.
                        (Some(w), Some(m), Some(v), Some(g)) => in_halves(w, m, v, g, &update),
                        _ => Zip::from(&mut **p).and(m).and(v).and(g).for_each(|w, m, v, &g| update(w, m, v, g)),
                    }
                }
                Kind::Adamax { beta1, beta2, epsilon } => {
                    let (b1, b2, eps) = (beta1 as f32, beta2 as f32, epsilon as f32);
                    let step = (lr / (1.0 - beta1.powf(t))) as f32;
                    let [m, u] = slots;
                    let (m, u) = (m.get_or_insert_with(zeros), u.get_or_insert_with(zeros));
                    Zip::from(&mut **p).and(m).and(u).and(g).for_each(|w, m, u, &g| {
                        *m += (1.0 - b1) * (g - *m);
                        *u = (b2 * *u).max(g.abs());
                        *w -= step * *m / (*u + eps);
                    });
                }
                Kind::RmsProp { rho, momentum, epsilon } => {
                    let (rho, eps, lr) = (rho as f32, epsilon as f32, lr as f32);
                    let [v, m] = slots;
                    let v = v.get_or_insert_with(zeros);
                    if momentum > 0.0 {
                        let mo = momentum as f32;
                        let m = m.get_or_insert_with(zeros);
                        Zip::from(&mut **p).and(v).and(m).and(g).for_each(|w, v, m, &g| {
                            *v = rho * *v + (1.0 - rho) * g * g;
                            *m = mo * *m + lr * g / (*v + eps).sqrt();
                            *w -= *m;
                        });
                    } else {
                        Zip::from(&mut **p).and(v).and(g).for_each(|w, v, &g| {
                            *v = rho * *v + (1.0 - rho) * g * g;
                            *w -= lr * g / (*v + eps).sqrt();
                        });
                    }
                }
                Kind::Adagrad { initial_accumulator, epsilon } => {
                    let (eps, lr) = (epsilon as f32, lr as f32);
                    let acc =
                        slots[0].get_or_insert_with(|| ArrayD::from_elem(g.raw_dim(), initial_accumulator as f32));
                    Zip::from(&mut **p).and(acc).and(g).for_each(|w, a, &g| {
                        *a += g * g;
                        *w -= lr * g / (*a + eps).sqrt();
                    });
                }
                Kind::Lion { beta1, beta2 } => {
                    let (b1, b2, lr) = (beta1 as f32, beta2 as f32, lr as f32);
                    let wd = if decay[i] { wd as f32 } else { 0.0 };
                    let m = slots[0].get_or_insert_with(zeros);
                    Zip::from(&mut **p).and(m).and(g).for_each(|w, m, &g| {
                        let u = b1 * *m + (1.0 - b1) * g;
                        // sign(0) = 0, as Keras's ops.sign.
                        let s = if u > 0.0 {
                            1.0
                        } else if u < 0.0 {
                            -1.0
                        } else {
                            0.0
                        };
                        *w -= lr * (s + wd * *w);
                        *m = b2 * *m + (1.0 - b2) * g;
                    });
                }
                Kind::Adadelta { rho, epsilon } => {
                    let (rho, eps, lr) = (rho as f32, epsilon as f32, lr as f32);
                    let [ag, ad] = slots;
                    let (ag, ad) = (ag.get_or_insert_with(zeros), ad.get_or_insert_with(zeros));
                    Zip::from(&mut **p).and(ag).and(ad).and(g).for_each(|w, a, d, &g| {
                        *a = rho * *a + (1.0 - rho) * g * g;
                        let delta = (*d + eps).sqrt() / (*a + eps).sqrt() * g;
                        *d = rho * *d + (1.0 - rho) * delta * delta;
                        *w -= lr * delta;
                    });
                }
            }
        }
    }
}

/// Elements below which an update stays on one thread.
const PARALLEL_UPDATE: usize = 1 << 16;

/// Applies `f` to every element of four equally long slices, split in two
/// halves on two threads (`crate::pair`) when they are long.
fn in_halves(
    w: &mut [f32],
    m: &mut [f32],
    v: &mut [f32],
    g: &[f32],
    f: &(impl Fn(&mut f32, &mut f32, &mut f32, f32) + Sync),
) {
    let serial = |w: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32]| {
        for (((w, m), v), &g) in w.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()).zip(g) {
            f(w, m, v, g);
        }
    };
    if w.len() >= PARALLEL_UPDATE && crate::pair::parallel() {
        let h = w.len() / 2;
        let (w0, w1) = w.split_at_mut(h);
        let (m0, m1) = m.split_at_mut(h);
        let (v0, v1) = v.split_at_mut(h);
        let (g0, g1) = g.split_at(h);
        crate::pair::join(|| serial(w0, m0, v0, g0), || serial(w1, m1, v1, g1));
    } else {
        serial(w, m, v, g);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::arr1;

    fn spec(kind: Kind, lr: f64) -> Spec {
        Spec { kind, lr, schedule: Schedule::Constant, weight_decay: 0.0, clip_norm: None, clip_value: None }
    }

    fn one_step(kind: Kind, lr: f64, w: f32, g: f32, steps: usize) -> f32 {
        let mut p = arr1(&[w]).into_dyn();
        let mut o = Optimizer::new(spec(kind, lr));
        for _ in 0..steps {
            let mut grads = vec![arr1(&[g]).into_dyn()];
            o.step(&["w".into()], &mut [&mut p], &mut grads, &[false], 0);
        }
        p[[0]]
    }

    #[test]
    fn sgd_and_momentum_follow_keras() {
        assert!((one_step(Kind::Sgd { momentum: 0.0, nesterov: false }, 0.1, 1.0, 2.0, 1) - 0.8).abs() < 1e-7);
        // v1 = −0.2, w = 0.8; v2 = 0.9·(−0.2) − 0.2 = −0.38, w = 0.42
        assert!((one_step(Kind::Sgd { momentum: 0.9, nesterov: false }, 0.1, 1.0, 2.0, 2) - 0.42).abs() < 1e-6);
        // Nesterov: w += m·v − lr·g: step 1: 1 + 0.9·(−0.2) − 0.2 = 0.62
        assert!((one_step(Kind::Sgd { momentum: 0.9, nesterov: true }, 0.1, 1.0, 2.0, 1) - 0.62).abs() < 1e-6);
    }

    #[test]
    fn adam_first_step_is_lr_times_sign() {
        let w = one_step(Kind::Adam { beta1: 0.9, beta2: 0.999, epsilon: 1e-7 }, 1e-3, 1.0, 0.5, 1);
        assert!((w - (1.0 - 1e-3)).abs() < 1e-6, "{w}");
    }

    #[test]
    fn adagrad_uses_initial_accumulator() {
        // acc = 0.1 + 4 = 4.1; w = 1 − 0.1·2/√4.1
        let w = one_step(Kind::Adagrad { initial_accumulator: 0.1, epsilon: 1e-7 }, 0.1, 1.0, 2.0, 1);
        assert!((w as f64 - (1.0 - 0.2 / 4.1f64.sqrt())).abs() < 1e-6);
    }

    #[test]
    fn lion_follows_its_update_rule() {
        // m0 = 0, g = 0.5: u = 0.1·0.5 → sign 1; w = 1 − 0.1·1 = 0.9; m1 = 0.01·0.5 = 0.005.
        // g = −0.2: u = 0.9·0.005 + 0.1·(−0.2) = −0.0155 → sign −1; w = 0.9 + 0.1 = 1.0.
        let kind = Kind::Lion { beta1: 0.9, beta2: 0.99 };
        let spec = |lr| spec(kind.clone(), lr);
        let mut p = arr1(&[1.0f32]).into_dyn();
        let mut o = Optimizer::new(spec(0.1));
        o.step(&["w".into()], &mut [&mut p], &mut [arr1(&[0.5f32]).into_dyn()], &[false], 0);
        assert!((p[[0]] - 0.9).abs() < 1e-6, "{}", p[[0]]);
        o.step(&["w".into()], &mut [&mut p], &mut [arr1(&[-0.2f32]).into_dyn()], &[false], 0);
        assert!((p[[0]] - 1.0).abs() < 1e-6, "{}", p[[0]]);
        // Decoupled decay, outside the sign: w = 2 − 0.1·(1 + 0.5·2) = 1.8 (with decay on).
        let mut o = Optimizer::new(Spec { weight_decay: 0.5, ..spec(0.1) });
        let mut p = arr1(&[2.0f32]).into_dyn();
        o.step(&["w".into()], &mut [&mut p], &mut [arr1(&[3.0f32]).into_dyn()], &[true], 0);
        assert!((p[[0]] - 1.8).abs() < 1e-6, "{}", p[[0]]);
    }

    #[test]
    fn defaults_come_from_the_schema() {
        let call = |name: &str| Value::Call(std::rc::Rc::new(CallValue { name: name.into(), args: vec![] }));
        let adam = Spec::from_value(Some(&call("adam"))).unwrap();
        assert_eq!(adam.kind, Kind::Adam { beta1: 0.9, beta2: 0.999, epsilon: 1e-7 });
        assert_eq!(adam.lr, 1e-3);
        assert_eq!(Spec::from_value(None).unwrap().lr, 0.01);
        let lion = Spec::from_value(Some(&call("lion"))).unwrap();
        assert_eq!((lion.kind, lion.lr), (Kind::Lion { beta1: 0.9, beta2: 0.99 }, 1e-3));
    }

    #[test]
    fn clipping_and_schedules() {
        let mut o =
            Optimizer::new(Spec { clip_norm: Some(1.0), ..spec(Kind::Sgd { momentum: 0.0, nesterov: false }, 1.0) });
        let mut p = arr1(&[0.0f32, 0.0]).into_dyn();
        let mut g = vec![arr1(&[3.0f32, 4.0]).into_dyn()];
        o.step(&["w".into()], &mut [&mut p], &mut g, &[false], 0);
        assert!((p[[0]] + 0.6).abs() < 1e-6 && (p[[1]] + 0.8).abs() < 1e-6);
        let o = Optimizer::new(Spec {
            schedule: Schedule::StepDecay { every: 10, factor: 0.5 },
            ..spec(Kind::Sgd { momentum: 0.0, nesterov: false }, 0.1)
        });
        assert!((o.lr(25) - 0.025).abs() < 1e-12);
    }
}
