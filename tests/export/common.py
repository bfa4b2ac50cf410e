"""What the export and import checks share (test-only): where the repository is, the sizes the examples run
at, a command runner and a safetensors writer. Imported by tests/export/{onnx_equal,keras_equal,roundtrip}.py and
tests/import/keras_equal.py, so a size or the checkpoint layout is stated once."""

import json
import os
import subprocess

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The zoo at inputs small enough for the reference executor (the architecture is the same at any size; each
# family's smallest size Keras accepts is larger than what its convolutions need; these all check clean).
ZOO_SETS = {
    "inception_v3": ["size=75", "classes=10"],
    "xception": ["size=71", "classes=10"],
}
ZOO_DEFAULT = ["size=32", "classes=10"]
# Examples whose size is a model parameter: a smaller head, the layers unchanged.
SETS = {"vgg16": ["classes=10"]}


def sets_of(path):
    """The `--set` overrides an example file runs with."""
    stem = os.path.splitext(os.path.basename(path))[0]
    if os.sep + "zoo" + os.sep in path:
        return ZOO_SETS.get(stem, ZOO_DEFAULT)
    return SETS.get(stem, [])


def run(cmd, **kw):
    """Runs a command; its standard output, or an error holding both outputs."""
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout}{p.stderr}")
    return p.stdout


def write_safetensors(path, tensors):
    """The safetensors layout: u64 header length, JSON header, little-endian float32 data."""
    header, blobs, offset = {}, [], 0
    for name, a in tensors.items():
        raw = np.ascontiguousarray(a, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(np.shape(a)), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little") + text + b"".join(blobs))
