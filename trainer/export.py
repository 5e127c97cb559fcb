"""Export a trained .keras model to ONNX or LiteRT, for runtimes without Python TensorFlow.

    python -m trainer.export weights/cnn.keras --format onnx [--out DIR]
    python -m trainer.export weights/cnn.keras --format litert [--out DIR]

The exported file keeps the .keras file's contract: float32 face crops of 0-255 pixels in
(N x H x W x C, any N), the seven class probabilities out in the canonical order. Its
NAME.json (class names, input shape, and whatever else the model's JSON records) is copied
beside it, so demo.classify can load NAME.onnx or NAME.tflite like NAME.keras.

Keras 3's own `model.export` does the conversion (tf2onnx for ONNX, the TFLite converter
for LiteRT). The training-only augmentation block is replaced by an identity first: it is
inert at inference, but its random ops have no ONNX equivalent and would be traced anyway.
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
    """The same network (sharing its weights) with the augmentation block left out."""
    import keras

    class Skip(keras.layers.Layer):
        """Identity that accepts the training/mask arguments the augmentation block was called with."""

        def call(self, inputs, training=None, mask=None):
            return inputs

    if not any(layer.name == AUGMENTATION for layer in model.layers):
        return model
    return keras.models.clone_model(
        model, clone_function=lambda layer: Skip(name=AUGMENTATION) if layer.name == AUGMENTATION
        else layer,  # the layer itself: its weights are shared, not re-initialised
    )


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
    model = inference_model(keras.saving.load_model(model_path))
    shape = tuple(int(d) for d in model.input_shape[1:])
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
