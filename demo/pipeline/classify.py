"""Load saved emotion models (NAME.keras, NAME.onnx or NAME.tflite + NAME.json) and classify
batches of face crops.

The model file carries its own scaling, channel handling and (for .keras) augmentation
layers; NAME.json beside it carries the class names. This module only brings crops to the
input shape the model declares and calls it once per batch. The three runtimes (Keras,
ONNX Runtime, LiteRT; trainer.export writes the last two) share that one preparation, so
they differ only in the call itself.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from demo.pipeline.faces import WEIGHTS
from trainer.calibration import ENSEMBLE_FILE, apply_temperature, serving
from trainer.views import view_count, views

# Display names for the models we ship, in dropdown order; other model files in
# weights/ (a user's own) are listed after them under their file name.
SHIPPED = {"cnn": "CNN", "resnet50": "ResNet50", "mobilenetv2": "MobileNetV2"}
# Further cnn files we ship as ensemble members (teachers of the distilled cnn; weights/README.md).
MEMBERS = {"cnn_medium": "CNN, medium (ensemble member)", "cnn_small": "CNN, small (ensemble member)"}
LABELS = {**SHIPPED, **MEMBERS}
ENSEMBLE = "ensemble"
TRAIN_HINT = "python -m trainer.train --model {name} --data DATA --out weights"
RUNTIMES = {"keras": ".keras", "onnx": ".onnx", "litert": ".tflite"}


class ModelUnavailable(RuntimeError):
    """The selected model cannot be used; the message says why and what to do."""


def _keras_fn(path: Path):
    import keras
    import tensorflow as tf

    model = keras.saving.load_model(path)  # safe_mode: refuses arbitrary code
    shape = tuple(int(d) for d in model.input_shape[1:])
    # One traced graph for any batch size: far cheaper per call than model.predict.
    # training=False is essential: Keras' random augmentation layers default to
    # training mode when a model is called without it.
    fn = tf.function(lambda x: model(x, training=False), input_signature=[tf.TensorSpec((None, *shape), tf.float32)])
    # Traced here, once: several first calls at the same moment (a fresh server's first webcam
    # viewers) each traced it anew, with TensorFlow's "excessive retracing" warning in the log.
    fn(tf.zeros((1, *shape)))
    return (lambda batch: np.asarray(fn(batch))), shape, int(model.output_shape[-1])


def _onnx_fn(path: Path):
    try:
        import onnxruntime as ort
    except ImportError:
        raise ModelUnavailable("the onnx runtime needs onnxruntime (pip install onnxruntime)") from None
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inp, out = session.get_inputs()[0], session.get_outputs()[0]
    return (lambda batch: session.run([out.name], {inp.name: batch})[0]), tuple(inp.shape[1:]), int(out.shape[-1])


def _litert_fn(path: Path):
    try:
        from ai_edge_litert.interpreter import Interpreter  # LiteRT's own package: no TensorFlow needed
    except ImportError:
        raise ModelUnavailable("the litert runtime needs ai-edge-litert (pip install ai-edge-litert)") from None
    interpreter = Interpreter(model_path=str(path), num_threads=os.cpu_count())
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    lock, allocated = threading.Lock(), {"shape": None}

    def call(batch: np.ndarray) -> np.ndarray:
        with lock:  # one interpreter holds one set of tensors
            if allocated["shape"] != batch.shape:  # the file keeps a resizable batch dimension
                interpreter.resize_tensor_input(inp["index"], batch.shape)
                interpreter.allocate_tensors()
                allocated["shape"] = batch.shape
            interpreter.set_tensor(inp["index"], batch)
            interpreter.invoke()
            return interpreter.get_tensor(out["index"]).copy()

    return call, tuple(int(d) for d in inp["shape"][1:]), int(out["shape"][-1])


LOADERS = {".keras": _keras_fn, ".onnx": _onnx_fn, ".tflite": _litert_fn}


@dataclass
class EmotionModel:
    name: str
    path: Path
    class_names: list[str]
    input_shape: tuple[int, int, int]
    _fn: Callable[[np.ndarray], np.ndarray] = field(repr=False)
    meta: dict = field(default_factory=dict, repr=False)

    @property
    def live_views(self) -> str:
        """The views the live webcam uses (NAME.json; plain by default: real time first)."""
        return self.meta.get("serving", {}).get("live_views", "none")

    @classmethod
    def load(cls, path: Path) -> EmotionModel:
        """A .keras, .onnx or .tflite file with its NAME.json beside it."""
        path = Path(path)
        meta_path = path.with_suffix(".json")
        if path.suffix not in LOADERS:
            raise ModelUnavailable(f"{path.name}: not a model file ({', '.join(LOADERS)})")
        if not path.is_file():
            raise ModelUnavailable(f"{path.name} is missing from {path.parent}/")
        if not meta_path.is_file():
            raise ModelUnavailable(f"{meta_path.name} (class names) is missing beside {path.name}")
        meta = json.loads(meta_path.read_text())
        fn, shape, outputs = LOADERS[path.suffix](path)
        class_names = list(meta["class_names"])
        if outputs != len(class_names):
            raise ModelUnavailable(f"{path.name} outputs {outputs} classes but {meta_path.name} names {len(class_names)}")
        # The file's name, as the dropdown lists it: several files can hold one architecture.
        return cls(path.stem, path, class_names, tuple(int(d) for d in shape), fn, meta)

    def prepare(self, crops: list[np.ndarray]) -> np.ndarray:
        """RGB uint8 crops -> float32 batch at the model's size and channel count."""
        h, w, c = self.input_shape
        batch = np.empty((len(crops), h, w, c), np.float32)
        for i, crop in enumerate(crops):
            im = Image.fromarray(crop)
            if c == 1:
                im = im.convert("L")  # the order the trainer uses: grey first, then resize
            im = im.resize((w, h), Image.Resampling.BILINEAR)
            arr = np.asarray(im, dtype=np.float32)
            batch[i] = arr[..., None] if arr.ndim == 2 else arr
        return batch

    def predict(self, crops: list[np.ndarray], view_set: str | None = None) -> np.ndarray:
        """(n, classes) calibrated probabilities for n crops, every view in one call.

        view_set None: the test-time views chosen on val for this model (NAME.json "serving",
        trainer.views; on FER2013 they add two to four points), then the temperature fitted
        for them, so a confidence of 70 % is right about 70 % of the time.
        """
        if not crops:
            return np.zeros((0, len(self.class_names)), np.float32)
        view_set, temperature = serving(self.meta, view_set)
        batch = np.ascontiguousarray(np.concatenate(list(views(self.prepare(crops), view_set))))
        probs = np.asarray(self._fn(batch)).reshape(view_count(view_set), len(crops), -1).mean(axis=0)
        return apply_temperature(probs, temperature)


class Ensemble:
    """Average of the probabilities of several models that share their class names."""

    live_views = "none"

    def __init__(self, models: list[EmotionModel], temperature: float = 1.0):
        if not models:
            raise ModelUnavailable("the ensemble needs at least one trained model in weights/")
        names = {tuple(m.class_names) for m in models}
        if len(names) != 1:
            raise ModelUnavailable("the models in weights/ do not share one class list; no ensemble")
        self.name, self.models, self.class_names = ENSEMBLE, models, list(models[0].class_names)
        self.temperature = temperature

    def predict(self, crops, view_set: str | None = None):
        """Mean of the members' calibrated probabilities, then the ensemble's own temperature."""
        return apply_temperature(np.mean([m.predict(crops, view_set) for m in self.models], axis=0),
                                 self.temperature)


class ModelStore:
    """Models in a folder, loaded on first use and cached; safe to share between users.

    `runtime` picks which files count: NAME.keras (Keras), NAME.onnx (ONNX Runtime) or
    NAME.tflite (LiteRT), each with NAME.json beside it (so the face detectors' .tflite
    files, which have none, are never taken for emotion models).
    """

    def __init__(self, folder: Path | None = None, runtime: str = "keras"):
        # EKSPRESI_WEIGHTS points the demo at another folder of models (tests, your own runs).
        self.folder = Path(folder or os.environ.get("EKSPRESI_WEIGHTS") or WEIGHTS)
        if runtime not in RUNTIMES:
            raise ValueError(f"unknown runtime {runtime!r}; choose one of {sorted(RUNTIMES)}")
        self.suffix = RUNTIMES[runtime]
        self._cache: dict[str, EmotionModel] = {}
        self._lock = threading.Lock()

    def available(self) -> list[str]:
        return sorted(p.stem for p in self.folder.glob(f"*{self.suffix}") if p.with_suffix(".json").is_file())

    def names(self) -> list[str]:
        """What the dropdown and the API accept: the models present, then the ensemble of two or more."""
        have = self.available()
        ordered = [n for n in LABELS if n in have] + [n for n in have if n not in LABELS]
        return ordered + ([ENSEMBLE] if len(have) > 1 else [])

    def choices(self) -> list[tuple[str, str]]:
        """(label, value) pairs for a dropdown: shipped models, the user's own, the ensemble."""
        count = len(self.ensemble_members()[0])
        return [(f"Ensemble of {count} models" if n == ENSEMBLE else LABELS.get(n, n), n) for n in self.names()]

    def ensemble_members(self) -> tuple[list[str], float]:
        """(members, temperature): those that ensemble.json lists (trainer.calibrate chose them on
        val) with its temperature, or, without a valid file, every model present at T = 1."""
        have = self.available()
        path = self.folder / ENSEMBLE_FILE
        stored = json.loads(path.read_text()) if path.is_file() else {}
        members = stored.get("members") or []
        if len(members) >= 2 and set(members) <= set(have):
            return list(members), float(stored.get("temperature", 1.0))
        return have, 1.0

    def default(self) -> str:
        names = self.names()
        return names[0] if names else "cnn"

    def get(self, name: str):
        names = self.names()
        if not isinstance(name, str):  # an API call may send anything JSON holds: a list, None
            raise ModelUnavailable(f"the model is named by a string, one of: {', '.join(names) or 'none'}")
        if name not in names:  # also keeps names like "../x" from reaching the file system
            if name == ENSEMBLE:
                raise ModelUnavailable(f"the ensemble needs two or more models in {self.folder}/; "
                                       f"available: {', '.join(names) or 'none'}")
            label = LABELS.get(name, name)
            hint = f" Train it with `{TRAIN_HINT.format(name=name)}`." if name in SHIPPED else ""
            if self.suffix != ".keras" and (self.folder / f"{name}.keras").is_file():
                fmt = next(r for r, suffix in RUNTIMES.items() if suffix == self.suffix)
                hint = f" Export it with `python -m trainer.export {self.folder / name}.keras --format {fmt}`."
            raise ModelUnavailable(f"model {label!r} is not available (choose one of: {', '.join(names) or 'none'}).{hint}")
        if name == ENSEMBLE:
            members, temperature = self.ensemble_members()
            return Ensemble([self.get(n) for n in members], temperature)
        with self._lock:
            if name not in self._cache:
                self._cache[name] = EmotionModel.load(self.folder / f"{name}{self.suffix}")
            return self._cache[name]
