#!/usr/bin/env python3
"""Independent oracle: nnc's training steps against Keras 3 (JAX backend).

For each case, `nnc run --dump-steps K --dump DIR` writes nnc's initial
weights, the batches, its losses, gradients and updated weights. This script
builds the same model in Keras, loads nnc's initial weights, runs the same
steps with the same optimizer and compares loss, every gradient and every
updated weight to 1e-4 relative. Test-only: Keras is never a dependency of nnc.

Usage: python3 tests/oracle/oracle.py path/to/nnc
"""

import json
import os
import subprocess
import sys
import tempfile

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import keras  # noqa: E402


def load_file(path):
    """Reads a safetensors file (the format is 8 bytes of header length,
    a JSON header, raw little-endian data) without the safetensors package."""
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
        s, e = meta["data_offsets"]
        out[name] = np.frombuffer(body[s:e], dtype=dtypes[meta["dtype"]]).reshape(meta["shape"])
    return out

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DIGITS = os.path.join(ROOT, "data", "digits.csv.gz")
TOL = 1e-4

MLP = """
dim N
model Mlp {{
    input pixels: [N, 64]
    input label: int[N]
    output logits = pixels |> dense(16, activation = relu, name = "d1") |> dense(10, name = "d2")
}}
train t {{
    model     = Mlp()
    data      = csv("{data}", pixels = 0..64, label = 64, header = false)
    let pixels = pixels / 16
    loss      = cross_entropy(logits, label)
    optimizer = {opt}
    batch     = 32
}}
"""

CONVNET = """
dim N
model ConvNet {{
    input pixels: [N, 8, 8, 1]
    input label: int[N]
    output logits = pixels
        |> conv2d(4, kernel = 3, padding = same, bias = false, name = "c1") |> batch_norm(name = "bn1") |> relu |> max_pool(2)
        |> flatten |> dense(10, name = "d1")
}}
train t {{
    model     = ConvNet()
    data      = csv("{data}", pixels = 0..64, label = 64, header = false)
    let pixels = pixels / 16
    loss      = cross_entropy(logits, label)
    optimizer = {opt}
    batch     = 32
}}
"""

RNN = """
dim N
model Rnn {{
    input rows: [N, 8, 8]
    input label: int[N]
    output logits = rows |> {cell} |> dense(10, name = "d1")
}}
train t {{
    model     = Rnn()
    data      = csv("{data}", rows = 0..64, label = 64, header = false)
    let rows = rows / 16
    loss      = cross_entropy(logits, label)
    optimizer = {opt}
    batch     = 32
}}
"""


def keras_mlp():
    return keras.Sequential([
        keras.Input((64,)),
        keras.layers.Dense(16, activation="relu", name="d1"),
        keras.layers.Dense(10, name="d2"),
    ]), {"d1": ["d1.kernel", "d1.bias"], "d2": ["d2.kernel", "d2.bias"]}


def keras_convnet():
    return keras.Sequential([
        keras.Input((8, 8, 1)),
        # No bias before batch norm: its gradient is zero up to rounding,
        # which Adam would amplify into noise on both sides.
        keras.layers.Conv2D(4, 3, padding="same", use_bias=False, name="c1"),
        keras.layers.BatchNormalization(name="bn1"),
        keras.layers.ReLU(),
        keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),
        keras.layers.Dense(10, name="d1"),
    ]), {
        "c1": ["c1.kernel"],
        "bn1": ["bn1.gamma", "bn1.beta", "bn1.moving_mean", "bn1.moving_var"],
        "d1": ["d1.kernel", "d1.bias"],
    }


def keras_rnn(kind):
    def build():
        if kind == "lstm":
            layer, names = keras.layers.LSTM(6, name="r"), ["r.kernel", "r.recurrent_kernel", "r.bias"]
        elif kind == "gru":
            layer, names = keras.layers.GRU(6, name="r"), ["r.kernel", "r.recurrent_kernel", "r.bias"]
        elif kind == "gru_v1":
            layer, names = keras.layers.GRU(6, reset_after=False, name="r"), ["r.kernel", "r.recurrent_kernel", "r.bias"]
        else:
            layer = keras.layers.Bidirectional(keras.layers.LSTM(6), name="r")
            names = [f"r.{d}.{w}" for d in ("forward", "backward") for w in ("kernel", "recurrent_kernel", "bias")]
        return keras.Sequential([keras.Input((8, 8)), layer, keras.layers.Dense(10, name="d1")]), {
            "r": names, "d1": ["d1.kernel", "d1.bias"]}
    return build


GENERIC = """
dim N
model M {{
    input {input_decl}
    input label: int[N]
    output logits = {body}
}}
train t {{
    model     = M()
    data      = csv("{data}", {input_name} = 0..64, label = 64, header = false)
    {scale}
    loss      = cross_entropy(logits, label)
    optimizer = adam(lr = 1e-2)
    batch     = 32
}}
"""


def generic(input_name, input_decl, body, scale, keras_layers, names, keras_input):
    """A case from an nnc body and the equivalent Keras functional graph."""
    src = GENERIC.format(data=DIGITS, input_name=input_name, input_decl=input_decl, body=body, scale=scale)

    def build():
        inp = keras.Input(keras_input[0], dtype=keras_input[1])
        out = keras_layers(inp)
        return keras.Model(inp, out), names
    return src, build


def _attention(x):
    a = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4, name="att")(x, x)
    return keras.layers.Dense(10, name="d1")(keras.layers.Flatten()(a))


EXTRA = {
    "embedding": generic(
        "tokens", "tokens: int[N, 64]", 'tokens |> embedding(17, 4, name = "e") |> flatten |> dense(10, name = "d1")', "",
        lambda x: keras.layers.Dense(10, name="d1")(keras.layers.Flatten()(keras.layers.Embedding(17, 4, name="e")(x))),
        {"e": ["e.embeddings"], "d1": ["d1.kernel", "d1.bias"]}, ((64,), "int32")),
    "attention": generic(
        "rows", "rows: [N, 8, 8]", 'rows |> multi_head_attention(2, 4, name = "att") |> flatten |> dense(10, name = "d1")',
        "let rows = rows / 16", _attention,
        {"att": [f"att.{p}.{w}" for p in ("query", "key", "value", "output") for w in ("kernel", "bias")],
         "d1": ["d1.kernel", "d1.bias"]}, ((8, 8), "float32")),
    "conv_transpose+upsample": generic(
        "pixels", "pixels: [N, 8, 8, 1]",
        'pixels |> conv2d_transpose(2, 3, stride = 2, name = "ct") |> upsample(2) |> max_pool(4) |> flatten |> dense(10, name = "d1")',
        "let pixels = pixels / 16",
        lambda x: keras.layers.Dense(10, name="d1")(keras.layers.Flatten()(keras.layers.MaxPooling2D(4)(
            keras.layers.UpSampling2D(2)(keras.layers.Conv2DTranspose(2, 3, strides=2, name="ct")(x))))),
        {"ct": ["ct.kernel", "ct.bias"], "d1": ["d1.kernel", "d1.bias"]}, ((8, 8, 1), "float32")),
    "layer_norm": generic(
        "rows", "rows: [N, 8, 8]", 'rows |> layer_norm(name = "ln") |> flatten |> dense(10, name = "d1")',
        "let rows = rows / 16",
        lambda x: keras.layers.Dense(10, name="d1")(keras.layers.Flatten()(keras.layers.LayerNormalization(epsilon=1e-3, name="ln")(x))),
        {"ln": ["ln.gamma", "ln.beta"], "d1": ["d1.kernel", "d1.bias"]}, ((8, 8), "float32")),
}

def _zoo_activations(x):
    L = keras.layers
    x = L.Conv2D(4, 3, activation="swish", name="c1")(x)
    x = L.ReLU(max_value=0.3, negative_slope=0.1, threshold=0.05)(x)
    x = L.Conv2D(4, 3, activation="mish", name="c2")(x)
    x = L.Activation("relu6")(x)
    x = L.Flatten()(x)
    x = L.Dense(16, activation="hard_swish", name="d0")(x)
    x = L.Activation("hard_sigmoid")(x)
    x = L.Dense(12, activation="silu", name="d2")(x)
    return L.Dense(10, name="d1")(x)


def _zoo_borders(x):
    from keras.src.applications.convnext import LayerScale
    L = keras.layers
    x = L.Rescaling(2.0, offset=-0.5)(x)
    x = L.Normalization(mean=0.1, variance=0.3)(x)
    x = L.ZeroPadding2D(((0, 1), (0, 1)))(x)
    x = L.Conv2D(4, 3, use_bias=False, name="c1")(x)
    x = L.BatchNormalization(scale=False, name="bn")(x)
    x = L.ReLU(max_value=6.0)(x)
    x = L.Cropping2D(((1, 0), (0, 2)))(x)
    x = L.ZeroPadding2D((1, 2))(x)
    x = L.LayerNormalization(center=False, epsilon=1e-3, name="ln")(x)
    x = LayerScale(0.5, 4, name="ls")(x)
    x = L.Activation("hard_silu")(x)
    x = L.GlobalAveragePooling2D(keepdims=True)(x)
    x = L.Flatten()(x)
    return L.Dense(10, name="d1")(x)


def _zoo_seq(x):
    L = keras.layers
    x = L.ZeroPadding1D((1, 2))(x)
    x = L.Cropping1D((2, 1))(x)
    x = L.Normalization(mean=[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8], variance=[4.0] * 8)(x)
    x = L.ReLU(threshold=0.02)(x)
    # No bias before batch norm (see keras_convnet).
    x = L.Dense(8, use_bias=False, name="d0")(x)
    x = L.BatchNormalization(center=False, name="bn")(x)
    x = L.ReLU(negative_slope=0.2)(x)
    # Average, not max: the digits' blank rows tie, and ties split the gradient differently.
    x = L.GlobalAveragePooling1D(keepdims=True)(x)
    x = L.Flatten()(x)
    return L.Dense(10, name="d1")(x)


def _zoo_se(x):
    """Keras's EfficientNet squeeze-and-excitation (`block1a_se_*`), swish in the squeeze."""
    L = keras.layers
    x = L.Conv2D(4, 3, name="c1")(x)
    se = L.GlobalAveragePooling2D(keepdims=True)(x)
    se = L.Conv2D(2, 1, padding="same", activation="swish", name="se_r")(se)
    se = L.Conv2D(4, 1, padding="same", activation="sigmoid", name="se_e")(se)
    x = L.multiply([x, se])
    return L.Dense(10, name="d1")(L.Flatten()(x))


def _with_blocks(case):
    src, build = case
    return "use std.blocks\n" + src, build


def _kb(*names):
    return [f"{n}.{w}" for n in names for w in ("kernel", "bias")]


# The layers and options of issue 11 (the model zoo). Dropout's noise_shape draws a random mask that
# cannot be shared with Keras: tests/gradients.rs checks the mask's shape and its gradient instead.
ZOO = {
    "zoo_activations": generic(
        "pixels", "pixels: [N, 8, 8, 1]",
        'pixels |> conv2d(4, 3, activation = swish, name = "c1") '
        '|> relu(max_value = 0.3, negative_slope = 0.1, threshold = 0.05) '
        '|> conv2d(4, 3, activation = mish, name = "c2") |> relu6 |> flatten '
        '|> dense(16, activation = hard_swish, name = "d0") |> hard_sigmoid '
        '|> dense(12, activation = silu, name = "d2") |> dense(10, name = "d1")',
        "let pixels = pixels / 16", _zoo_activations,
        {"c1": _kb("c1"), "c2": _kb("c2"), "d0": _kb("d0"), "d2": _kb("d2"), "d1": _kb("d1")},
        ((8, 8, 1), "float32")),
    "zoo_borders_norms": generic(
        "pixels", "pixels: [N, 8, 8, 1]",
        'pixels |> rescaling(2.0, offset = -0.5) |> normalization(mean = 0.1, variance = 0.3) '
        '|> zero_padding2d([[0, 1], [0, 1]]) |> conv2d(4, 3, bias = false, name = "c1") '
        '|> batch_norm(scale = false, name = "bn") |> relu(max_value = 6) |> cropping2d([[1, 0], [0, 2]]) '
        '|> zero_padding2d([1, 2]) |> layer_norm(center = false, name = "ln") '
        '|> layer_scale(init_values = 0.5, name = "ls") |> hard_silu |> global_avg_pool(keepdims = true) '
        '|> flatten |> dense(10, name = "d1")',
        "let pixels = pixels / 16", _zoo_borders,
        {"c1": ["c1.kernel"], "bn": ["bn.beta", "bn.moving_mean", "bn.moving_var"], "ln": ["ln.gamma"],
         "ls": ["ls.gamma"], "d1": _kb("d1")},
        ((8, 8, 1), "float32")),
    "zoo_seq": generic(
        "rows", "rows: [N, 8, 8]",
        'rows |> zero_padding1d([1, 2]) |> cropping1d([2, 1]) '
        '|> normalization(mean = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8], variance = 4) '
        '|> relu(threshold = 0.02) |> dense(8, bias = false, name = "d0") |> batch_norm(center = false, name = "bn") '
        '|> relu(negative_slope = 0.2) |> global_avg_pool(keepdims = true) |> flatten |> dense(10, name = "d1")',
        "let rows = rows / 16", _zoo_seq,
        {"d0": ["d0.kernel"], "bn": ["bn.gamma", "bn.moving_mean", "bn.moving_var"], "d1": _kb("d1")},
        ((8, 8), "float32")),
    "zoo_squeeze_excite": _with_blocks(generic(
        "pixels", "pixels: [N, 8, 8, 1]",
        'pixels |> conv2d(4, 3, name = "c1") |> squeeze_excite(2, use_swish = true, name = "se") '
        '|> flatten |> dense(10, name = "d1")',
        "let pixels = pixels / 16", _zoo_se,
        {"c1": _kb("c1"), "se_r": _kb("se.conv2d"), "se_e": _kb("se.conv2d_1"), "d1": _kb("d1")},
        ((8, 8, 1), "float32"))),
}

CELLS = {
    "lstm": 'lstm(6, name = "r")',
    "gru": 'gru(6, name = "r")',
    "gru_v1": 'gru(6, reset_after = false, name = "r")',
    "bilstm": 'bidirectional(lstm(6), name = "r")',
}

# Grouped, depthwise and separable convolutions (Keras's Conv2D(groups=…), DepthwiseConv1D/2D, SeparableConv1D/2D).
EXTRA.update({
    "conv2d_groups": generic(
        "pixels", "pixels: [N, 8, 8, 1]",
        'pixels |> conv2d(4, 3, name = "c0") |> conv2d(6, 3, groups = 2, name = "g") |> flatten '
        '|> dense(10, name = "d1")',
        "let pixels = pixels / 16",
        lambda x: keras.layers.Dense(10, name="d1")(keras.layers.Flatten()(
            keras.layers.Conv2D(6, 3, groups=2, name="g")(keras.layers.Conv2D(4, 3, name="c0")(x)))),
        {"c0": ["c0.kernel", "c0.bias"], "g": ["g.kernel", "g.bias"], "d1": ["d1.kernel", "d1.bias"]},
        ((8, 8, 1), "float32")),
    "depthwise_conv2d": generic(
        "pixels", "pixels: [N, 8, 8, 1]",
        'pixels |> conv2d(3, 3, padding = same, name = "c0") '
        '|> depthwise_conv2d(3, depth_multiplier = 2, stride = 2, padding = same, name = "dw") |> flatten '
        '|> dense(10, name = "d1")',
        "let pixels = pixels / 16",
        lambda x: keras.layers.Dense(10, name="d1")(keras.layers.Flatten()(
            keras.layers.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2, name="dw")(
                keras.layers.Conv2D(3, 3, padding="same", name="c0")(x)))),
        {"c0": ["c0.kernel", "c0.bias"], "dw": ["dw.kernel", "dw.bias"], "d1": ["d1.kernel", "d1.bias"]},
        ((8, 8, 1), "float32")),
    "separable_conv2d": generic(
        "pixels", "pixels: [N, 8, 8, 1]",
        'pixels |> conv2d(2, 3, name = "c0") |> separable_conv2d(4, 3, depth_multiplier = 2, name = "sp") '
        '|> flatten |> dense(10, name = "d1")',
        "let pixels = pixels / 16",
        lambda x: keras.layers.Dense(10, name="d1")(keras.layers.Flatten()(
            keras.layers.SeparableConv2D(4, 3, depth_multiplier=2, name="sp")(
                keras.layers.Conv2D(2, 3, name="c0")(x)))),
        {"c0": ["c0.kernel", "c0.bias"], "sp": ["sp.depthwise_kernel", "sp.pointwise_kernel", "sp.bias"],
         "d1": ["d1.kernel", "d1.bias"]},
        ((8, 8, 1), "float32")),
    # Key without "conv": the input is `rows`.
    "grouped+depthwise+separable_1d": generic(
        "rows", "rows: [N, 8, 8]",
        'rows |> conv1d(4, 3, groups = 2, name = "g") |> depthwise_conv1d(3, depth_multiplier = 2, name = "dw") '
        '|> separable_conv1d(6, 3, padding = same, name = "sp") |> flatten |> dense(10, name = "d1")',
        "let rows = rows / 16",
        lambda x: keras.layers.Dense(10, name="d1")(keras.layers.Flatten()(
            keras.layers.SeparableConv1D(6, 3, padding="same", name="sp")(
                keras.layers.DepthwiseConv1D(3, depth_multiplier=2, name="dw")(
                    keras.layers.Conv1D(4, 3, groups=2, name="g")(x))))),
        {"g": ["g.kernel", "g.bias"], "dw": ["dw.kernel", "dw.bias"],
         "sp": ["sp.depthwise_kernel", "sp.pointwise_kernel", "sp.bias"], "d1": ["d1.kernel", "d1.bias"]},
        ((8, 8), "float32")),
})

OPTIMIZERS = {
    "sgd": ("sgd(lr = 0.1, momentum = 0.9)", lambda: keras.optimizers.SGD(0.1, momentum=0.9)),
    "nesterov": ("sgd(lr = 0.1, momentum = 0.9, nesterov = true)", lambda: keras.optimizers.SGD(0.1, momentum=0.9, nesterov=True)),
    "adam": ("adam(lr = 1e-2)", lambda: keras.optimizers.Adam(1e-2)),
    "adamax": ("adamax(lr = 1e-2)", lambda: keras.optimizers.Adamax(1e-2)),
    "rmsprop": ("rmsprop(lr = 1e-2)", lambda: keras.optimizers.RMSprop(1e-2)),
    "adagrad": ("adagrad(lr = 1e-1)", lambda: keras.optimizers.Adagrad(1e-1)),
    "adadelta": ("adadelta(lr = 1.0)", lambda: keras.optimizers.Adadelta(1.0)),
}


def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-6))


def run_case(nnc, name, source, builder, make_opt, steps, inputs):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "case.nn")
        with open(path, "w") as f:
            f.write(source)
        dump = os.path.join(tmp, "dump")
        # The case file lives in a temporary directory but reads the repository's data: `--root` widens the
        # project root (files a .nn file reads must lie under it) to the repository.
        r = subprocess.run([nnc, "run", path, "--root", ROOT, "--dump-steps", str(steps), "--dump", dump,
                            "--seed", "3"], capture_output=True, text=True)
        if r.returncode != 0:
            return [f"{name}: nnc failed: {r.stderr.strip()}"]
        init = load_file(os.path.join(dump, "init.safetensors"))
        model, names = builder()
        for layer in model.layers:
            if layer.name in names:
                layer.set_weights([init[n] for n in names[layer.name]])
        opt = make_opt()
        tv = [v.value for v in model.trainable_variables]
        ntv = [v.value for v in model.non_trainable_variables]
        loss_obj = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        opt.build(model.trainable_variables)
        errors = []
        trainable_names = []
        for layer in model.layers:
            for w in layer.trainable_weights:
                trainable_names.append(w)
        for i in range(steps):
            batch = load_file(os.path.join(dump, f"batch_{i}.safetensors"))
            if inputs == "tokens":
                x = batch[inputs].astype(np.int32)
            else:
                x = batch[inputs].astype(np.float32) / 16.0  # the train blocks' `let … / 16`
            y = batch["label"].astype(np.int32)
            x = x.reshape((-1,) + tuple(model.inputs[0].shape[1:]))

            def loss_fn(tv, ntv):
                out, new_ntv = model.stateless_call(tv, ntv, x, training=True)
                return loss_obj(y, out), new_ntv

            (loss, new_ntv), grads = jax.value_and_grad(loss_fn, has_aux=True)(tv, ntv)
            with open(os.path.join(dump, f"step_{i}.json")) as f:
                nnc_loss = json.load(f)["loss"]
            if abs(nnc_loss - float(loss)) > TOL * max(1.0, abs(float(loss))):
                errors.append(f"{name} step {i}: loss nnc {nnc_loss} keras {float(loss)}")
            nnc_grads = load_file(os.path.join(dump, f"grads_{i}.safetensors"))
            flat_names = [n for layer in model.layers if layer.name in names
                          for n, w in zip(names[layer.name], layer.weights) if w.trainable]
            # A parameter whose true gradient is zero (a key bias in attention:
            # softmax ignores constant shifts) has gradients of pure rounding
            # noise on both sides, which Adam then scales up: such parameters
            # are compared absolutely and their updates are not compared.
            noise = set()
            for n, g in zip(flat_names, grads):
                if max(np.linalg.norm(nnc_grads[n]), np.linalg.norm(np.asarray(g))) < 1e-5:
                    noise.add(n)
                    continue
                e = rel(nnc_grads[n], g)
                if e > TOL:
                    errors.append(f"{name} step {i}: gradient {n} differs by {e:.2e}")
            tv, opt_vars = opt.stateless_apply([v.value for v in opt.variables], grads, tv)
            for var, value in zip(opt.variables, opt_vars):
                var.assign(value)
            ntv = new_ntv
            after = load_file(os.path.join(dump, f"after_{i}.safetensors"))
            for n, w in zip(flat_names, tv):
                if n in noise:
                    continue
                e = rel(after[n], w)
                if e > TOL:
                    errors.append(f"{name} step {i}: updated {n} differs by {e:.2e}")
            ntv_names = [n for layer in model.layers if layer.name in names
                         for n, w in zip(names[layer.name], layer.weights) if not w.trainable]
            for n, w in zip(ntv_names, ntv):
                e = rel(after[n], w)
                if e > TOL:
                    errors.append(f"{name} step {i}: moving statistic {n} differs by {e:.2e}")
        return errors


def main():
    nnc = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target", "release", "nnc")
    cases = []
    for key, (opt_src, make_opt) in OPTIMIZERS.items():
        cases.append((f"mlp/{key}", MLP.format(data=DIGITS, opt=opt_src), keras_mlp, make_opt, 3, "pixels"))
    cases.append(("convnet+batch_norm/adam", CONVNET.format(data=DIGITS, opt=OPTIMIZERS["adam"][0]), keras_convnet,
                  OPTIMIZERS["adam"][1], 2, "pixels"))
    for cell, src in CELLS.items():
        cases.append((f"{cell}/adam", RNN.format(data=DIGITS, opt=OPTIMIZERS["adam"][0], cell=src), keras_rnn(cell),
                      OPTIMIZERS["adam"][1], 1, "rows"))
    for key, (src, build) in EXTRA.items():
        inp = "tokens" if key == "embedding" else ("pixels" if "conv" in key else "rows")
        cases.append((f"{key}/adam", src, build, OPTIMIZERS["adam"][1], 2, inp))
    for key, (src, build) in ZOO.items():
        inp = "rows" if key == "zoo_seq" else "pixels"
        cases.append((f"{key}/adam", src, build, OPTIMIZERS["adam"][1], 2, inp))
    failures = []
    passed = 0
    for case in cases:
        errs = run_case(nnc, *case)
        if errs:
            failures.extend(errs)
            print(f"FAIL {case[0]}")
            for e in errs[:6]:
                print(f"    {e}")
        else:
            passed += 1
            print(f"ok   {case[0]}")
    print(f"{passed} passed, {len(cases) - passed} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
