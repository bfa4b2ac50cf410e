//! `train.py`: a train block as Keras 3 code. The block's whole graph — data arrays, its `let`s, the
//! model, its losses and metrics, class weights included — is one Keras model (`build_train_<block>` in
//! model.py, the same generator as the model itself), so the loss Keras minimises is nnc's formula for
//! formula. `train.py` trains it with `fit()` and a custom `train_step` (JAX: gradients of the `loss`
//! output, the optimizer mapped from the block's), under `keras.distribution.DataParallel`.

use std::collections::HashMap;

use nnc_compiler::check::train::TrainInfo;
use nnc_runtime::train::optim::{Kind, Schedule, Spec};

use super::{ModelSource, Refusal, Unexportable, py};
use crate::run::BlockData;

/// The files of a train block's export.
pub(crate) struct TrainFiles {
    /// `train.py`.
    pub train_py: String,
    /// `README.md`.
    pub readme: String,
}

/// The Keras name of the training graph of block `block`.
pub(crate) fn graph_name(block: &str) -> String {
    format!("train_{}", super::ident(block))
}

/// The training graph of a single-model block: data arrays in, `loss` and the metrics out.
pub(crate) fn training_source<'a>(info: &'a TrainInfo, data: &BlockData) -> Option<ModelSource<'a>> {
    let loss = info.loss?;
    let mut outputs = vec![("loss".to_string(), loss)];
    outputs.extend(info.metrics.iter().cloned());
    let subst: HashMap<u32, nnc_compiler::graph::TRef> = info
        .feeds
        .iter()
        .filter_map(|(name, r)| info.model_inputs.iter().find(|(m, _)| m == name).map(|(_, inp)| (inp.node, *r)))
        .collect();
    let mut s = ModelSource::plain(
        graph_name(&info.name),
        Some(format!("The train block `{}`: its data arrays in, its loss and metrics out.", info.name)),
        &info.graph,
        Vec::new(),
        outputs,
        String::new(),
    );
    s.subst = subst;
    s.named_outputs = true;
    s.class_weights = data.cfg.class_weights.clone();
    s.trainer = true;
    Some(s)
}

/// The training graphs of a block of alternating steps (a GAN): one model per step, the step's loss out,
/// layers shared; each step's own models in training mode, the others in inference mode (as nnc runs them).
pub(crate) fn step_sources<'a>(info: &'a TrainInfo, data: &BlockData) -> Vec<ModelSource<'a>> {
    let mut out = Vec::new();
    for s in &info.steps {
        let Some(loss) = s.loss else { continue };
        let mut src = ModelSource::plain(
            format!("{}_{}", graph_name(&info.name), super::ident(&s.name)),
            Some(format!(
                "Step `{}` of the train block `{}`: its loss, over {}.",
                s.name,
                info.name,
                s.over.join(", ")
            )),
            &info.graph,
            Vec::new(),
            vec![("loss".to_string(), loss)],
            String::new(),
        );
        src.named_outputs = true;
        src.class_weights = data.cfg.class_weights.clone();
        src.step_over = Some(s.over.iter().map(|m| format!("{m}.")).collect());
        src.trainer = true;
        out.push(src);
    }
    out
}

fn refuse(info: &TrainInfo, why: String) -> Unexportable {
    Unexportable {
        what: format!("train block `{}`", info.name),
        refusal: Refusal { option: None, why },
        origin: nnc_compiler::types::Origin { file: info.file, span: info.span },
        option_origin: None,
    }
}

/// Keras's optimizer for nnc's (the update rules are Keras's already; `tests/oracle` checks them). nnc's
/// `weight_decay` (other than Lion's, which Keras decays the same way) adds wd·w to the gradients of kernels
/// and embeddings before clipping and the update: `train.py` does that itself ([`decay`]).
pub(crate) fn optimizer(spec: &Spec, info: &TrainInfo) -> Result<String, Unexportable> {
    let f = py::float;
    let mut args = Vec::new();
    let lr = match spec.schedule {
        Schedule::ExponentialDecay { rate, every } => format!(
            "keras.optimizers.schedules.ExponentialDecay({}, decay_steps={every}, decay_rate={})",
            f(spec.lr),
            f(rate)
        ),
        _ => f(spec.lr),
    };
    args.push(format!("learning_rate={lr}"));
    let class = match spec.kind {
        Kind::Sgd { momentum, nesterov } => {
            args.push(format!("momentum={}, nesterov={}", f(momentum), if nesterov { "True" } else { "False" }));
            "SGD"
        }
        Kind::Adam { beta1, beta2, epsilon } | Kind::Adamax { beta1, beta2, epsilon } => {
            args.push(format!("beta_1={}, beta_2={}, epsilon={}", f(beta1), f(beta2), f(epsilon)));
            if matches!(spec.kind, Kind::Adam { .. }) { "Adam" } else { "Adamax" }
        }
        Kind::RmsProp { rho, momentum, epsilon } => {
            args.push(format!("rho={}, momentum={}, epsilon={}", f(rho), f(momentum), f(epsilon)));
            "RMSprop"
        }
        Kind::Adagrad { initial_accumulator, epsilon } => {
            args.push(format!("initial_accumulator_value={}, epsilon={}", f(initial_accumulator), f(epsilon)));
            "Adagrad"
        }
        Kind::Adadelta { rho, epsilon } => {
            args.push(format!("rho={}, epsilon={}", f(rho), f(epsilon)));
            "Adadelta"
        }
        Kind::Lion { beta1, beta2 } => {
            args.push(format!("beta_1={}, beta_2={}", f(beta1), f(beta2)));
            if spec.weight_decay != 0.0 {
                args.push(format!("weight_decay={}", f(spec.weight_decay)));
            }
            "Lion"
        }
    };
    match (spec.clip_norm, spec.clip_value) {
        (Some(_), Some(_)) => {
            return Err(refuse(info, "Keras's optimizers take one of clip_norm and clip_value, not both".into()));
        }
        (Some(n), None) => args.push(format!("global_clipnorm={}", f(n))),
        (None, Some(v)) => args.push(format!("clipvalue={}", f(v))),
        (None, None) => {}
    }
    Ok(format!("keras.optimizers.{class}({})", args.join(", ")))
}

/// The coupled weight decay `train.py` adds to the gradients (0 for Lion, whose optimizer decays).
fn decay(spec: &Spec) -> f64 {
    if matches!(spec.kind, Kind::Lion { .. }) { 0.0 } else { spec.weight_decay }
}

/// Callbacks for the schedule and early stopping, as Python list items.
fn callbacks(spec: &Spec, data: &BlockData) -> Vec<String> {
    let mut out = Vec::new();
    match spec.schedule {
        Schedule::StepDecay { every, factor } => out.push(format!(
            "keras.callbacks.LearningRateScheduler(lambda epoch: {} * {} ** (epoch // {every}))",
            py::float(spec.lr),
            py::float(factor)
        )),
        Schedule::ReduceOnPlateau { factor, patience } => out.push(format!(
            "keras.callbacks.ReduceLROnPlateau(monitor=\"val_loss\", factor={}, patience={patience})",
            py::float(factor)
        )),
        _ => {}
    }
    if let Some((patience, monitor)) = &data.cfg.early_stop {
        out.push(format!(
            "keras.callbacks.EarlyStopping(monitor={}, patience={patience}, restore_best_weights=True)",
            py::string(monitor)
        ));
    }
    out
}

/// `train.py` and the README for the train block `info` (its models in `models`).
pub(crate) fn train_py(
    info: &TrainInfo,
    models: &[ModelSource],
    data: &BlockData,
    source: &str,
) -> Result<TrainFiles, Unexportable> {
    let cfg = &data.cfg;
    if matches!(info.field("stateful"), Some(nnc_compiler::types::Value::Bool(true))) {
        // Keras's stateful layers keep per-batch states in the layer, for a fixed batch size and no
        // data parallelism; nnc carries them through its own batch order. Another training rule: refused.
        return Err(refuse(
            info,
            "`stateful = true` carries recurrent states across batches in nnc's order; \
            train.py splits batches across devices"
                .into(),
        ));
    }
    let mut opts = Vec::new();
    let mut decays = Vec::new();
    if info.steps.is_empty() {
        opts.push(("loss".to_string(), optimizer(&cfg.optimizer, info)?));
        decays.push(format!("\"loss\": {}", py::float(decay(&cfg.optimizer))));
    } else {
        for s in &info.steps {
            let spec = Spec::from_value(Some(&s.optimizer)).map_err(|e| refuse(info, e))?;
            opts.push((s.name.clone(), optimizer(&spec, info)?));
            decays.push(format!("{}: {}", py::string(&s.name), py::float(decay(&spec))));
        }
    }
    let graph = graph_name(&info.name);
    let steps: Vec<String> = if info.steps.is_empty() {
        vec![format!("(\"loss\", {}, 1, [])", py::string(&graph))]
    } else {
        info.steps
            .iter()
            .map(|s| {
                let over: Vec<String> = s.over.iter().map(|m| py::string(&format!("{m}."))).collect();
                format!(
                    "({}, {}, {}, [{}])",
                    py::string(&s.name),
                    py::string(&format!("{graph}_{}", super::ident(&s.name))),
                    s.times.max(1),
                    over.join(", ")
                )
            })
            .collect()
    };
    let optimizers: Vec<String> = opts.iter().map(|(n, o)| format!("    {}: lambda: {o},", py::string(n))).collect();
    let iterations = match info.field("steps") {
        Some(nnc_compiler::types::Value::Int(d)) => d.as_known().unwrap_or(0),
        _ => 0,
    };
    let models_list: Vec<String> = models.iter().map(|m| py::string(&m.name)).collect();
    let mut text = format!(
        "\"\"\"Train block `{block}` of {source} as Keras 3 on JAX, generated by `nnc export --to keras`.\n\n\
         Data-parallel over every device (keras.distribution.DataParallel); several hosts join through\n\
         jax.distributed.initialize() when the standard variables are set (see README.md).\n\n\
         python train.py                      # train on data/ (written by `nnc export --data`)\n\
         python train.py --one-step BATCH     # one step on a safetensors batch (tests)\n\"\"\"\n",
        block = info.name
    );
    text.push_str(TRAIN_HEAD);
    text.push_str(&format!(
        "\nBLOCK = {}\nBATCH = {}\nEPOCHS = {}\nITERATIONS = {iterations}\nSEED = {}\nSHUFFLE = {}\nMODELS = [{}]\n",
        py::string(&info.name),
        cfg.batch,
        cfg.epochs,
        cfg.seed,
        if cfg.shuffle { "True" } else { "False" },
        models_list.join(", ")
    ));
    text.push_str(
        "# The block's optimizers (one per step), as functions: each step needs its own state.\nOPTIMIZERS = {\n",
    );
    text.push_str(&optimizers.join("\n"));
    text.push_str(&format!(
        "\n}}\n# nnc's weight decay: wd·w added to the gradients of kernels and embeddings.\nDECAY = {{{}}}\n",
        decays.join(", ")
    ));
    text.push_str(
        "# (step, training graph in model.py, times per batch, prefixes of the layers it updates)\nSTEPS = [",
    );
    text.push_str(&steps.join(", "));
    text.push_str(&format!("]\nGRAPH = {}\n", py::string(&graph)));
    let outputs: Vec<String> =
        std::iter::once("loss").chain(info.metrics.iter().map(|(n, _)| n.as_str())).map(py::string).collect();
    text.push_str(&format!(
        "# The training graph's outputs: the loss, then the metrics.\nOUTPUTS = [{}]\n",
        outputs.join(", ")
    ));
    text.push_str("\n\ndef callbacks():\n    return [");
    text.push_str(&callbacks(&cfg.optimizer, data).join(", "));
    text.push_str("]\n");
    text.push_str(TRAIN_BODY);
    Ok(TrainFiles { train_py: text, readme: readme(info, source) })
}

fn readme(info: &TrainInfo, source: &str) -> String {
    README.replace("{block}", &info.name).replace("{source}", source)
}

const TRAIN_HEAD: &str = r#"
import argparse
import json
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import keras  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import model as exported  # noqa: E402
"#;

const TRAIN_BODY: &str = r#"

def distribute():
    """Every device of every host: jax.distributed.initialize() when the standard multi-host variables are
    set (JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID; or a cluster JAX detects itself), then
    data parallelism over all devices: the weights replicated, each batch split across the devices."""
    if os.environ.get("JAX_COORDINATOR_ADDRESS") or os.environ.get("NNC_MULTI_HOST"):
        jax.distributed.initialize()
    devices = jax.devices()
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    return devices


def decayed(grads, values, variables, wd):
    """nnc's weight decay: wd·w added to the gradients of kernels and embeddings (before clipping)."""
    if not wd:
        return grads
    return [g + wd * w if v.path.endswith(("kernel", "embeddings")) else g
            for g, w, v in zip(grads, values, variables)]


class TrainBlock(keras.Model):
    """A single-model train block: its training graph (data in, loss and metrics out) trained by fit(), the
    gradients of the graph's `loss` output applied by the block's optimizer."""

    def __init__(self, graph, **kwargs):
        super().__init__(**kwargs)
        self.graph = graph
        self.trackers = {n: keras.metrics.Mean(name=n) for n in OUTPUTS}

    @property
    def metrics(self):
        return list(self.trackers.values())

    def call(self, data, training=False):
        return self.graph(data, training=training)

    def _loss(self, tv, ntv, data, training):
        outs, ntv = self.stateless_call(tv, ntv, data, training=training)
        return outs["loss"], (outs, ntv)

    def train_step(self, state, data):
        tv, ntv, ov, mv = state
        data, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        (_, (outs, ntv)), grads = jax.value_and_grad(self._loss, has_aux=True)(tv, ntv, data, True)
        grads = decayed(grads, tv, self.trainable_variables, DECAY["loss"])
        tv, ov = self.optimizer.stateless_apply(ov, grads, tv)
        logs, mv = self._track(mv, outs)
        return logs, (tv, ntv, ov, mv)

    def test_step(self, state, data):
        tv, ntv, mv = state
        data, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        outs, ntv = self.stateless_call(tv, ntv, data, training=False)
        logs, mv = self._track(mv, outs)
        return logs, (tv, ntv, mv)

    def _track(self, mv, values):
        logs, new, i = {}, [], 0
        for name, m in self.trackers.items():
            n = len(m.variables)
            part = m.stateless_update_state(list(mv[i:i + n]), values[name])
            logs[name] = m.stateless_result(part)
            new += part
            i += n
        return logs, new


class AlternatingSteps:
    """A block of alternating steps (a GAN), as nnc runs it: per batch, each step in order, `times` each,
    its loss's gradients applied by its own optimizer to the layers of its own models only; the other
    models' layers run in inference mode (fixed when model.py built the step's graph). One jitted function
    per iteration, the batch sharded over the devices, the weights replicated."""

    def __init__(self, graphs):
        self.graphs = graphs
        self.variables = []
        for g in graphs:
            for v in g.variables:
                if not any(v is w for w in self.variables):
                    self.variables.append(v)
        self.optimizers = []
        for (name, _, _, over) in STEPS:
            opt = OPTIMIZERS[name]()
            opt.build([v for v in self.variables if v.trainable and self._learns(v, over)])
            self.optimizers.append(opt)

    @staticmethod
    def _learns(variable, over):
        return any(variable.path.startswith(p) for p in over)

    def state(self):
        return [v.value for v in self.variables], [[v.value for v in o.variables] for o in self.optimizers]

    def assign(self, state):
        values, opt_values = state
        for v, x in zip(self.variables, values):
            v.assign(x)
        for o, xs in zip(self.optimizers, opt_values):
            for v, x in zip(o.variables, xs):
                v.assign(x)

    def iteration(self, state, batches):
        """One iteration: step applications in order, each on the next batch of `batches` (as nnc does)."""
        values, opt_values = state
        batches = iter(batches)
        values, opt_values = list(values), [list(o) for o in opt_values]
        index = {id(v): i for i, v in enumerate(self.variables)}
        losses = {}
        for k, (name, _, times, over) in enumerate(STEPS):  # noqa: B007
            g, opt = self.graphs[k], self.optimizers[k]
            learn = [index[id(v)] for v in g.trainable_variables if self._learns(v, over)]
            for _ in range(times):
                data = next(batches)

                def loss_fn(learned, values, data=data):
                    vals = list(values)
                    for i, x in zip(learn, learned):
                        vals[i] = x
                    tv = [vals[index[id(v)]] for v in g.trainable_variables]
                    ntv = [vals[index[id(v)]] for v in g.non_trainable_variables]
                    outs, ntv = g.stateless_call(tv, ntv, {i.name: data[i.name] for i in g.inputs})
                    return outs["loss"], ntv

                learned = [values[i] for i in learn]
                (loss, ntv), grads = jax.value_and_grad(loss_fn, has_aux=True)(learned, values)
                learned_vars = [self.variables[i] for i in learn]
                grads = decayed(grads, learned, learned_vars, DECAY[name])
                for v, x in zip(g.non_trainable_variables, ntv):
                    values[index[id(v)]] = x
                learned, opt_values[k] = opt.stateless_apply(opt_values[k], grads, learned)
                for i, x in zip(learn, learned):
                    values[i] = x
                losses.setdefault(f"{name}_loss", []).append(loss)
        return (values, opt_values), {k: sum(v) / len(v) for k, v in losses.items()}

    def fit(self, arrays, iterations, batch, shuffle=SHUFFLE):
        """`iterations` iterations over full batches of `arrays` (reshuffled at each pass when `shuffle`),
        every batch sharded over the devices."""
        mesh = jax.sharding.Mesh(np.array(jax.devices()), ("batch",))
        sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("batch"))
        step = jax.jit(self.iteration)
        state = self.state()
        n = len(next(iter(arrays.values())))
        per_iteration = sum(times for _, _, times, _ in STEPS)
        rng = np.random.default_rng(SEED)
        order, at = (rng.permutation(n) if shuffle else np.arange(n)), 0
        losses = {}
        for it in range(iterations):
            batches = []
            for _ in range(per_iteration):
                if at + batch > n:
                    order, at = (rng.permutation(n) if shuffle else np.arange(n)), 0
                rows = order[at:at + batch]
                at += batch
                batches.append({k: jax.device_put(v[rows], sharding) for k, v in arrays.items()})
            state, losses = step(state, batches)
            if it % 100 == 0 or it == iterations - 1:
                shown = ", ".join(f"{k} {float(v):.4f}" for k, v in losses.items())
                print(f"iteration {it + 1}/{iterations}: {shown}")
        self.assign(state)
        return losses


def build(weights):
    """The training graphs of model.py with the weights loaded."""
    graphs = getattr(exported, f"build_{GRAPH}")()
    for g in graphs:
        exported.load_weights(g, weights, partial=True)
    if len(STEPS) > 1:
        return AlternatingSteps(graphs)
    trainer = TrainBlock(graphs[0])
    trainer.compile(optimizer=OPTIMIZERS["loss"]())
    return trainer


def divisible(arrays, devices):
    """Each batch is split across the devices, so every batch (the last, partial one too) must hold a
    multiple of their number of rows: the last few rows past that are left out (fewer than the devices)."""
    n = len(next(iter(arrays.values())))
    drop = (n % BATCH) % devices
    if BATCH % devices:
        raise SystemExit(f"batch {BATCH} does not split across {devices} devices: export with another batch")
    if drop:
        print(f"note: the last {drop} of {n} rows are left out (the last batch must split across {devices} devices)")
    return {k: v[: n - drop] for k, v in arrays.items()}


def load_npz(path):
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def inputs_of(graph, arrays):
    """The arrays the graph reads, in its dtypes (nnc's int64 labels as int32)."""
    out = {}
    for inp in graph.inputs:
        value = np.asarray(arrays[inp.name])
        out[inp.name] = value.astype("int32" if "int" in str(inp.dtype) else "float32")
    return out


def all_inputs(graphs, arrays):
    data = {}
    for g in graphs:
        data.update(inputs_of(g, arrays))
    return data


def one_step(trainer, batch_path, out_path):
    """One training iteration on the arrays of a safetensors batch (`nnc run --dump-steps`), for tests:
    the loss before the update and the updated weights (nnc's names) next to `out_path`."""
    arrays = exported.read_safetensors(batch_path)
    weights = os.path.join(os.path.dirname(os.path.abspath(out_path)), "after.safetensors")
    if isinstance(trainer, AlternatingSteps):
        # The step applications of one iteration take batch_0, batch_1, … (the files nnc dumped).
        per_iteration = sum(times for _, _, times, _ in STEPS)
        parts = [exported.read_safetensors(batch_path.replace("batch_0.", f"batch_{j}.")) for j in range(per_iteration)]
        rows = len(next(iter(arrays.values())))
        joined = {k: np.concatenate([p[k] for p in parts]) for k in arrays}
        losses = trainer.fit(all_inputs(trainer.graphs, joined), 1, rows, shuffle=False)
        logs = {k: float(v) for k, v in losses.items()}
        loss = logs[f"{STEPS[0][0]}_loss"]
        graph = trainer.graphs
    else:
        logs = trainer.train_on_batch(inputs_of(trainer.graph, arrays), return_dict=True)
        logs = {k: float(v) for k, v in logs.items()}
        loss = logs["loss"]
        graph = trainer.graph
    exported.save_weights(graph, weights, prefix="")
    with open(out_path, "w") as f:
        json.dump({"loss": loss, "logs": logs, "weights": weights, "devices": len(jax.devices())}, f)


def main():
    parser = argparse.ArgumentParser(description=f"Train block {BLOCK}, data-parallel over every device.")
    parser.add_argument("--data", default=os.path.join(HERE, "data"), help="directory of train/validation/test.npz")
    parser.add_argument("--weights", default=os.path.join(HERE, "weights.safetensors"), help="initial weights")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--save", default=os.path.join(HERE, "trained.safetensors"),
                        help="where to write the trained weights (nnc's names: `nnc predict --weights`)")
    parser.add_argument("--one-step", metavar="BATCH", help="one step on a safetensors batch, then stop")
    parser.add_argument("--step-out", default="step.json", help="with --one-step: the loss and weights file")
    args = parser.parse_args()
    devices = distribute()
    keras.utils.set_random_seed(SEED)
    trainer = build(args.weights)
    if args.one_step:
        one_step(trainer, args.one_step, args.step_out)
        return
    train = load_npz(os.path.join(args.data, "train.npz"))
    if isinstance(trainer, AlternatingSteps):
        per_pass = max(1, len(next(iter(train.values()))) // BATCH)
        iterations = ITERATIONS or args.epochs * per_pass
        print(f"training {BLOCK} on {len(devices)} device(s): batch {BATCH}, {iterations} iterations")
        trainer.fit(all_inputs(trainer.graphs, train), iterations, BATCH)
        exported.save_weights(trainer.graphs, args.save, prefix="")
        print(f"saved {args.save}")
        return
    x = divisible(inputs_of(trainer.graph, train), len(devices))
    val_path = os.path.join(args.data, "validation.npz")
    validation = None
    if os.path.exists(val_path):
        validation = (divisible(inputs_of(trainer.graph, load_npz(val_path)), len(devices)),)
    print(f"training {BLOCK} on {len(devices)} device(s): batch {BATCH} split across them, {args.epochs} epoch(s)")
    trainer.fit(x, batch_size=BATCH, epochs=args.epochs, shuffle=SHUFFLE, validation_data=validation,
                callbacks=callbacks())
    test_path = os.path.join(args.data, "test.npz")
    if os.path.exists(test_path):
        test = divisible(inputs_of(trainer.graph, load_npz(test_path)), len(devices))
        print("test:", trainer.evaluate(test, batch_size=BATCH, return_dict=True, verbose=0))
    exported.save_weights(trainer.graph, args.save, prefix="")
    print(f"saved {args.save}")


if __name__ == "__main__":
    main()
"#;

const README: &str = r#"# `{block}` of {source}, exported to Keras 3

Generated by `nnc export --to keras`; regenerate rather than edit.

- `model.py` — the model(s) as Keras 3 functional models (`build_<Model>()`), layer names equal to nnc's
  parameter prefixes, and `load_weights`/`save_weights` by those names. `python model.py --save model.keras`
  writes a `.keras` file.
- `weights.safetensors` — the weights (the seeded initial ones `nnc run` starts from, or `--weights`).
- `train.py` — the train block: its data arrays, `let`s, model, losses and metrics as one Keras graph
  (`build_train_<block>` in model.py), trained by `fit()` with nnc's optimizer, data-parallel.
- `data/` — with `nnc export --data`: the arrays nnc trains on after its preprocessing (train, validation,
  test `.npz`).

Requirements: `pip install keras jax` (CPU), or `jax[cuda12]` for NVIDIA GPUs.

## One GPU (or the CPU)

    python train.py

## Eight GPUs on one machine

Nothing changes: `train.py` puts every device JAX sees under `keras.distribution.DataParallel`, the weights
replicated and each batch split across the devices (the batch size must be a multiple of their number).

    python train.py                             # uses all 8
    CUDA_VISIBLE_DEVICES=0,1,2,3 python train.py  # four of them

## Several hosts

Run the same command on every host with JAX's standard variables; `train.py` calls
`jax.distributed.initialize()` when they are set, and the data-parallel mesh spans every device of every host:

    JAX_COORDINATOR_ADDRESS=host0:1234 JAX_NUM_PROCESSES=2 JAX_PROCESS_ID=0 python train.py   # on host0
    JAX_COORDINATOR_ADDRESS=host0:1234 JAX_NUM_PROCESSES=2 JAX_PROCESS_ID=1 python train.py   # on host1

On a cluster JAX detects by itself (SLURM, TPU pods), set `NNC_MULTI_HOST=1` instead.

## Back to nnc

`train.py` saves the trained weights under nnc's names (`trained.safetensors`):

    nnc predict MODEL.nn --weights trained.safetensors --input …
"#;
