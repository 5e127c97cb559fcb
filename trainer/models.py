"""Model registry: one name -> builder, input size, colour mode and default settings.

Every model takes float32 pixels 0-255 of shape (input_size, input_size, channels)
and returns softmax probabilities over CLASS_NAMES. Resizing, channel handling,
scaling and augmentation are layers inside the model, so a saved .keras file
needs nothing from this package to be used.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
from keras import layers

from trainer.classes import NUM_CLASSES
from trainer.pixels import CAFFE_MEAN_BGR, ROTATION, TORCH_MEAN, TORCH_STD, TRANSLATION, ZOOM

CNN_WIDTH = 32  # default first-block filters of the cnn


class BackboneWeightsError(RuntimeError):
    """ImageNet weights were asked for and cannot be had."""


@dataclass(frozen=True)
class ModelSpec:
    name: str
    builder: Callable
    description: str
    input_size: int = 48  # pixels the saved model takes (FER2013's native size)
    net_size: int | None = None  # resolution the backbone works at (resized inside)
    epochs: int = 40
    batch_size: int = 64
    lr: float = 1e-3
    label_smoothing: float = 0.1
    patience: int = 10
    backbone_weights: str | None = None  # default for transfer models
    fine_tune_epochs: int = 0
    extra: dict = field(default_factory=dict)


def augmentation(seed: int = 0, geometric: bool = True) -> keras.Sequential:
    """Training-only augmentation on 0-255 pixels; every layer is inert at inference.

    geometric=False leaves rotation, zoom and shift out of the model, for runs that do
    them on the host (trainer.augment): under JAX and PyTorch on a GPU, Keras' affine
    layers cost about 0.4 s per batch (measured on an H100), 200 times the network's step.
    """
    shapes = [
        layers.RandomRotation(ROTATION, fill_mode="nearest", seed=seed),
        layers.RandomZoom(ZOOM, fill_mode="nearest", seed=seed),
        layers.RandomTranslation(TRANSLATION, TRANSLATION, fill_mode="nearest", seed=seed),
    ]
    return keras.Sequential(
        [
            layers.RandomFlip("horizontal", seed=seed),
            *(shapes if geometric else []),
            layers.RandomContrast(0.3, value_range=(0, 255), seed=seed),
            layers.RandomBrightness(0.15, value_range=(0, 255), seed=seed),
            # Occlusion (hands, glasses) is common in the wild; erasing teaches robustness to it.
            layers.RandomErasing(factor=0.25, scale=(0.02, 0.12), value_range=(0, 255), seed=seed),
        ],
        name="augmentation",
    )


def _head(x, dropout: float, dense: int):
    x = layers.Dropout(dropout)(x)
    if dense:
        x = layers.Dense(dense, activation="relu")(x)
        x = layers.Dropout(dropout)(x)
    # Softmax in float32 even under mixed precision, for stable probabilities.
    return layers.Dense(NUM_CLASSES, activation="softmax", dtype="float32", name="emotion")(x)


def build_cnn(input_shape, width=None, geometric_aug=True, **_):
    """A VGG-style CNN for 48x48 faces: 4 blocks of two 3x3 convs with BN, GAP head.

    `width` is the first block's filters, doubled per block: 32 gives ~1.2 M parameters,
    48 ~2.6 M (about 2.7 ms per face at batch 1 on 2 CPU cores), 64 ~4.7 M (about 4.8 ms).
    """
    width = width or CNN_WIDTH
    inputs = keras.Input(input_shape, name="pixels")
    x = augmentation(geometric=geometric_aug)(inputs)
    x = layers.Rescaling(1 / 255.0)(x)
    for i, filters in enumerate(width * 2**k for k in range(4)):
        for j in range(2):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv{i}_{j}")(x)
            # momentum 0.9: the first conv's activations have a tiny variance, and with
            # Keras' 0.99 the moving variance still remembers its initial 1.0 for epochs,
            # which makes validation (inference mode) predict one class early on.
            x = layers.BatchNormalization(momentum=0.9)(x)
            x = layers.Activation("relu")(x)
        x = layers.MaxPooling2D()(x)
    # Global average pooling, not Flatten + Dense: measured to learn far faster here
    # (0.36 vs 0.25 train accuracy after 150 steps) with 0.6 M fewer parameters.
    # Dropout only in the head: spatial dropout in the blocks slowed learning (0.27 vs 0.36).
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, _head(x, 0.3, 0), name="cnn")


def build_seed_cnn(input_shape, **_):
    """The seed project's literal baseline: Conv 32, MaxPool, Conv 64, Flatten, Dense 128."""
    inputs = keras.Input(input_shape, name="pixels")
    x = layers.Rescaling(1 / 255.0)(inputs)
    x = layers.Conv2D(32, 3, activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(64, 3, activation="relu")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(128, activation="relu")(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", dtype="float32", name="emotion")(x)
    return keras.Model(inputs, outputs, name="seed_cnn")


def _to_rgb_at(x, channels: int, size: int):
    """Resize to the backbone's resolution and repeat a grey channel to three."""
    x = layers.Resizing(size, size, interpolation="bilinear", name="resize")(x)
    if channels == 1:
        x = layers.Concatenate(name="grey_to_rgb")([x, x, x])
    return x


def _fixed_conv(x, kernel: np.ndarray, bias: np.ndarray, name: str):
    """A frozen 1x1 convolution: a per-pixel affine colour transform that safe_mode accepts."""
    conv = layers.Conv2D(kernel.shape[-1], 1, trainable=False, name=name)
    y = conv(x)
    conv.set_weights([kernel.reshape(1, 1, *kernel.shape).astype("float32"), bias.astype("float32")])
    return y


def read_weights_info(path) -> dict:
    """The JSON written beside a converted notop weights file (flavour, preprocessing)."""
    info = Path(str(path).removesuffix(".weights.h5") + ".json")
    return json.loads(info.read_text()) if info.exists() else {}


def _check_weights_file(path):
    if not Path(path).is_file():
        raise BackboneWeightsError(f"backbone weights file not found: {path}")


def _imagenet_error(name, err):
    return BackboneWeightsError(
        f"could not download Keras' ImageNet weights for {name} ({type(err).__name__}: {err}). "
        "Offline? Pass --backbone-weights PATH to a local notop .weights.h5 file "
        "(for MobileNetV2: python -m trainer.pytorch.convert_mobilenet makes one from torchvision's "
        "official file), or --backbone-weights none to train from scratch."
    )


def mobilenetv2_backbone(size: int, flavour: str = "keras") -> keras.Model:
    """Keras MobileNetV2 without top; flavour 'torchvision' matches torchvision's network.

    torchvision pads stride-2 convolutions by one pixel on every side and uses
    BatchNorm epsilon 1e-5; Keras pads bottom/right only and uses 1e-3. The
    torchvision flavour takes a (size+2)^2 input that the caller zero-pads.
    """
    base = keras.applications.MobileNetV2(
        input_shape=(size, size, 3), include_top=False, weights=None
    )
    if flavour == "keras":
        return base
    config = base.get_config()
    for layer in config["layers"]:
        cfg = layer["config"]
        if layer["class_name"] == "InputLayer":
            cfg["batch_shape"] = [None, size + 2, size + 2, 3]
        elif layer["class_name"] == "ZeroPadding2D":
            cfg["padding"] = [[1, 1], [1, 1]]
        elif layer["class_name"] == "BatchNormalization":
            cfg["epsilon"] = 1e-5
            # torchvision's BatchNorm momentum 0.1 (Keras 0.9). Keras' own 0.999 makes the
            # moving statistics trail a full fine-tune by epochs, so validation lags and jumps.
            cfg["momentum"] = 0.9
        elif cfg.get("name") == "Conv1":
            cfg["padding"] = "valid"
    return keras.Model.from_config(config)


def _backbone(label: str, keras_imagenet: Callable, plain: Callable, backbone_weights) -> keras.Model:
    """The backbone with Keras' ImageNet weights, a local notop file's, or none."""
    if backbone_weights == "imagenet":
        try:
            backbone = keras_imagenet()
        except Exception as err:  # noqa: BLE001 - any download failure means the same to a user
            raise _imagenet_error(label, err) from err
    else:
        backbone = plain()
        if backbone_weights not in (None, "none"):
            _check_weights_file(backbone_weights)
            backbone.load_weights(backbone_weights)
    backbone.name = "backbone"  # trainer.train finds it by this name to freeze and fine-tune
    return backbone


def _transfer_model(inputs, x, backbone, name: str) -> keras.Model:
    """backbone + GAP + Dense 128 + Dense 7.

    The backbone is called without a fixed `training`: Keras 3 BatchNormalization
    uses batch statistics only when it is trainable, so the trainer decides per
    phase (frozen head phase: ImageNet statistics; fine-tuning with --fine-tune-bn:
    statistics adapt to faces).
    """
    x = backbone(x)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, _head(x, 0.3, 128), name=name)


def backbone_flavour(backbone_weights) -> str:
    """'torchvision' for a converted torchvision file (read from its JSON), else 'keras'."""
    if backbone_weights in (None, "none", "imagenet"):
        return "keras"
    _check_weights_file(backbone_weights)
    return read_weights_info(backbone_weights).get("flavour", "keras")


def build_mobilenetv2(input_shape, net_size=96, backbone_weights=None, flavour=None, geometric_aug=True, **_):
    """MobileNetV2 backbone (ImageNet or scratch) + GAP + Dense 128 + Dense 7.

    `flavour` defaults to the weights file's; pass it to rebuild a trained model's
    exact layout without its backbone file (trainer.train's export does).
    """
    flavour = flavour or backbone_flavour(backbone_weights)
    inputs = keras.Input(input_shape, name="pixels")
    x = augmentation(geometric=geometric_aug)(inputs)
    x = _to_rgb_at(x, input_shape[-1], net_size)
    if flavour == "torchvision":
        x = layers.Normalization(mean=TORCH_MEAN, variance=TORCH_STD**2, name="torch_preprocess")(x)
        x = layers.ZeroPadding2D(1, name="symmetric_pad")(x)
    else:
        x = layers.Rescaling(1 / 127.5, offset=-1.0, name="scale_to_pm1")(x)
    backbone = _backbone(
        "MobileNetV2",
        lambda: keras.applications.MobileNetV2(
            input_shape=(net_size, net_size, 3), include_top=False, weights="imagenet"
        ),
        lambda: mobilenetv2_backbone(net_size, flavour),
        backbone_weights,
    )
    return _transfer_model(inputs, x, backbone, "mobilenetv2")


def build_resnet50(input_shape, net_size=96, backbone_weights=None, geometric_aug=True, **_):
    """ResNet50 backbone (ImageNet or scratch) + GAP + Dense 128 + Dense 7."""
    inputs = keras.Input(input_shape, name="pixels")
    x = augmentation(geometric=geometric_aug)(inputs)
    x = _to_rgb_at(x, input_shape[-1], net_size)
    # RGB -> BGR and mean subtraction, as keras.applications.resnet50.preprocess_input.
    x = _fixed_conv(x, np.eye(3)[::-1].copy(), -CAFFE_MEAN_BGR, "caffe_preprocess")
    backbone = _backbone(
        "ResNet50",
        lambda: keras.applications.ResNet50(
            include_top=False, weights="imagenet", input_shape=(net_size, net_size, 3)
        ),
        lambda: keras.applications.ResNet50(include_top=False, weights=None, input_shape=(net_size, net_size, 3)),
        backbone_weights,
    )
    return _transfer_model(inputs, x, backbone, "resnet50")


REGISTRY: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in [
        ModelSpec("cnn", build_cnn, "VGG-style CNN from scratch, 48x48 grey", epochs=50, lr=1e-3, patience=15),
        ModelSpec(
            "seed_cnn", build_seed_cnn, "the seed project's 2-conv baseline", epochs=20, lr=1e-3,
            label_smoothing=0.0,
        ),
        ModelSpec(
            "mobilenetv2", build_mobilenetv2, "MobileNetV2, ImageNet transfer, 96x96 inside",
            net_size=96, epochs=5, lr=1e-3, backbone_weights="imagenet", fine_tune_epochs=20,
        ),
        ModelSpec(
            "resnet50", build_resnet50, "ResNet50, ImageNet transfer or scratch, 96x96 inside",
            net_size=96, epochs=5, lr=1e-3, backbone_weights="imagenet", fine_tune_epochs=20,
        ),
    ]
}


def get_spec(name: str) -> ModelSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(REGISTRY)}") from None


def build_model(name: str, input_shape, net_size=None, backbone_weights=None, flavour=None,
                width=None, geometric_aug=True) -> keras.Model:
    """geometric_aug=False: the model leaves rotation, zoom and shift to the host (trainer.augment)."""
    spec = get_spec(name)
    return spec.builder(
        tuple(input_shape), net_size=net_size or spec.net_size, backbone_weights=backbone_weights,
        flavour=flavour, width=width, geometric_aug=geometric_aug,
    )
