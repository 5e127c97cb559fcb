"""Copy a trainer.pytorch.train run's weights into trainer.models' Keras model and check it.

    python -m trainer.pytorch.to_keras --run RUN_DIR --out runs/NAME/keras [--data ../shared/datasets/fer2013/val]
    python -m trainer.pytorch.to_keras --run SENT_BACK --name resnet50 --out runs/gpu3/resnet50 --data ...

RUN_DIR holds one run's NAME.json, NAME.history.json and NAME_fp16.npz; SENT_BACK is what
tools/gpu/torch_collect.py packed (meta.tar.gz and the parts NAME_fp16.npz.part0, .part1, ...). Writes OUT/NAME.keras
(float32, Keras' own layout with the preprocessing inside, so it serves like any file
trainer.train writes), OUT/NAME.json and OUT/NAME.history.json. Where torch is installed, the
same weights also run in trainer.pytorch.nets' network on images of --data, and the two networks'
probabilities must agree, so a layout mismatch cannot ship.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tarfile
from pathlib import Path

import numpy as np

from trainer.models import build_model
from trainer.pytorch.convert_mobilenet import batchnorm_weights, conv_kernel, load_into

RESNET_BLOCKS = (3, 4, 6, 3)  # blocks of keras.applications' stages conv2 ... conv5
TOLERANCE = 1e-4  # largest difference of a probability allowed (float32 against float32: ~1e-6 seen)


def read_parts(paths) -> bytes:
    """tools/gpu/collect.py's write_parts pieces joined again, in part order whatever order `paths` has."""
    return b"".join(Path(p).read_bytes() for p in sorted(paths, key=lambda p: int(str(p).rsplit("part", 1)[1])))


def read_state(run: Path, name: str) -> dict[str, np.ndarray]:
    whole = run / f"{name}_fp16.npz"
    if whole.exists():
        blob = whole.read_bytes()
    else:
        parts = list(run.glob(f"{name}_fp16.npz.part*"))
        if not parts:
            raise SystemExit(f"no {whole.name} or its parts in {run}")
        blob = read_parts(parts)
    arrays = np.load(io.BytesIO(blob))
    return {k: arrays[k].astype(np.float32) for k in arrays.files}


def _conv(state, key):
    """keras.applications' ResNet50 convolutions have biases."""
    return [conv_kernel(state, key), state[f"{key}.bias"]]


def load_resnet50(backbone, state) -> None:
    """trainer.pytorch.nets.ResNet50's names onto keras.applications.ResNet50's."""
    backbone.get_layer("conv1_conv").set_weights(_conv(state, "backbone.conv1"))
    backbone.get_layer("conv1_bn").set_weights(batchnorm_weights(state, "backbone.bn1"))
    index = 0
    for stage, blocks in enumerate(RESNET_BLOCKS, start=2):
        for block in range(1, blocks + 1):
            keras_name, torch_name = f"conv{stage}_block{block}", f"backbone.blocks.{index}"
            pairs = [(i, f"conv{i}", f"bn{i}") for i in (1, 2, 3)]
            if block == 1:
                pairs.append((0, "shortcut.0", "shortcut.1"))
            for i, conv, bn in pairs:
                backbone.get_layer(f"{keras_name}_{i}_conv").set_weights(_conv(state, f"{torch_name}.{conv}"))
                backbone.get_layer(f"{keras_name}_{i}_bn").set_weights(batchnorm_weights(state, f"{torch_name}.{bn}"))
            index += 1


def to_keras(meta: dict, state: dict[str, np.ndarray]):
    name, size = meta["name"], meta["settings"]["img_size"]
    model = build_model(name, meta["input_shape"], net_size=size,
                        flavour="torchvision" if name == "mobilenetv2" else None)
    backbone = model.get_layer("backbone")
    if name == "resnet50":
        load_resnet50(backbone, state)
    else:
        load_into(backbone, state, prefix="backbone.")
    dense = [layer for layer in model.layers if layer.__class__.__name__ == "Dense"]
    hidden, emotion = dense[0], model.get_layer("emotion")
    assert hidden is not emotion and hidden.units == 128, "the head is not Dense 128 + Dense 7"
    hidden.set_weights([state["dense.weight"].T, state["dense.bias"]])
    emotion.set_weights([state["emotion.weight"].T, state["emotion.bias"]])
    return model


def check_against_torch(model, meta, state, pixels: np.ndarray) -> float | None:
    """The largest probability difference between the Keras file and trainer.pytorch.nets' network."""
    try:
        import torch

        from trainer.pytorch.nets import EmotionNet
    except ModuleNotFoundError:
        print("torch not installed: the two networks were not compared")
        return None
    net = EmotionNet(meta["name"], meta["settings"]["img_size"]).eval()
    net.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})  # strict: every key, no other
    with torch.no_grad():
        expected = torch.softmax(net(torch.from_numpy(pixels).permute(0, 3, 1, 2).float()), 1).numpy()
    got = model.predict(pixels.astype("float32"), verbose=0)
    return float(np.abs(expected - got).max())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m trainer.pytorch.to_keras", description=__doc__.split("\n")[0])
    p.add_argument("--run", type=Path, required=True, help="a trainer.pytorch.train output folder")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--name", help="the model's name, where RUN holds one run's files (default: the one .json)")
    p.add_argument("--data", type=Path, help="a class folder split to compare the two networks on")
    args = p.parse_args(argv)
    if (args.run / "meta.tar.gz").exists():  # what torch_collect.py sent back: the chosen run's files
        if not args.name:
            raise SystemExit("--name resnet50 or mobilenetv2: which of the sent-back models")
        with tarfile.open(args.run / "meta.tar.gz") as tar:
            run = json.loads(tar.extractfile("chosen.json").read())[args.name]
            meta = json.loads(tar.extractfile(f"{run}/{args.name}.json").read())
            history = tar.extractfile(f"{run}/{args.name}.history.json").read().decode()
    else:
        metas = [m for m in args.run.glob("*.json") if not m.name.endswith(".history.json")
                 and (args.name is None or m.stem == args.name)]
        if len(metas) != 1:
            raise SystemExit(f"expected one NAME.json in {args.run}, found {[m.name for m in metas]}")
        meta = json.loads(metas[0].read_text())
        history = metas[0].with_name(f"{meta['name']}.history.json").read_text()
    state = read_state(args.run, meta["name"])
    model = to_keras(meta, state)
    if args.data:
        from trainer.data import list_class_folder, load_split

        items = list_class_folder(args.data)
        pick = np.random.default_rng(0).permutation(len(items))[:64]
        pixels = load_split([items[i] for i in pick], meta["input_shape"][0], meta["color_mode"]).x
    else:
        pixels = np.random.default_rng(0).integers(0, 256, (16, *meta["input_shape"]), dtype=np.uint8)
    diff = check_against_torch(model, meta, state, pixels)
    if diff is not None:
        print(f"largest probability difference, Keras against torch, on {len(pixels)} images: {diff:.2e}")
        if diff > TOLERANCE:
            raise SystemExit(f"the Keras network does not reproduce the torch one ({diff:.2e} > {TOLERANCE})")
    args.out.mkdir(parents=True, exist_ok=True)
    model.save(args.out / f"{meta['name']}.keras")
    meta = {**meta, "parameters": model.count_params(), "weights_transfer": "float16",
            "converted_by": "trainer.pytorch.to_keras", "torch_check_max_difference": diff}
    (args.out / f"{meta['name']}.json").write_text(json.dumps(meta, indent=2))
    (args.out / f"{meta['name']}.history.json").write_text(history)
    print("wrote", args.out / f"{meta['name']}.keras")
    return 0


if __name__ == "__main__":
    sys.exit(main())
