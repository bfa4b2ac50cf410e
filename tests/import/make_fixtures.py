#!/usr/bin/env python3
"""Writes the Keras fixtures of tests/import.rs: each model's `model.to_json()` as <name>.json, and
counts.json with each model's `count_params()`; mlp.keras is one model saved whole (a zip of config.json
and model.weights.h5). Run with Keras 3 (KERAS_BACKEND=jax); the Rust test reads only the files.
"""
import json
import os

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras
from keras import layers

HERE = os.path.dirname(os.path.abspath(__file__))


def mlp():
    return keras.Sequential([
        keras.Input((784,)),
        layers.Dense(128, activation="relu"),
        layers.Dropout(0.2),
        layers.Dense(64, activation="tanh", use_bias=False),
        layers.Dense(10, activation="softmax"),
    ], name="mlp")


def cnn():
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        layers.Conv2D(32, 3, activation="relu", padding="same"),
        layers.BatchNormalization(),
        layers.MaxPooling2D(2),
        layers.Conv2D(64, (3, 3), strides=2),
        layers.ReLU(),
        layers.GlobalAveragePooling2D(),
        layers.Dense(10),
    ], name="cnn")


def lstm():
    return keras.Sequential([
        keras.Input((50,), dtype="int32"),
        layers.Embedding(1000, 32),
        layers.LSTM(64, return_sequences=True),
        layers.Bidirectional(layers.GRU(16)),
        layers.Dense(1, activation="sigmoid"),
    ], name="lstm")


def residual():
    x = keras.Input((32, 32, 3), name="image")
    h = layers.Conv2D(16, 3, padding="same", name="stem")(x)
    a = layers.Conv2D(16, 3, padding="same", activation="relu", name="branch_a")(h)
    s = layers.Add(name="add")([h, a])
    b = layers.DepthwiseConv2D(3, padding="same", name="dw")(s)
    c = layers.Concatenate(name="cat")([s, b])
    y = layers.AveragePooling2D(2, name="pool")(c)
    y = layers.Flatten(name="flat")(y)
    y = layers.LayerNormalization(name="norm")(y)
    out = layers.Dense(5, name="logits")(y)
    return keras.Model(x, out, name="residual")


def two_inputs():
    a = keras.Input((8,), name="left")
    b = keras.Input((4,), name="right")
    h = layers.Concatenate()([layers.Dense(6, activation="gelu")(a), b])
    m = layers.Multiply()([layers.Dense(10)(h), layers.Dense(10, activation="sigmoid")(h)])
    return keras.Model([a, b], [layers.Dense(3)(m), layers.Dense(1)(m)], name="two_inputs")


def images():
    return keras.Sequential([
        keras.Input((16, 16, 3)),
        layers.Rescaling(1 / 255),
        layers.ZeroPadding2D(((0, 1), (0, 1))),
        layers.SeparableConv2D(8, 3, activation="swish"),
        layers.Activation("relu"),
        layers.UpSampling2D(2),
        layers.Conv2DTranspose(4, 3, strides=2, padding="same"),
        layers.Cropping2D(2),
        layers.GlobalMaxPooling2D(),
        layers.Reshape((4, 1)),
        layers.SimpleRNN(5, return_sequences=True),
        layers.Flatten(),
        layers.Activation("linear"),
        layers.Dense(3, activation="softmax"),
    ], name="images")


def shared():
    x = keras.Input((4,))
    d = layers.Dense(4, name="shared")
    return keras.Model(x, d(d(x)), name="shared")


def unsupported():
    return keras.Sequential([
        keras.Input((16,)),
        layers.Dense(8, kernel_regularizer="l2"),
        layers.ActivityRegularization(l1=0.1),
        layers.Dense(2),
    ], name="unsupported")


# The models nnc translates (tests/import/keras_equal.py checks their outputs).
TRANSLATABLE = (mlp, cnn, lstm, residual, two_inputs, images)


def main():
    counts = {}
    for build in (mlp, cnn, lstm, residual, two_inputs, images, shared, unsupported):
        model = build()
        name = build.__name__
        with open(os.path.join(HERE, f"{name}.json"), "w") as f:
            f.write(json.dumps(json.loads(model.to_json()), indent=1, sort_keys=True) + "\n")
        counts[name] = model.count_params()
        if name == "mlp":
            model.save(os.path.join(HERE, "mlp.keras"))
    with open(os.path.join(HERE, "counts.json"), "w") as f:
        json.dump({"keras": keras.__version__, "count_params": counts}, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
