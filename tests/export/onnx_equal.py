#!/usr/bin/env python3
"""`nnc export --to onnx` against `nnc predict`, for every model of every example.

Usage: python3 tests/export/onnx_equal.py path/to/nnc [NAME-FILTER...]

For each model of examples/*.nn and examples/zoo/*.nn (the zoo at a small input size and 10 classes, so that
the reference runs take seconds):
  1. export with the initial weights; take the initialisers that are parameters (nnc's checkpoint names),
     perturb them (so biases and batch-norm statistics are not all 0/1) and write them as a safetensors
     checkpoint;
  2. export again with `--weights` that checkpoint; the initialisers must be exactly the checkpoint's;
  3. `onnx.checker.check_model(full_check=True)`;
  4. for two batch sizes (neither is the size the exporter lowered at), random inputs (integer inputs below
     the bound the file's metadata `nnc.index_bound.<input>` gives) through onnxruntime and through
     `nnc predict --backend reference`; the first output must agree: max |onnx - nnc| / max |nnc| <= 1e-5.

Test-only dependencies: numpy, onnx, onnxruntime (CPU wheels). Exit status 1 when any model fails.
"""

import glob
import json
import os
import sys
import tempfile

import numpy as np
import onnx
import onnx.numpy_helper
import onnxruntime as ort

from common import ROOT, run, sets_of, write_safetensors

TOLERANCE = 1e-5
BATCHES = (3, 5)


def params_of(model):
    """Initialisers that are model parameters: helper constants are named `layer/what_id_k`."""
    return {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer if "/" not in t.name}


def models_of(nnc, path, sets):
    out = run([nnc, "summary", path, "--format", "json"] + [a for s in sets for a in ("--set", s)])
    return [m["name"] for m in json.loads(out)["models"]]


def random_inputs(sess, model, n, rng):
    meta = {p.key: p.value for p in model.metadata_props}
    feeds = {}
    for i in sess.get_inputs():
        shape = [n if isinstance(d, str) else d for d in i.shape]
        if i.type == "tensor(int64)":
            bound = int(meta.get(f"nnc.index_bound.{i.name}", "2"))
            feeds[i.name] = rng.integers(0, bound, size=shape).astype(np.int64)
        else:
            feeds[i.name] = rng.standard_normal(shape).astype(np.float32)
    return feeds


def check_model(nnc, path, name, sets, tmp, rng):
    setargs = [a for s in sets for a in ("--set", s)]
    base = [nnc, "export", path, "--to", "onnx", "--model", name] + setargs
    init_path, onnx_path, weights = (os.path.join(tmp, f) for f in ("init.onnx", "m.onnx", "w.safetensors"))
    run(base + [init_path])
    params = params_of(onnx.load(init_path))
    perturbed = {}
    for k, v in params.items():
        # Kernels keep their initialiser's scale (additive noise on a 4096×4096 kernel would saturate every
        # softmax); vectors (biases, batch-norm statistics, scales) get an offset so they are not all 0 or 1.
        noise = rng.uniform(0.8, 1.2, size=v.shape) * v
        if v.ndim <= 1:
            noise = noise + 0.05 * rng.standard_normal(v.shape)
        perturbed[k] = np.abs(noise) if "variance" in k else noise
    write_safetensors(weights, perturbed)
    run(base + ["--weights", weights, onnx_path])
    model = onnx.load(onnx_path)
    onnx.checker.check_model(model, full_check=True)
    got = params_of(model)
    assert got.keys() == perturbed.keys(), "the weights are not the checkpoint's"
    for k in got:
        assert np.array_equal(got[k], perturbed[k].astype(np.float32)), f"weight {k} differs from the checkpoint"
    sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    worst = 0.0
    for n in BATCHES:
        feeds = random_inputs(sess, model, n, rng)
        args = []
        for k, v in feeds.items():
            np.save(os.path.join(tmp, f"{k}.npy"), v)
            args += ["--input", f"{k}={os.path.join(tmp, k)}.npy"]
        out = os.path.join(tmp, "out.npy")
        run([nnc, "predict", path, "--model", name, "--weights", weights, "--output", out, "--backend", "reference"]
            + args + setargs)
        want = np.load(out)
        have = sess.run([sess.get_outputs()[0].name], feeds)[0]
        assert have.shape == want.shape, f"batch {n}: shape {have.shape} != nnc's {want.shape}"
        scale = max(float(np.max(np.abs(want))), 1e-30)
        worst = max(worst, float(np.max(np.abs(have.astype(np.float64) - want))) / scale)
    return worst


def main():
    nnc = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target/release/nnc"))
    filters = sys.argv[2:]
    files = sorted(glob.glob(os.path.join(ROOT, "examples/*.nn"))) + sorted(glob.glob(os.path.join(ROOT, "examples/zoo/*.nn")))
    rng = np.random.default_rng(0)
    failures = 0
    for path in files:
        stem = os.path.splitext(os.path.basename(path))[0]
        if filters and not any(f in stem for f in filters):
            continue
        sets = sets_of(path)
        for name in models_of(nnc, path, sets):
            label = f"{os.path.relpath(path, ROOT)}:{name}"
            try:
                with tempfile.TemporaryDirectory() as tmp:
                    worst = check_model(nnc, path, name, sets, tmp, rng)
                ok = worst <= TOLERANCE
                failures += not ok
                print(f"{'ok  ' if ok else 'FAIL'} {label}: max relative difference {worst:.2e}", flush=True)
            except Exception as e:  # one model's failure must not hide the others'
                failures += 1
                print(f"FAIL {label}: {e}", flush=True)
    print(f"{failures} failure(s)")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
