"""Keras 3's own parameter counts for the keras.applications families of examples/zoo/.

Run with a Python that has Keras 3 (test-only; nnc never imports it):

    ~/peers/jax/bin/python tests/zoo/keras_counts.py [Family …]

For each family it builds the application with `weights=None`, `include_top=True` and the default
input (224×224×3, 299×299×3 for InceptionV3 and Xception) and prints the `//! expect` line an
example in examples/zoo/ carries, with a `// source:` line naming the Keras version and the length
of Keras's Python definition (the lines of the module that defines it, `inspect.getsource`).
"""

import inspect
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import keras  # noqa: E402

# nnc model name → (keras.applications constructor, the module that defines it)
FAMILIES = {
    "Vgg19": "VGG19",
    "ResNet50": "ResNet50",
    "ResNet50V2": "ResNet50V2",
    "DenseNet121": "DenseNet121",
    "MobileNet": "MobileNet",
    "MobileNetV2": "MobileNetV2",
    "EfficientNetB0": "EfficientNetB0",
    "InceptionV3": "InceptionV3",
    "Xception": "Xception",
    "ConvNeXtTiny": "ConvNeXtTiny",
}


def main(names):
    for nnc_name, keras_name in FAMILIES.items():
        if names and nnc_name not in names and keras_name not in names:
            continue
        build = getattr(keras.applications, keras_name)
        model = build(weights=None, include_top=True)
        trainable = sum(int(keras.ops.size(w)) for w in model.trainable_weights)
        non_trainable = sum(int(keras.ops.size(w)) for w in model.non_trainable_weights)
        module = inspect.getmodule(build)
        source = inspect.getsource(module)
        path = module.__name__.replace(".", "/") + ".py"
        lines = len(source.splitlines())
        print(f"//! expect model {nnc_name} total={trainable + non_trainable} "
              f"trainable={trainable} non_trainable={non_trainable}")
        print(f"// source: Keras {keras.__version__} keras.applications.{keras_name}(weights=None), "
              f"{model.input_shape[1]}×{model.input_shape[2]} input; {path}: {lines} lines "
              f"(tests/zoo/keras_counts.py)")
        sys.stdout.flush()
        del model
        keras.backend.clear_session()


if __name__ == "__main__":
    main(set(sys.argv[1:]))
