"""Export a trained .keras model to ONNX or LiteRT, for runtimes without Python TensorFlow.

    python -m trainer.export weights/cnn.keras --format onnx [--out DIR]
    python -m trainer.export weights/cnn.keras --format litert [--out DIR]

The exported file keeps the .keras file's contract: float32 face crops of 0-255 pixels in
(N x H x W x C, any N), the seven class probabilities out in the canonical order. Its
NAME.json (class names, input shape, and whatever else the model's JSON records) is copied
beside it, so demo.pipeline.classify can load NAME.onnx or NAME.tflite like NAME.keras.

Keras 3's own `model.export` does the conversion (tf2onnx for ONNX, the TFLite converter
for LiteRT). The training-only augmentation block is replaced by an identity first: it is
inert at inference, but its random ops have no ONNX equivalent and would be traced anyway.
The network is exported as called with training=False, and a Normalization layer with a fixed
mean and variance as plain arithmetic on constants (inference_model says why).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

log = logging.getLogger("trainer.export")
FORMATS = {"onnx": ".onnx", "litert": ".tflite"}
AUGMENTATION = "augmentation"  # trainer.models.augmentation() names its block so


def inference_model(model):
    """The same network (sharing its weights) for export: the augmentation block left out, each
    fixed Normalization layer as constants in the graph, and called in inference mode."""
    import keras
    import numpy as np

    class Skip(keras.layers.Layer):
        """Identity that accepts the training/mask arguments the augmentation block was called with."""

        def call(self, inputs, training=None, mask=None):
            return inputs

    class ConstantNormalization(keras.layers.Layer):
        """Keras' Normalization arithmetic with its mean and deviation as constants. Built with a
        given mean and variance (MobileNetV2's torch_preprocess), the Keras layer holds them as
        eager tensors, which the ONNX converter turned into two extra graph inputs."""

        def __init__(self, layer, **kwargs):
            super().__init__(name=layer.name, **kwargs)
            self.mean = np.asarray(keras.ops.convert_to_numpy(layer.mean), np.float32)
            std = np.sqrt(np.asarray(keras.ops.convert_to_numpy(layer.variance), np.float32))
            self.std = np.maximum(std, keras.backend.epsilon()).astype(np.float32)

        def call(self, inputs):
            return (inputs - self.mean) / self.std

    def fixed_normalization(layer):
        return isinstance(layer, keras.layers.Normalization) and layer.input_mean is not None and not layer.invert

    def swap(layer):
        if layer.name == AUGMENTATION:
            return Skip(name=AUGMENTATION)
        if fixed_normalization(layer):
            return ConstantNormalization(layer)
        return layer  # the layer itself: its weights are shared, not re-initialised

    class Inference(keras.Model):
        """Calls the network with training=False. Keras' export calls a model without it, and a
        nested model (MobileNetV2's backbone) then ran its BatchNorm on the batch's statistics
        in the exported graph: other probabilities for each batch, and 13 % of 512 labels off."""

        def __init__(self, network, **kwargs):
            super().__init__(name=network.name, **kwargs)
            self.network = network

        def call(self, inputs):
            return self.network(inputs, training=False)

    if any(layer.name == AUGMENTATION or fixed_normalization(layer) for layer in model.layers):
        model = keras.models.clone_model(model, clone_function=swap)
    return Inference(model)


def export(model_path: Path, fmt: str, out: Path) -> Path:
    """Write NAME.onnx or NAME.tflite (and NAME.json) to `out`; returns the model file's path."""
    import keras
    import numpy as np
    import tensorflow as tf

    model_path = Path(model_path)
    meta_path = model_path.with_suffix(".json")
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {sorted(FORMATS)}")
    if not model_path.is_file() or model_path.suffix != ".keras":
        raise FileNotFoundError(f"{model_path}: not a .keras file")
    if not meta_path.is_file():
        raise FileNotFoundError(f"{meta_path.name} (class names) is missing beside {model_path.name}")
    loaded = keras.saving.load_model(model_path)
    shape = tuple(int(d) for d in loaded.input_shape[1:])
    model = inference_model(loaded)
    model(np.zeros((1, *shape), np.float32), training=False)  # Keras exports only models that were called
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"{model_path.stem}{FORMATS[fmt]}"
    signature = [tf.TensorSpec((None, *shape), tf.float32, name="crops")]  # any batch size
    model.export(str(target), format=fmt, input_signature=signature, verbose=False)
    if meta_path.resolve() != (out / meta_path.name).resolve():
        shutil.copyfile(meta_path, out / meta_path.name)
    return target


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m trainer.export", description=__doc__.split("\n")[0])
    p.add_argument("model", type=Path, help="a .keras file with its NAME.json beside it")
    p.add_argument("--format", choices=sorted(FORMATS), required=True)
    p.add_argument("--out", type=Path, help="folder to write to (default: the model's folder)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        path = export(args.model, args.format, args.out or args.model.parent)
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except ImportError as err:  # tf2onnx missing: the trainer's requirements were not installed
        print(f"error: {err}; install the trainer's requirements (pip install -r requirements-train.txt)",
              file=sys.stderr)
        return 2
    print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MB) and {path.with_suffix('.json').name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
