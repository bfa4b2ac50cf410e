#!/usr/bin/env python3
"""`nnc import` is equivalent, not only equal in parameter counts: each fixture model of make_fixtures.py
is built in Keras, its config imported, its Keras weights written as an nnc checkpoint (each Keras variable
under the nnc parameter of the same layer and role), and `nnc predict` must give Keras's outputs on random
inputs within 1e-5 relative to the output's scale.

Usage: KERAS_BACKEND=jax python3 tests/import/keras_equal.py path/to/nnc
Test-only dependencies: Keras 3 with JAX, numpy, onnx (to list the parameters nnc declares).
"""

import os
import sys
import tempfile

os.environ.setdefault("KERAS_BACKEND", "jax")
import numpy as np
import onnx

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "export"))
import make_fixtures  # noqa: E402
from common import run, write_safetensors  # noqa: E402

TOLERANCE = 1e-5


def nnc_role(keras_path):
    """A Keras variable path (`bidirectional/forward_gru/gru_cell/kernel`) as nnc names the parameter within
    its layer (`forward.kernel`)."""
    parts = keras_path.split("/")[1:]
    out = []
    for p in parts:
        if p.startswith("forward_"):
            out.append("forward")
        elif p.startswith("backward_"):
            out.append("backward")
        elif not p.endswith("_cell"):
            out.append({"moving_variance": "moving_var"}.get(p, p))
    return ".".join(out)


def checkpoint(model, params):
    """nnc parameter name → the Keras variable's value, matched by layer, role and shape."""
    by_name = {}
    for v in model.weights:
        # A Sequential model's variables are under its own name (`mlp/dense/kernel`).
        path = v.path[len(model.name) + 1:] if v.path.startswith(model.name + "/") else v.path
        layer = path.split("/")[0]
        by_name[f"{layer}.{nnc_role(path)}"] = np.asarray(v.numpy(), dtype=np.float32)
    out = {}
    for name, shape in params.items():
        if name not in by_name:
            raise KeyError(f"no Keras variable for nnc parameter {name} (Keras: {sorted(by_name)})")
        value = by_name[name]
        if tuple(value.shape) != tuple(shape):
            raise ValueError(f"{name}: Keras {value.shape}, nnc {shape}")
        out[name] = value
    return out


def check(nnc, build, tmp, rng):
    model = build()
    config = os.path.join(tmp, "config.json")
    with open(config, "w") as f:
        f.write(model.to_json())
    nn = os.path.join(tmp, "m.nn")
    run([nnc, "import", config, "-o", nn])
    init = os.path.join(tmp, "init.onnx")
    run([nnc, "export", nn, "--to", "onnx", init])
    params = {t.name: list(t.dims) for t in onnx.load(init).graph.initializer if "/" not in t.name}
    # Non-trivial biases and statistics: Keras initialises them to 0 and 1.
    for v in model.weights:
        if len(v.shape) == 1:
            v.assign(np.abs(v.numpy() + 0.1 * rng.standard_normal(v.shape)).astype(np.float32))
    weights = checkpoint(model, params)
    w = os.path.join(tmp, "w.safetensors")
    write_safetensors(w, weights)
    worst = 0.0
    for n in (3, 5):
        feeds, args = [], []
        for i, inp in enumerate(model.inputs):
            shape = [n] + list(inp.shape[1:])
            if "int" in str(inp.dtype):
                x = rng.integers(0, 10, size=shape).astype(np.int64)
            else:
                x = rng.standard_normal(shape).astype(np.float32)
            feeds.append(x)
            path = os.path.join(tmp, f"in{i}.npy")
            np.save(path, x)
            # nnc's input is named after Keras's InputLayer.
            args += ["--input", f"{inp._keras_history[0].name}={path}"]
        out = os.path.join(tmp, "out.npy")
        run([nnc, "predict", nn, "--weights", w, "--output", out, "--backend", "reference"] + args)
        want = model.predict(feeds if len(feeds) > 1 else feeds[0], verbose=0)
        want = want[0] if isinstance(want, list) else want
        have = np.load(out)
        assert have.shape == want.shape, f"shape {have.shape} != Keras's {want.shape}"
        scale = max(float(np.max(np.abs(want))), 1e-30)
        worst = max(worst, float(np.max(np.abs(have - want))) / scale)
    return worst


def main():
    nnc = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "target/release/nnc")
    rng = np.random.default_rng(0)
    failures = 0
    for build in make_fixtures.TRANSLATABLE:
        try:
            with tempfile.TemporaryDirectory() as tmp:
                worst = check(nnc, build, tmp, rng)
            ok = worst <= TOLERANCE
            failures += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {build.__name__}: max relative difference {worst:.2e}", flush=True)
        except Exception as e:  # one model's failure must not hide the others'
            failures += 1
            print(f"FAIL {build.__name__}: {e}", flush=True)
    print(f"{failures} failure(s)")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
