#!/usr/bin/env python3
"""Round trip: `nnc export --to keras` → Keras → `nnc import` gives back the same model (issue 14).

For every model of every example (examples/*.nn; then examples/zoo/*.nn at common.py's small sizes):
  1. `nnc export FILE --to keras DIR --model M`; build the Keras model from DIR/model.py and load the
     (perturbed) exported weights with its `load_weights`;
  2. `model.to_json()` (and, for the first model, a `.keras` save: both must import to the same text)
     → `nnc import` → `nnc check` clean;
  3. `nnc summary --format json`: the imported model has the original's total and trainable parameter
     counts, every layer of the original has its counterpart (the importer keeps Keras's layer names, which
     are nnc's) with the same output shape and parameter count, and the outputs' shapes agree;
  4. the Keras model's weights written as an nnc checkpoint under the imported model's parameter names
     (tests/import/keras_equal.py's mapping of Keras variable paths), `nnc predict` of the imported model
     equals `nnc predict` of the original (on the original's checkpoint) within 1e-5 relative.

All Keras models are built in this one process. Prints a table (model × export, import, summary, outputs)
and the reason of each failure. Models that cannot round-trip are listed in EXPECTED with their reason; the
script exits 1 when any other model fails (a new regression), or when an expected failure starts passing
(the list must then be shortened).

Usage: KERAS_BACKEND=jax python3 tests/export/roundtrip.py path/to/nnc [NAME-FILTER...]
Test-only dependencies: Keras 3 with JAX, numpy.
"""

import glob
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TOLERANCE = 1e-5
BATCH = 3


def load_module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# The Keras-path → nnc-role mapping and the weight perturbation of the two Keras checks (loaded by path: both
# files are called keras_equal.py).
import_equal = load_module(os.path.join(ROOT, "tests", "import", "keras_equal.py"), "import_keras_equal")
export_equal = load_module(os.path.join(HERE, "keras_equal.py"), "export_keras_equal")
from common import run, sets_of, write_safetensors  # noqa: E402

# Models that do not round-trip, with the reason; `stem/Model` (or `stem/*`) → (the first column that fails,
# why). Everything else must pass every column.
NNC_OP = "model.py computes {} with its own NncOp layer class (Keras has no such layer), which import cannot know"
EXPECTED = {
    "char_rnn/CharRnn": ("import", NNC_OP.format("one_hot")),
    "pytorch_layer_tour/FullyConnected": ("import", NNC_OP.format("a reshape of the batch axis")),
    "pytorch_layer_tour/Normalization": (
        "import", "instance_norm is GroupNormalization(groups=C): the importer reads no shapes to know C"),
    "transformer_sentiment/TransformerClassifier": ("import", NNC_OP.format("the sinusoidal position encoding")),
    "convnext_tiny/ConvNeXtTiny": ("import", "model.py's own NncLayerScale class (Keras applications' LayerScale "
                                             "is not a public Keras layer)"),
    # max_pool(padding = 1): Keras's pooling has only valid/same padding, so model.py pads with -inf itself.
    "efficientnet_b0/EfficientNetB0": ("import", NNC_OP.format("squeeze-and-excitation's broadcast product")),
    "densenet121/DenseNet121": ("import", NNC_OP.format("max pooling's explicit -inf padding")),
    "resnet50/ResNet50": ("import", NNC_OP.format("max pooling's explicit -inf padding")),
}


def set_args(sets):
    return [a for s in sets for a in ("--set", s)]


def ident(name, taken):
    """The importer's identifier for a Keras name (src/import/keras.rs `ident`)."""
    s = re.sub(r"[^A-Za-z0-9]", "_", name)
    if not s[:1].isalpha():
        s = "l_" + s
    keywords = {"dim", "model", "block", "train", "input", "output", "let", "use", "true", "false", "int", "float",
                "none"}
    if s in keywords:
        s += "_out"
    base, k = s, 1
    while s in taken:
        s, k = f"{base}_{k}", k + 1
    taken.add(s)
    return s


def canonical(shape, seen=None):
    """Symbolic axes by order of first appearance (the importer names them `N`, `T`, `T2`, …). The batch
    axis is symbolic whatever it was: a Keras `Input` has no batch size, so `[16, 28, 28, 1]` comes back
    as `[N, 28, 28, 1]`. (A layer of several outputs has a list of shapes.)"""
    seen = {} if seen is None else seen
    if shape and isinstance(shape[0], list):
        return [canonical(s, seen) for s in shape]
    axes = [d if isinstance(d, int) else seen.setdefault(d, f"#{len(seen)}") for d in shape[1:]]
    return ["batch"] + axes if shape else []


def summary_of(nnc, path, sets, model=None):
    out = json.loads(run([nnc, "summary", path, "--format", "json", *set_args(sets)]))
    models = out["models"]
    return next(m for m in models if m["name"] == model) if model else models[0]


def compare_summaries(orig, imp):
    """The reasons the imported summary differs from the original's (empty when equal)."""
    why = []
    for key in ("total", "trainable"):
        if orig[key] != imp[key]:
            why.append(f"{key} {imp[key]} != {orig[key]}")
    by_name = {l["name"]: l for l in imp["layers"]}
    for layer in orig["layers"]:
        # A `repeat` is the container of the layers it lists separately; Keras has only those.
        if layer["layer"] in ("input", "repeat"):
            continue
        mine = by_name.get(layer["name"])
        if mine is None:
            why.append(f"no layer {layer['name']}")
            continue
        if canonical(mine["output_shape"]) != canonical(layer["output_shape"]):
            why.append(f"{layer['name']}: shape {mine['output_shape']} != {layer['output_shape']}")
        if mine["params"] != layer["params"]:
            why.append(f"{layer['name']}: {mine['params']} parameters != {layer['params']}")
    shapes = [canonical(o["shape"]) for o in orig["outputs"]]
    if [canonical(o["shape"]) for o in imp["outputs"]] != shapes:
        why.append(f"outputs {[o['shape'] for o in imp['outputs']]} != {[o['shape'] for o in orig['outputs']]}")
    return why


def predict(nnc, path, model, weights, inputs, sets, tmp, tag):
    args = []
    for name, value in inputs.items():
        file = os.path.join(tmp, f"{tag}_{name}.npy")
        np.save(file, value)
        args += ["--input", f"{name}={file}"]
    out = os.path.join(tmp, f"{tag}_out.npy")
    model_args = ["--model", model] if model else []
    run([nnc, "predict", path, *model_args, "--weights", weights, "--output", out, *args, *set_args(sets)])
    return np.load(out)


def last_line(e):
    lines = [l for l in str(e).strip().splitlines() if l.strip()]
    return lines[-1][:200] if lines else type(e).__name__


def untranslated(e):
    """`nnc import`'s list of what it could not translate, as one line."""
    text = str(e)
    if "cannot be translated" not in text:
        return last_line(e)
    items = [l.strip(" -•") for l in text.splitlines() if l.startswith(("  ", "-", "•")) and l.strip()]
    return "could not translate: " + "; ".join(items)[:300]


class Case:
    def __init__(self, stem, model):
        self.stem, self.model = stem, model
        self.cols = {"export": "-", "import": "-", "summary": "-", "outputs": "-"}
        self.reason, self.rel = "", None

    def fail(self, col, why):
        self.cols[col] = "FAIL"
        self.reason = why

    @property
    def label(self):
        return f"{self.stem}/{self.model}"

    @property
    def ok(self):
        return all(v == "ok" for v in self.cols.values())


def round_trip(nnc, stem, path, sets, model, tmp, rng, save_keras):
    case = Case(stem, model)
    orig = summary_of(nnc, path, sets, model)
    out = os.path.join(tmp, "export")
    try:
        run([nnc, "export", path, "--to", "keras", out, "--model", model, *set_args(sets)])
        mod = load_module(os.path.join(out, "model.py"), f"exported_{stem}_{model}")
        tensors = export_equal.perturbed(mod.read_safetensors(os.path.join(out, "weights.safetensors")), rng)
        weights = os.path.join(tmp, "orig.safetensors")
        write_safetensors(weights, tensors)
        keras_model = mod.load_weights(mod.BUILDERS[model](), weights)
        config = os.path.join(tmp, "config.json")
        with open(config, "w") as f:
            f.write(keras_model.to_json())
        case.cols["export"] = "ok"
    except Exception as e:  # noqa: BLE001 - reported per case
        case.fail("export", last_line(e))
        return case
    imported = os.path.join(tmp, "imported.nn")
    try:
        run([nnc, "import", config, "-o", imported])
        if save_keras:
            # The `.keras` archive holds the same config: it imports to the same text.
            archive = os.path.join(tmp, "model.keras")
            keras_model.save(archive)
            again = os.path.join(tmp, "from_archive.nn")
            run([nnc, "import", archive, "-o", again])
            with open(imported) as a, open(again) as b:
                if a.read().split("\n", 1)[1] != b.read().split("\n", 1)[1]:
                    raise ValueError("the .keras archive imports to another text than its JSON config")
        # Clean: no error and no warning (diagnostics go to standard error).
        check = subprocess.run([nnc, "check", imported], capture_output=True, text=True)
        if check.returncode != 0 or check.stderr.strip():
            raise ValueError(f"nnc check: {(check.stdout + check.stderr).strip()}")
        case.cols["import"] = "ok"
    except Exception as e:  # noqa: BLE001
        case.fail("import", untranslated(e))
        return case
    imp = summary_of(nnc, imported, [])
    why = compare_summaries(orig, imp)
    if why:
        case.fail("summary", "; ".join(why)[:300])
        return case
    case.cols["summary"] = "ok"
    try:
        mapped = os.path.join(tmp, "imported.safetensors")
        params = {w["name"]: w["shape"] for layer in imp["layers"] for w in layer.get("weights", [])}
        write_safetensors(mapped, import_equal.checkpoint(keras_model, params))
        # Integer inputs (token ids, labels) below 2: every vocabulary and class count allows them.
        dtypes = {i.name: str(i.dtype) for i in keras_model.inputs}
        feeds = {}
        for layer in orig["layers"]:
            if layer["layer"] != "input":
                continue
            shape = [d if isinstance(d, int) else BATCH for d in layer["output_shape"]]
            # An input the Keras graph does not read (a label) gets integers too: they suit either kind.
            if "int" in dtypes.get(layer["name"], "int"):
                feeds[layer["name"]] = rng.integers(0, 2, size=shape).astype(np.int64)
            else:
                feeds[layer["name"]] = rng.standard_normal(shape).astype(np.float32)
        want = predict(nnc, path, model, weights, feeds, sets, tmp, "orig")
        # The importer's inputs: the Keras graph's, under identifiers made from their names.
        taken, read = set(), {l["name"] for l in imp["layers"] if l["layer"] == "input"}
        feeds = {ident(k, taken): v for k, v in feeds.items()}
        have = predict(nnc, imported, None, mapped, {k: v for k, v in feeds.items() if k in read}, [], tmp, "imp")
        if have.shape != want.shape:
            case.fail("outputs", f"shape {have.shape} != {want.shape}")
            return case
        case.rel = float(np.max(np.abs(have.astype(np.float64) - want))) / max(float(np.max(np.abs(want))), 1e-30)
        if case.rel > TOLERANCE:
            case.fail("outputs", f"max relative difference {case.rel:.2e}")
            return case
        case.cols["outputs"] = "ok"
    except Exception as e:  # noqa: BLE001
        case.fail("outputs", last_line(e))
    return case


def examples(filters):
    files = sorted(glob.glob(os.path.join(ROOT, "examples", "*.nn")))
    files += sorted(glob.glob(os.path.join(ROOT, "examples", "zoo", "*.nn")))
    for path in files:
        stem = os.path.splitext(os.path.basename(path))[0]
        if filters and not any(f in stem for f in filters):
            continue
        yield stem, path, sets_of(path)


def expected(case):
    return EXPECTED.get(case.label) or EXPECTED.get(f"{case.stem}/*")


def main():
    nnc = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target/release/nnc"))
    filters = sys.argv[2:]
    rng = np.random.default_rng(14)
    cases, saved = [], False
    for stem, path, sets in examples(filters):
        for m in json.loads(run([nnc, "summary", path, "--format", "json", *set_args(sets)]))["models"]:
            with tempfile.TemporaryDirectory() as tmp:
                try:
                    case = round_trip(nnc, stem, path, sets, m["name"], tmp, rng, save_keras=not saved)
                except Exception as e:  # noqa: BLE001 - a bug of this script must not hide the other rows
                    case = Case(stem, m["name"])
                    case.reason = f"test error: {last_line(e)}"
            saved = saved or case.cols["import"] == "ok"
            cases.append(case)
            note = f" ({case.reason})" if case.reason else ""
            print(f"{'ok  ' if case.ok else 'FAIL'} {case.label}{note}", flush=True)
    width = max(len(c.label) for c in cases) if cases else 10
    print()
    print(f"| {'model':<{width}} | export | import | summary | outputs | rel. diff |")
    print(f"|{'-' * (width + 2)}|--------|--------|---------|---------|-----------|")
    for c in cases:
        rel = f"{c.rel:.1e}" if c.rel is not None else "-"
        widths = (("export", 6), ("import", 6), ("summary", 7), ("outputs", 7))
        cols = " | ".join(f"{c.cols[k]:<{n}}" for k, n in widths)
        print(f"| {c.label:<{width}} | {cols} | {rel:<9} |")
    print()
    regressions, stale = [], []
    for c in cases:
        want = expected(c)
        if c.ok and want:
            stale.append(c)
        elif not c.ok:
            print(f"{c.label}: {c.reason}" + (f" — expected: {want[1]}" if want else ""))
            if not want or c.cols[want[0]] != "FAIL":
                regressions.append(c)
    for c in stale:
        print(f"{c.label} now round-trips: remove it from EXPECTED")
    passed = sum(c.ok for c in cases)
    print(f"{passed}/{len(cases)} round-trip; {len(regressions)} unexpected failure(s), "
          f"{len(stale)} stale expectation(s)")
    return 1 if regressions or stale else 0


if __name__ == "__main__":
    sys.exit(main())
