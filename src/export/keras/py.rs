//! Python literals and the fixed parts of the generated `model.py`: the custom layer classes (keras.ops
//! inside, serializable so `model.keras` loads), the safetensors reader and `load_weights`.

/// A Python string literal (JSON's escapes are Python's).
pub(crate) fn string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// A Python float literal that reads back to the same f64 (`repr` form; infinities spelled out).
pub(crate) fn float(v: f64) -> String {
    if v.is_nan() {
        "float('nan')".into()
    } else if v.is_infinite() {
        if v > 0.0 { "float('inf')".into() } else { "float('-inf')".into() }
    } else {
        format!("{v:?}")
    }
}

/// The head of `model.py`: imports and the environment Keras needs.
pub(crate) const HEAD: &str = r#"import argparse
import json
import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np  # noqa: E402
import keras  # noqa: E402
from keras import layers, ops  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
"#;

/// `NncOp`: the operations Keras has no layer for, by name, in keras.ops.
pub(crate) const NNC_OP: &str = r#"
_BINARY = {"add": ops.add, "sub": ops.subtract, "mul": ops.multiply, "div": ops.divide}


def _float(x):
    """nnc computes arithmetic in float32, integer tensors included."""
    return x if "float" in str(x.dtype) else ops.cast(x, "float32")


def _sine_table(length, depth):
    """Vaswani et al.'s encoding as nnc builds it: sin on even features, cos on odd."""
    pos = np.arange(length, dtype=np.float64)[:, None]
    i = np.arange(depth)
    angle = pos / np.power(10000.0, (2 * (i // 2)) / depth)
    return np.where(i % 2 == 0, np.sin(angle), np.cos(angle)).astype("float32")


def _pads(sides, rank):
    sides = sides if isinstance(sides, (list, tuple)) else [sides]
    return [[0, 0]] + [[int(p), int(p)] for p in sides] + [[0, 0]] * (rank - 1 - len(sides))


def _index(items):
    out = []
    for item in items:
        if item[0] == "at":
            out.append(item[1])
        elif item[0] == "slice":
            out.append(slice(item[1], item[2]))
        else:
            out.append(slice(None))
    return tuple(out)


@keras.saving.register_keras_serializable(package="nnc")
class NncOp(layers.Layer):
    """One nnc operation that Keras has no layer for, written with keras.ops; `op` names it."""

    def __init__(self, op, args=None, **kwargs):
        super().__init__(**kwargs)
        self.op = op
        self.args = dict(args or {})

    def get_config(self):
        return {**super().get_config(), "op": self.op, "args": self.args}

    def call(self, x):
        a, op = self.args, self.op
        if op == "binary":
            return _BINARY[a["fn"]](_float(x[0]), _float(x[1]))
        if op == "scalar":
            c = ops.convert_to_tensor(np.asarray(a["value"], dtype="float32"))
            return _BINARY[a["fn"]](c, _float(x)) if a["left"] else _BINARY[a["fn"]](_float(x), c)
        if op == "index":
            return x[_index(a["items"])]
        if op == "log_softmax":
            return ops.log_softmax(x, axis=a["axis"])
        if op == "one_hot":
            return ops.one_hot(ops.cast(x, "int32"), a["depth"], dtype="float32")
        if op == "clip":
            return ops.clip(x, a["lo"], a["hi"])
        if op in ("exp", "log", "sqrt"):
            return getattr(ops, op)(x)
        if op == "abs":
            return ops.absolute(x)
        if op == "mean":
            return ops.mean(x, axis=a["axis"], keepdims=a["keepdims"])
        if op == "sum":
            return ops.sum(x, axis=a["axis"], keepdims=a["keepdims"])
        if op == "pad":
            return ops.pad(x, _pads(a["sides"], len(x.shape)), constant_values=a["value"])
        if op == "objective":
            return _objective(a, x)
        if op == "reshape":
            return ops.reshape(x, a["shape"])
        if op == "sine_position":
            return x + ops.convert_to_tensor(_sine_table(x.shape[1], x.shape[2]))
        raise ValueError(f"unknown nnc operation {op!r}")
"#;

/// `NncLayerScale`: ConvNeXt's learned per-channel factor (`layer_scale`).
pub(crate) const NNC_LAYER_SCALE: &str = r#"

@keras.saving.register_keras_serializable(package="nnc")
class NncLayerScale(layers.Layer):
    """x·gamma with gamma [C] initialised to init_values (ConvNeXt's LayerScale)."""

    def __init__(self, init_values=1e-6, **kwargs):
        super().__init__(**kwargs)
        self.init_values = float(init_values)

    def build(self, shape):
        init = keras.initializers.Constant(self.init_values)
        self.gamma = self.add_weight(shape=(shape[-1],), initializer=init, name="gamma")

    def get_config(self):
        return {**super().get_config(), "init_values": self.init_values}

    def call(self, x):
        return x * self.gamma
"#;

/// `NncPositionEmbedding`: learned positions added to a sequence (`positional_embedding`).
pub(crate) const NNC_POSITION_EMBEDDING: &str = r#"

@keras.saving.register_keras_serializable(package="nnc")
class NncPositionEmbedding(layers.Layer):
    """x + embeddings[:T] with embeddings [max_len, D] (nnc's positional_embedding)."""

    def __init__(self, max_len, **kwargs):
        super().__init__(**kwargs)
        self.max_len = int(max_len)

    def build(self, shape):
        self.embeddings = self.add_weight(shape=(self.max_len, shape[-1]), name="embeddings")

    def get_config(self):
        return {**super().get_config(), "max_len": self.max_len}

    def call(self, x):
        return x + self.embeddings[: x.shape[1]]
"#;

/// nnc's losses and metrics (`ir/lower.rs::objective`) in keras.ops, formula for formula.
pub(crate) const NNC_OBJECTIVE: &str = r#"

def _align(t, like):
    """The target with trailing 1-axes matched to the prediction's shape."""
    ts, ps = tuple(t.shape), tuple(like.shape)
    if len(ts) == 0 or ts == ps:
        return t

    def strip(s):
        s = list(s)
        while s and s[-1] == 1:
            s.pop()
        return tuple(s)

    return ops.reshape(t, (-1,) + ps[1:]) if strip(ts[1:]) == strip(ps[1:]) else t


def _objective(a, xs):
    fn, opts = a["fn"], a.get("options", {})
    pred = _float(xs[0])
    target = xs[1] if len(xs) > 1 else ops.convert_to_tensor(np.asarray(a["target"], dtype="float32"))
    int_target = "int" in str(target.dtype)
    classes = pred.shape[-1]
    weights = None
    if a.get("class_weights") is not None and int_target:
        table = ops.convert_to_tensor(np.asarray(a["class_weights"], dtype="float32"))
        weights = ops.sum(ops.one_hot(ops.cast(target, "int32"), len(a["class_weights"])) * table, axis=-1)

    def weighted_mean(per_sample):
        return ops.mean(per_sample * weights) if weights is not None else ops.mean(per_sample)

    def onehot(t):
        return ops.one_hot(ops.cast(t, "int32"), classes, dtype="float32")

    if fn in ("cross_entropy", "nll", "perplexity"):
        if fn == "nll":
            logp = pred
        elif opts.get("from_logits", True):
            logp = ops.log_softmax(pred, axis=-1)
        else:
            logp = ops.log(ops.maximum(pred, 1e-7))
        t = onehot(target) if int_target else _float(target)
        mean = weighted_mean(-ops.sum(logp * t, axis=-1))
        return ops.exp(mean) if fn == "perplexity" else mean
    t = _float(_align(target, pred))
    if fn == "mse":
        return ops.mean(ops.square(pred - t))
    if fn in ("l1", "mae"):
        return ops.mean(ops.abs(pred - t))
    if fn == "huber":
        delta = opts.get("delta", 1.0)
        d = ops.abs(pred - t)
        q = ops.minimum(d, delta)
        return ops.mean(0.5 * ops.square(q) + delta * (d - q))
    if fn == "binary_cross_entropy":
        p = ops.clip(pred, 1e-7, 1.0 - 1e-7)
        return ops.mean(-(t * ops.log(p) + (1.0 - t) * ops.log(1.0 - p)))
    if fn == "bce_with_logits":
        return ops.mean(ops.relu(pred) - pred * t + ops.softplus(-ops.abs(pred)))
    if fn == "top_k_accuracy":
        t = onehot(target) if int_target else _float(target)
        true_logit = ops.sum(pred * t, axis=-1, keepdims=True)
        above = ops.sum(ops.cast(pred > true_logit, "float32"), axis=-1)
        return ops.mean(ops.cast(above < opts.get("k", 5) - 0.5, "float32"))
    if fn in ("accuracy", "precision", "recall"):
        threshold = opts.get("threshold", 0.5)
        if int_target and classes > 1:
            best = ops.max(pred, axis=-1)
            correct = ops.cast(ops.sum(pred * onehot(target), axis=-1) == best, "float32")
            if fn == "accuracy":
                return ops.mean(correct)
            c = int(opts.get("class", 1))
            true_pos = ops.cast(_float(target) == c, "float32")
            pred_pos = ops.cast(pred[..., min(c, classes - 1)] == best, "float32")
        else:
            pred_pos = ops.cast(pred > threshold, "float32")
            true_pos = ops.cast(t > threshold, "float32")
            if fn == "accuracy":
                return ops.mean(ops.cast(pred_pos == true_pos, "float32"))
            if opts.get("class", 1) == 0:
                pred_pos, true_pos = 1.0 - pred_pos, 1.0 - true_pos
        both = ops.sum(pred_pos * true_pos)
        denominator = ops.sum(pred_pos if fn == "precision" else true_pos)
        return both / ops.maximum(denominator, 1e-7)
    raise ValueError(f"unknown nnc loss or metric {fn!r}")
"#;

/// `NncRandom`: a fresh normal or uniform tensor per batch (`normal([N, 100])`), the batch size read from a
/// tensor of the graph.
pub(crate) const NNC_RANDOM: &str = r#"

@keras.saving.register_keras_serializable(package="nnc")
class NncRandom(layers.Layer):
    """A fresh N(p, q²) (`normal`) or U(p, q) (`uniform`) tensor of `shape` per call; None is the batch."""

    def __init__(self, kind, shape, p, q, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.kind, self.shape, self.p, self.q, self.seed = kind, list(shape), float(p), float(q), seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def get_config(self):
        return {**super().get_config(), "kind": self.kind, "shape": self.shape, "p": self.p, "q": self.q,
                "seed": self.seed}

    def call(self, reference):
        shape = [ops.shape(reference)[0] if d is None else d for d in self.shape]
        if self.kind == "normal":
            return keras.random.normal(shape, mean=self.p, stddev=self.q, seed=self.seed_generator)
        return keras.random.uniform(shape, minval=self.p, maxval=self.q, seed=self.seed_generator)
"#;

/// The class text of a custom class by name.
pub(crate) fn class(name: &str) -> &'static str {
    match name {
        "NncOp" => NNC_OP,
        "NncLayerScale" => NNC_LAYER_SCALE,
        "NncPositionEmbedding" => NNC_POSITION_EMBEDDING,
        "NncObjective" => NNC_OBJECTIVE,
        "NncRandom" => NNC_RANDOM,
        _ => "",
    }
}

/// The safetensors reader, `load_weights` and the command line of `model.py`.
pub(crate) const TAIL: &str = r#"

def read_safetensors(path):
    """The tensors of a safetensors file (8 bytes of header length, a JSON header, raw little-endian data)."""
    with open(path, "rb") as f:
        data = f.read()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    dtypes = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32}
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        start, end = meta["data_offsets"]
        out[name] = np.frombuffer(body[start:end], dtype=dtypes[meta["dtype"]]).reshape(meta["shape"])
    return out


def _squeezed(shape):
    return tuple(d for d in shape if d != 1)


def load_weights(model, path=os.path.join(HERE, "weights.safetensors"), prefix=None, partial=False):
    """Assigns nnc's parameters to the layers of `model` by name (WEIGHTS), checking every Keras weight
    gets exactly one tensor of its shape and every parameter of the model is used exactly once. `partial`:
    the table's layers missing from `model` are skipped (a GAN step's graph holds some of the block's)."""
    tensors = read_safetensors(path) if isinstance(path, str) else path
    prefix = PREFIX.get(model.name, "") if prefix is None else prefix
    table = WEIGHTS[model.name]
    present = {layer.name for layer in model.layers}
    used = set()
    for layer_name, names in table.items():
        if partial and layer_name not in present:
            continue
        layer = model.get_layer(layer_name)
        if len(layer.weights) != len(names):
            raise ValueError(f"layer {layer_name}: Keras has {len(layer.weights)} weights, nnc {len(names)}")
        values = []
        for var, name in zip(layer.weights, names):
            key = prefix + name
            if key not in tensors:
                raise KeyError(f"{path}: no tensor {key} (layer {layer_name})")
            if key in used:
                raise ValueError(f"tensor {key} assigned twice")
            used.add(key)
            value = np.asarray(tensors[key], dtype="float32")
            if tuple(value.shape) != tuple(var.shape):
                # nnc's [C] for Keras's [1, 1, C] (PReLU with shared axes): the same values.
                if _squeezed(value.shape) != _squeezed(var.shape):
                    raise ValueError(f"{key}: nnc shape {value.shape}, Keras {tuple(var.shape)}")
                value = value.reshape(var.shape)
            values.append(value)
        layer.set_weights(values)
        if hasattr(layer, "finalize_state"):
            layer.finalize_state()
    for layer in model.layers:
        if layer.weights and layer.name not in table:
            raise ValueError(f"layer {layer.name} has weights nnc does not know")
    return model


def save_weights(model, path, prefix=None):
    """Writes the weights of `model` (or of a list of models) under nnc's parameter names (WEIGHTS) as
    safetensors, for `nnc predict --weights` or `nnc run --init`."""
    tensors = {}
    for m in model if isinstance(model, (list, tuple)) else [model]:
        p = PREFIX.get(m.name, "") if prefix is None else prefix
        present = {layer.name for layer in m.layers}
        for layer_name, names in WEIGHTS[m.name].items():
            if layer_name not in present:
                continue
            for var, name in zip(m.get_layer(layer_name).weights, names):
                tensors[p + name] = np.asarray(keras.ops.convert_to_numpy(var.value), dtype="float32")
    header, offset, chunks = {}, 0, []
    for name, value in sorted(tensors.items()):
        raw = np.ascontiguousarray(value).astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(value.shape), "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        chunks.append(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(len(text).to_bytes(8, "little") + text + b"".join(chunks))
    os.replace(tmp, path)


def main():
    parser = argparse.ArgumentParser(description="Build the exported model, load its weights, save it.")
    parser.add_argument("--model", default=MAIN, choices=sorted(BUILDERS), help="which model (default: %(default)s)")
    parser.add_argument("--weights", default=os.path.join(HERE, "weights.safetensors"), help="safetensors file")
    parser.add_argument("--save", metavar="FILE.keras", help="write the model with its weights (Keras's format)")
    parser.add_argument("--summary", action="store_true", help="print Keras's summary")
    args = parser.parse_args()
    model = load_weights(BUILDERS[args.model](), args.weights)
    if args.summary:
        model.summary()
    if args.save:
        model.save(args.save)
        print(f"saved {args.save}")


if __name__ == "__main__":
    main()
"#;
