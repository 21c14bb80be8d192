"""How tests/data/keras_tf2onnx.onnx was made (not run by the suite: tensorflow is not a test
dependency). A Keras CNN on 8x8x3 NHWC images with seeded random weights and biases, converted by
tf2onnx (opset 17; IR version pinned to 8 afterwards so any onnxruntime of the pins loads it).

    python -m venv /tmp/tf && /tmp/tf/bin/pip install tensorflow-cpu tf2onnx
    /tmp/tf/bin/python tests/data/make_keras_tf2onnx.py   # tensorflow-cpu 2.21.0, tf2onnx 1.17.0
"""

import os
import sys
from pathlib import Path

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np
import onnx
import tensorflow as tf
import tf2onnx

tf.keras.utils.set_random_seed(0)
model = tf.keras.Sequential([
    tf.keras.Input((8, 8, 3)),
    tf.keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv"),
    tf.keras.layers.MaxPooling2D(2, name="pool"),
    tf.keras.layers.Flatten(name="flatten"),
    tf.keras.layers.Dense(16, activation="relu", name="dense"),
    tf.keras.layers.Dense(5, activation="softmax", name="probs"),
])
rng = np.random.default_rng(0)
for layer in model.layers:
    layer.set_weights([rng.normal(0, 0.5, w.shape).astype(np.float32) for w in layer.get_weights()])
model.output_names = ["probs"]
spec = (tf.TensorSpec((None, 8, 8, 3), tf.float32, name="input"),)
proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=17)
proto.ir_version = 8
out = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).with_name("keras_tf2onnx.onnx"))
onnx.save(proto, str(out))
x = rng.normal(0, 1, (4, 8, 8, 3)).astype(np.float32)
np.save(out.with_suffix(".probs.npy"), model.predict(x, verbose=0))
np.save(out.with_suffix(".x.npy"), x)
for n in proto.graph.node:
    print(n.op_type, n.name, list(n.input), "->", list(n.output))
