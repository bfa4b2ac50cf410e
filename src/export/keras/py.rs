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

/// The class text of a custom class by name.
pub(crate) fn class(name: &str) -> &'static str {
    match name {
        "NncOp" => NNC_OP,
        "NncLayerScale" => NNC_LAYER_SCALE,
        "NncPositionEmbedding" => NNC_POSITION_EMBEDDING,
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


def load_weights(model, path=os.path.join(HERE, "weights.safetensors"), prefix=None):
    """Assigns nnc's parameters to the layers of `model` by name (WEIGHTS), checking every Keras weight
    gets exactly one tensor of its shape and every parameter of the model is used exactly once."""
    tensors = read_safetensors(path) if isinstance(path, str) else path
    prefix = PREFIX.get(model.name, "") if prefix is None else prefix
    table = WEIGHTS[model.name]
    used = set()
    for layer_name, names in table.items():
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
