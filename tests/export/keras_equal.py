#!/usr/bin/env python3
"""`nnc export --to keras` against nnc itself (test-only: Keras is never a dependency of nnc).

1. Predict: for every model of every example (examples/*.nn, examples/zoo/*.nn at a small input size),
   export it, build the Keras model from model.py, load the exported weights, run it on random inputs
   and compare its first output with `nnc predict` on the same inputs and weights.
2. One data-parallel step: for the MLP, ConvNet, LSTM and GAN examples, run one step of the exported
   train.py (`--one-step`) on two host devices from nnc's initial weights and first batch
   (`nnc run --dump-steps 1`), and compare the loss and every updated weight with nnc's.

0. Every layer of the table: its manual example as a one-layer model, Keras against `nnc predict`.

Usage: python3 tests/export/keras_equal.py path/to/nnc [--predict-only | --step-only | --layers-only] [NAME…]
"""

import glob
import importlib.util
import json
import os
import re
import sys
import tempfile

# Two host devices for the data-parallel step; set before JAX starts.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402

from common import ROOT, run, sets_of, write_safetensors  # noqa: E402

# float32 through two implementations of the same ops (different summation orders, exp/tanh
# polynomials): the outputs agree to a few ulps times the depth of the network.
PREDICT_TOL = 1e-5
STEP_TOL = 1e-4
BATCH = 3
# Train blocks of the data-parallel step test: (example, train block or None for the first, edits). A step
# draws random numbers (dropout masks, a GAN's noise) that two frameworks cannot share: such examples run
# as a copy with the randomness edited out (dropout rate 0; the noise taken from pixels of the batch), which keeps
# every other part of the step (the alternating GAN updates, batch norm's modes, the optimizers) compared.
NO_DROPOUT = [(r"dropout\(\s*[0-9.]+", "dropout(0.0")]
STEP_CASES = [
    ("digits_mlp", None, []),
    # nnc's coupled weight decay and global-norm clipping, done by train.py around Keras's SGD.
    ("digits_mlp", None, [(r"optimizer\s*=\s*\w+\([^)]*\)", "optimizer = sgd(lr = 0.1, momentum = 0.9, weight_decay = 0.01, "
                                                            "clip_norm = 0.5)")]),
    ("workshop_convnet", None, []),
    ("mnist_cnn", None, NO_DROPOUT),
    ("keras_shapes_lstm", None, []),
    ("sentiment_lstm", None, NO_DROPOUT),
    ("mnist_gan", None, [(r"normal\(\[N, 100\]\)", "real[:, 350:450]")]),
]
# Biases whose true gradient is (nearly) zero and whose gradient files nnc does not write (a GAN iteration):
# fc1 → leaky_relu → batch_norm, where batch norm cancels a unit's bias whenever the batch stays on one side
# of leaky_relu's kink. Adam's first step divides such a gradient by its own size, so rounding differences
# become update differences (2.5e-4 relative on one device too: not the data parallelism). Compared at 1e-3.
LOOSE = {"mnist_gan": {"Generator.fc1.bias": 1e-3}}


def load_module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-6))


def perturbed(tensors, rng):
    """Initial weights leave many outputs trivial (zero biases, unit batch-norm statistics, near-uniform
    softmax); random weights of the same scale make every parameter matter. Variances stay positive."""
    out = {}
    for name, w in tensors.items():
        w = np.asarray(w, np.float32)
        if name.endswith("count"):
            out[name] = w
        elif name.endswith("var") or name.endswith("variance"):
            out[name] = (0.5 + rng.random(w.shape)).astype(np.float32)
        else:
            # Half the tensor's own spread (0.1 for constant ones: biases, gammas): deep stacks stay finite.
            spread = float(np.std(w))
            scale = 0.5 * spread if spread > 0 else 0.1
            out[name] = (w + scale * rng.standard_normal(w.shape)).astype(np.float32)
    return out


def examples(names):
    files = sorted(glob.glob(os.path.join(ROOT, "examples", "*.nn")))
    files += sorted(glob.glob(os.path.join(ROOT, "examples", "zoo", "*.nn")))
    out = []
    for f in files:
        stem = os.path.splitext(os.path.basename(f))[0]
        if names and stem not in names:
            continue
        out.append((stem, f, sets_of(f)))
    return out


def set_args(sets):
    return [a for s in sets for a in ("--set", s)]


def predict_model(nnc, path, sets, model, shapes, tmp, rng):
    out = os.path.join(tmp, model)
    run([nnc, "export", path, "--to", "keras", out, "--model", model, *set_args(sets)])
    mod = load_module(os.path.join(out, "model.py"), f"exported_{model}")
    weights = os.path.join(tmp, f"{model}_random.safetensors")
    write_safetensors(weights, perturbed(mod.read_safetensors(os.path.join(out, "weights.safetensors")), rng))
    keras_model = mod.load_weights(mod.BUILDERS[model](), weights)
    feeds, args = {}, []
    for inp in keras_model.inputs:
        name = inp.name
        shape = shapes[name]
        rows = shape[0] if isinstance(shape[0], int) else BATCH
        full = [rows] + [int(d) for d in shape[1:]]
        if "int" in str(inp.dtype):
            value = rng.integers(0, 2, size=full).astype(np.int64)
        else:
            value = rng.standard_normal(full).astype(np.float32)
        file = os.path.join(tmp, f"{model}_{name}.npy")
        np.save(file, value)
        feeds[name] = value.astype(np.int32) if value.dtype == np.int64 else value
        args += ["--input", f"{name}={file}"]
    got = keras_model(feeds, training=False)
    got = np.asarray(got[0] if isinstance(got, (list, tuple)) else got)
    out_npy = os.path.join(tmp, f"{model}_out.npy")
    run([nnc, "predict", path, "--model", model, "--weights", weights,
         "--output", out_npy, *args, *set_args(sets)])
    want = np.load(out_npy)
    if want.shape != got.shape:
        return f"shape nnc {want.shape} keras {got.shape}", float("inf")
    # NaN where both are NaN (log or sqrt of a negative input) agrees; the rest is compared.
    if not np.array_equal(np.isnan(got), np.isnan(want)):
        return "NaN in different places", float("inf")
    finite = ~np.isnan(want)
    e = rel(got[finite], want[finite])
    return ("ok" if e <= PREDICT_TOL else "differs"), e


def predict_all(nnc, names):
    rng = np.random.default_rng(7)
    rows, failures = [], 0
    for stem, path, sets in examples(names):
        summary = json.loads(run([nnc, "summary", path, "--format", "json", *set_args(sets)]))
        for m in summary["models"]:
            shapes = {l["name"]: l["output_shape"] for l in m["layers"] if l["layer"] == "input"}
            with tempfile.TemporaryDirectory() as tmp:
                try:
                    status, err = predict_model(nnc, path, sets, m["name"], shapes, tmp, rng)
                except Exception as ex:  # noqa: BLE001 - reported per case
                    status, err = f"error: {str(ex).strip().splitlines()[-1][:300]}", float("inf")
            failures += status != "ok"
            rows.append((stem, m["name"], status, err))
            print(f"{'ok  ' if status == 'ok' else 'FAIL'} predict {stem}/{m['name']}: {status} (rel {err:.1e})",
                  flush=True)
    return rows, failures


def layer_examples():
    """Every entry of the layer table with its manual example (`TYPE => EXPR`, compiler/src/layers/rules.rs)."""
    with open(os.path.join(ROOT, "compiler", "src", "layers", "rules.rs")) as f:
        text = f.read()
    out = []
    for m in re.finditer(r'layer!\(\s*"(\w+)",.*?example: "([^"]*)"', text, re.S):
        ty, expr = m.group(2).split("=>")
        out.append((m.group(1), ty.strip(), expr.strip()))
    return out


def predict_layers(nnc, names):
    """Each layer's example as a one-layer model, Keras against nnc (every option the example sets)."""
    rng = np.random.default_rng(11)
    failures = 0
    for name, ty, expr in layer_examples():
        if names and name not in names:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, f"{name}.nn")
            with open(path, "w") as f:
                f.write(f"dim N\n\nmodel M {{\n    input x: {ty}\n    output y = {expr}\n}}\n")
            summary = json.loads(run([nnc, "summary", path, "--format", "json"]))
            shapes = {l["name"]: l["output_shape"] for l in summary["models"][0]["layers"] if l["layer"] == "input"}
            try:
                status, err = predict_model(nnc, path, [], "M", shapes, tmp, rng)
            except Exception as ex:  # noqa: BLE001 - reported per case
                status, err = f"error: {str(ex).strip().splitlines()[-1][:300]}", float("inf")
        # A random layer (normal, uniform, gaussian noise in training) draws differently in each framework:
        # only its shape is compared.
        if name in ("normal", "uniform") and status == "differs":
            status = "ok"
        failures += status != "ok"
        print(f"{'ok  ' if status == 'ok' else 'FAIL'} layer {name}: {expr}: {status} (rel {err:.1e})", flush=True)
    return failures


def step_case(nnc, stem, train, edits):
    """One data-parallel step of train.py against `nnc run --dump-steps 1`."""
    path = os.path.join(ROOT, "examples", f"{stem}.nn")
    with tempfile.TemporaryDirectory() as tmp:
        if edits:
            with open(path) as f:
                text = f.read().replace("../data/", os.path.join(ROOT, "data") + "/")
            for pattern, replacement in edits:
                text, n = re.subn(pattern, replacement, text)
                assert n > 0, f"{stem}: no {pattern}"
            path = os.path.join(tmp, f"{stem}.nn")
            with open(path, "w") as f:
                f.write(text)
        out, dump = os.path.join(tmp, "export"), os.path.join(tmp, "dump")
        targs = ["--train", train] if train else []
        targs += ["--root", ROOT]
        run([nnc, "run", path, "--dump-steps", "1", "--dump", dump, *targs])
        run([nnc, "export", path, "--to", "keras", out, "--weights", os.path.join(dump, "init.safetensors"),
             *targs])
        result = os.path.join(tmp, "step.json")
        run([sys.executable, os.path.join(out, "train.py"), "--one-step", os.path.join(dump, "batch_0.safetensors"),
             "--step-out", result], cwd=out)
        with open(result) as f:
            got = json.load(f)
        with open(os.path.join(dump, "step_0.json")) as f:
            want_loss = json.load(f)["loss"]
        mod = load_module(os.path.join(out, "model.py"), f"step_{stem}")
        after = mod.read_safetensors(os.path.join(dump, "after_0.safetensors"))
        errors = []
        if abs(got["loss"] - want_loss) > STEP_TOL * max(1.0, abs(want_loss)):
            errors.append(f"loss nnc {want_loss} keras {got['loss']}")
        weights = mod.read_safetensors(got["weights"])
        # A parameter whose true gradient is zero (a bias before batch norm) has a gradient of rounding
        # noise on both sides, which Adam scales to full-size steps: its update is not compared (as in
        # tests/oracle/oracle.py).
        grads_file = os.path.join(dump, "grads_0.safetensors")
        grads = mod.read_safetensors(grads_file) if os.path.exists(grads_file) else {}
        for name, value in after.items():
            if name in grads and np.linalg.norm(grads[name]) < 1e-5:
                continue
            if name not in weights:
                errors.append(f"{name}: not in Keras's weights")
                continue
            e = rel(np.reshape(weights[name], value.shape), value)
            if e > LOOSE.get(stem, {}).get(name, STEP_TOL):
                errors.append(f"{name} differs by {e:.1e}")
        return errors, got["loss"], want_loss, got.get("devices", 0)


def step_all(nnc, names):
    rows, failures = [], 0
    for stem, train, edits in STEP_CASES:
        if names and stem not in names:
            continue
        try:
            errors, loss, want, devices = step_case(nnc, stem, train, edits)
        except Exception as ex:  # noqa: BLE001 - reported per case
            errors, loss, want, devices = [f"error: {str(ex).strip()[-600:]}"], float("nan"), float("nan"), 0
        failures += bool(errors)
        rows.append((stem, "ok" if not errors else "; ".join(errors[:4])))
        label = stem + (" (edited: " + ", ".join(r for _, r in edits) + ")" if edits else "")
        print(f"{'ok  ' if not errors else 'FAIL'} dp-step {label}: loss keras {loss} nnc {want} on {devices} devices"
              + ("" if not errors else "\n    " + "\n    ".join(errors[:6])), flush=True)
    return rows, failures


def main():
    args = sys.argv[1:]
    nnc = args.pop(0) if args and not args[0].startswith("-") else os.path.join(ROOT, "target", "release", "nnc")
    nnc = os.path.abspath(nnc)
    only_predict, only_step = "--predict-only" in args, "--step-only" in args
    only_layers = "--layers-only" in args
    names = [a for a in args if not a.startswith("--")]
    failures = 0
    if not only_step:
        failures += predict_layers(nnc, names)
        if only_layers:
            print("all equal" if failures == 0 else f"{failures} failed")
            return 1 if failures else 0
        _, f = predict_all(nnc, names)
        failures += f
    if not only_predict:
        _, f = step_all(nnc, names)
        failures += f
    print("all equal" if failures == 0 else f"{failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
