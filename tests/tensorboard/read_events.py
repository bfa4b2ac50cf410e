"""Reads a run directory of `nnc run` with TensorBoard's own event reader, as `tensorboard --logdir` does.

Usage: read_events.py RUN_DIR. Run by tests/run_outputs.rs (which skips it when the `tensorboard` package is
missing). Checks what a Keras user expects to see: `train/` and `validation/` runs with `epoch_loss` and
`epoch_accuracy` per epoch (steps 0, 1, …), `batch_loss` per step in `train/`, and the validation sample grid
as a PNG image per epoch.
"""

import sys

from tensorboard.backend.event_processing import event_accumulator as ea


def load(path):
    acc = ea.EventAccumulator(path, size_guidance={ea.SCALARS: 0, ea.IMAGES: 0})
    acc.Reload()
    return acc


def main():
    run = sys.argv[1]
    train, val = load(f"{run}/train"), load(f"{run}/validation")
    for name, acc in [("train", train), ("validation", val)]:
        tags = acc.Tags()
        for tag in ["epoch_loss", "epoch_accuracy"]:
            assert tag in tags["scalars"], (name, tags)
            steps = [e.step for e in acc.Scalars(tag)]
            assert steps == list(range(len(steps))) and steps, (name, tag, steps)
            print(name, tag, [round(e.value, 4) for e in acc.Scalars(tag)])
    batch = [e.step for e in train.Scalars("batch_loss")]
    assert batch == list(range(len(batch))) and batch, batch
    images = val.Images("samples")
    assert len(images) == len(val.Scalars("epoch_loss")), images
    for im in images:
        assert im.encoded_image_string.startswith(b"\x89PNG\r\n\x1a\n")
        assert im.width > 0 and im.height > 0
    print(f"batch_loss: {len(batch)} steps; samples: {len(images)} images of {images[0].width}x{images[0].height}")


if __name__ == "__main__":
    main()
