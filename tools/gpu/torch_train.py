"""Train ResNet50 or MobileNetV2 in plain PyTorch, laid out exactly as trainer.models builds them in Keras.

    python3 tools/gpu/torch_train.py --prepare --packed build/fer2013.npz.xz --cache /tmp/fer48.npz
    python3 tools/gpu/torch_train.py --model resnet50 --img-size 96 --cache /tmp/fer48.npz \\
        --deadline UNIX_SECONDS --out RUNS/r96

Why not trainer.train: on a lent GPU, Keras 3 on JAX back-propagates through MobileNetV2's
depthwise convolutions at a crawl, and Keras on PyTorch runs eagerly with about 60 ms of
Python a step (tools/gpu/README.md). Here the network is trainer.models' Keras network layer
for layer: ResNet50 v1 as keras.applications has it (the stride in each stage's first 1x1
convolution, biased convolutions, BatchNorm epsilon 1.001e-5, caffe preprocessing) and the
torchvision flavour of MobileNetV2 (torchvision's own ImageNet file loads as it is), with the
same head and the same preprocessing (bilinear resize of 48x48 grey to the net size, grey to
RGB, normalisation). tools/gpu/torch_to_keras.py copies the weights into trainer.models'
model, so the .keras file that ships carries its preprocessing like any other.

FER2013 (66 MB as uint8) and its augmentation stay on the GPU: flip, rotation, zoom and shift
(trainer.models' ranges), contrast, brightness and erasing. Class weights are
trainer.data.balanced_class_weights. The learning rate follows a cosine over the time left
until --deadline, so every run ends annealed however fast it goes. Writes OUT/NAME_fp16.npz
(the best epoch on val, float16), OUT/NAME.json (settings, history, best epoch); SIGTERM ends
the run early with its best weights written.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import lzma
import math
import os
import platform
import signal
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
# Keras-free modules only: the lent machines have no Keras.
from trainer.classes import CLASS_NAMES, NUM_CLASSES  # noqa: E402
from trainer.convert_mobilenet import STAGES as MOBILENET_STAGES  # noqa: E402
from trainer.data import balanced_class_weights, class_weight_vector, load_image  # noqa: E402
from trainer.pixels import CAFFE_MEAN_BGR, ROTATION, TORCH_MEAN, TORCH_STD, TRANSLATION, ZOOM  # noqa: E402

SIZE = 48  # FER2013's pixels: the saved models' input
RESNET_STAGES = [(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)]  # (filters, blocks, stride)
RESNET_EPS = 1.001e-5  # keras.applications' ResNet50 BatchNorm epsilon


# ---------------------------------------------------------------- networks
class Bottleneck(nn.Module):
    """keras.applications' ResNet50 block: the stride sits in the first 1x1 convolution."""

    def __init__(self, cin: int, filters: int, stride: int, shortcut: bool):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(cin, filters, 1, stride), nn.BatchNorm2d(filters, eps=RESNET_EPS)
        self.conv2, self.bn2 = nn.Conv2d(filters, filters, 3, 1, 1), nn.BatchNorm2d(filters, eps=RESNET_EPS)
        self.conv3, self.bn3 = nn.Conv2d(filters, 4 * filters, 1), nn.BatchNorm2d(4 * filters, eps=RESNET_EPS)
        nn.init.zeros_(self.bn3.weight)  # each block starts as the identity: steadier training from scratch
        self.shortcut = (
            nn.Sequential(nn.Conv2d(cin, 4 * filters, 1, stride), nn.BatchNorm2d(4 * filters, eps=RESNET_EPS))
            if shortcut else None
        )

    def forward(self, x):
        s = x if self.shortcut is None else self.shortcut(x)
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return F.relu(self.bn3(self.conv3(x)) + s)


class ResNet50(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 64, 7, 2, 3), nn.BatchNorm2d(64, eps=RESNET_EPS)
        blocks, cin = [], 64
        for filters, count, stride in RESNET_STAGES:
            for b in range(count):
                blocks.append(Bottleneck(cin, filters, stride if b == 0 else 1, shortcut=b == 0))
                cin = 4 * filters
        self.blocks = nn.Sequential(*blocks)
        self.channels = cin

    def forward(self, x):
        # Keras zero-pads before its max pooling; after a ReLU that equals torch's -inf padding.
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        return self.blocks(x)


def conv_bn_relu6(cin: int, cout: int, k: int, stride: int, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int):
        super().__init__()
        hidden = cin * expand
        layers = [] if expand == 1 else [conv_bn_relu6(cin, hidden, 1, 1)]
        layers += [conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden),
                   nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.conv(x) if self.residual else self.conv(x)


class MobileNetV2(nn.Module):
    """torchvision's MobileNetV2 module for module: its state dict keys load as they are."""

    def __init__(self):
        super().__init__()
        features, cin = [conv_bn_relu6(3, 32, 3, 2)], 32
        for expand, cout, repeats, stride in MOBILENET_STAGES:
            for i in range(repeats):
                features.append(InvertedResidual(cin, cout, stride if i == 0 else 1, expand))
                cin = cout
        features.append(conv_bn_relu6(cin, 1280, 1, 1))
        self.features = nn.Sequential(*features)
        self.channels = 1280

    def forward(self, x):
        return self.features(x)


class EmotionNet(nn.Module):
    """48x48 grey 0-255 pixels -> logits: trainer.models' preprocessing, backbone, GAP and head."""

    def __init__(self, name: str, img_size: int):
        super().__init__()
        self.name, self.img_size = name, img_size
        self.backbone = ResNet50() if name == "resnet50" else MobileNetV2()
        if name == "resnet50":  # RGB -> BGR is a no-op on grey; then minus the caffe mean
            shift, scale = -CAFFE_MEAN_BGR, np.ones(3)
        else:
            shift, scale = -TORCH_MEAN / TORCH_STD, 1 / TORCH_STD
        # Not persistent: constants of the layout, not weights, so state dicts leave them out.
        self.register_buffer("shift", torch.tensor(shift, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(scale, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.dense = nn.Linear(self.backbone.channels, 128)
        self.emotion = nn.Linear(128, NUM_CLASSES)

    def forward(self, x):
        x = F.interpolate(x, size=(self.img_size, self.img_size), mode="bilinear", align_corners=False)
        x = x.expand(-1, 3, -1, -1) * self.scale + self.shift
        x = self.backbone(x.contiguous(memory_format=torch.channels_last))
        x = F.dropout(x.float().mean((2, 3)), 0.3, self.training)
        x = F.dropout(F.relu(self.dense(x)), 0.3, self.training)
        return self.emotion(x)


# ---------------------------------------------------------------- data
def prepare(packed: Path, cache: Path) -> None:
    """Decode tools/gpu/pack_data.py's JPEGs once (trainer.data.load_image) into a uint8 cache."""
    data = np.load(io.BytesIO(lzma.decompress(packed.read_bytes())))
    arrays = {}
    for split in ("train", "val"):
        blob, offset, xs, ys = data[f"{split}_bytes"].tobytes(), 0, [], []
        for size, name in zip(data[f"{split}_len"], data[f"{split}_names"]):
            xs.append(load_image(io.BytesIO(blob[offset:offset + size]), SIZE, "grayscale"))
            ys.append(CLASS_NAMES.index(str(name).split("/")[1]))
            offset += size
        arrays[f"x_{split}"], arrays[f"y_{split}"] = np.stack(xs), np.array(ys, np.int64)
        arrays[f"names_{split}"] = data[f"{split}_names"]
        print(split, arrays[f"x_{split}"].shape, flush=True)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(cache)


def augment(x: torch.Tensor) -> torch.Tensor:
    """(n, 1, 48, 48) float 0-255 -> augmented, all on the tensor's device."""
    n, dev = x.shape[0], x.device

    def uniform(scale):
        return (torch.rand(n, device=dev) * 2 - 1) * scale

    x = torch.where(torch.rand(n, 1, 1, 1, device=dev) < 0.5, x.flip(3), x)
    angle, zoom = uniform(ROTATION * 2 * math.pi), 1 + uniform(ZOOM)
    cos, sin = torch.cos(angle) * zoom, torch.sin(angle) * zoom
    theta = torch.stack([torch.stack([cos, -sin, uniform(2 * TRANSLATION)], 1),
                         torch.stack([sin, cos, uniform(2 * TRANSLATION)], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)  # "nearest" fill
    mean = x.mean((1, 2, 3), keepdim=True)
    x = (x - mean) * (1 + uniform(0.3)).view(n, 1, 1, 1) + mean + uniform(0.15 * 255).view(n, 1, 1, 1)
    # Erasing, a quarter of the images: a rectangle of 2-12 % of the area filled with noise.
    area = (0.02 + torch.rand(n, device=dev) * 0.10) * SIZE * SIZE
    ratio = torch.exp(uniform(math.log(2)))
    h = (area * ratio).sqrt().clamp(1, SIZE).view(n, 1, 1)
    w = (area / ratio).sqrt().clamp(1, SIZE).view(n, 1, 1)
    top = (torch.rand(n, 1, 1, device=dev) * (SIZE - h + 1)).floor()
    left = (torch.rand(n, 1, 1, device=dev) * (SIZE - w + 1)).floor()
    rows = torch.arange(SIZE, device=dev).view(1, SIZE, 1)
    cols = torch.arange(SIZE, device=dev).view(1, 1, SIZE)
    box = (rows >= top) & (rows < top + h) & (cols >= left) & (cols < left + w)
    box &= torch.rand(n, 1, 1, device=dev) < 0.25
    x = torch.where(box.unsqueeze(1), torch.rand_like(x) * 255, x)
    return x.clamp(0, 255)


# ---------------------------------------------------------------- training
def state_fp16(model: nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().float().cpu().numpy().astype(np.float16) for k, v in model.state_dict().items()
            if v.is_floating_point()}


def save_npz(path: Path, arrays: dict) -> None:
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)


def evaluate(model, x, y, batch: int, amp) -> tuple[float, float]:
    model.eval()
    correct, loss = 0, 0.0
    with torch.no_grad(), amp():
        for i in range(0, len(y), batch):
            logits = model(x[i:i + batch].float()).float()
            loss += F.cross_entropy(logits, y[i:i + batch], reduction="sum").item()
            correct += (logits.argmax(1) == y[i:i + batch]).sum().item()
    model.train()
    return correct / len(y), loss / len(y)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--prepare", action="store_true", help="only decode --packed into --cache")
    p.add_argument("--packed", type=Path, default=Path("build/fer2013.npz.xz"))
    p.add_argument("--cache", type=Path, default=Path("/tmp/fer48.npz"))
    p.add_argument("--model", choices=("resnet50", "mobilenetv2"))
    p.add_argument("--img-size", type=int, default=96)
    p.add_argument("--backbone-weights", help="torchvision's mobilenet_v2 .pth (ImageNet); none: from scratch")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--optimizer", choices=("sgd", "adamw"), default="sgd",
                   help="sgd: Nesterov, momentum 0.9; adamw: decoupled weight decay")
    p.add_argument("--lr", type=float, default=0.1, help="peak learning rate")
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--class-weight-power", type=float, default=0.5)
    p.add_argument("--mixup", type=float, default=0.0, help="Beta(a, a) mixup; 0: off")
    p.add_argument("--warmup", type=float, default=0.03, help="fraction of the time budget")
    p.add_argument("--deadline", type=float, help="unix time by which training ends")
    p.add_argument("--minutes", type=float, help="or a budget from the run's start")
    p.add_argument("--limit", type=int, help="a random N train and N val images only (a rehearsal)")
    p.add_argument("--max-steps", type=int, help="stop after this many training steps (a test)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    if args.prepare:
        prepare(args.packed, args.cache)
        return 0
    if args.out is None or args.model is None or not (args.deadline or args.minutes):
        p.error("training needs --model, --out and --deadline or --minutes")
    start = time.time()
    deadline = args.deadline or start + 60 * args.minutes
    stop = {"asked": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(asked=True))
    torch.manual_seed(args.seed)
    cuda = torch.cuda.is_available()
    dev = torch.device("cuda" if cuda else "cpu")
    torch.backends.cudnn.benchmark = True
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    def amp():
        return torch.autocast("cuda", torch.bfloat16) if cuda else contextlib.nullcontext()

    data = np.load(args.cache)
    x_tr, y_tr, x_va, y_va = (data[k] for k in ("x_train", "y_train", "x_val", "y_val"))
    if args.limit:  # a random sample: the cache is sorted by class
        tr, va = (np.random.default_rng(0).permutation(len(y))[: args.limit] for y in (y_tr, y_va))
        x_tr, y_tr, x_va, y_va = x_tr[tr], y_tr[tr], x_va[va], y_va[va]
    class_w = torch.from_numpy(class_weight_vector(balanced_class_weights(y_tr, args.class_weight_power))).to(dev)
    to_dev = lambda a: torch.from_numpy(a).to(dev).permute(0, 3, 1, 2).contiguous()  # noqa: E731 (n,1,48,48) uint8
    x_tr, x_va = to_dev(x_tr), to_dev(x_va)
    y_tr, y_va = torch.from_numpy(y_tr).to(dev), torch.from_numpy(y_va).to(dev)

    model = EmotionNet(args.model, args.img_size)
    if args.backbone_weights not in (None, "none"):
        state = torch.load(args.backbone_weights, map_location="cpu", weights_only=True)
        # strict: every key of torchvision's features must land, or the layouts differ
        model.backbone.load_state_dict({k: v for k, v in state.items() if k.startswith("features.")}, strict=True)
        print("backbone weights:", args.backbone_weights, flush=True)
    model = model.to(dev).to(memory_format=torch.channels_last)
    if args.optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, nesterov=True,
                              weight_decay=args.weight_decay)
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    args.out.mkdir(parents=True, exist_ok=True)
    n, bs = len(y_tr), args.batch_size
    steps = max(1, n // bs)
    t0 = time.time()
    budget = deadline - t0
    history, best, best_epoch, last_write, epoch_s = [], -1.0, 0, 0.0, 0.0
    best_state = None
    print(f"{args.model} {args.img_size}px on {dev}: {n} train, {len(y_va)} val, {budget:.0f} s", flush=True)
    epoch, step = 0, 0
    while not stop["asked"] and time.time() + 1.1 * epoch_s < deadline and step != args.max_steps:
        e0, epoch = time.time(), epoch + 1
        perm = torch.randperm(n, device=dev)
        seen, loss_sum, correct = 0, 0.0, 0
        for s in range(steps):
            frac = (time.time() - t0) / budget
            lr = args.lr * min(1.0, frac / args.warmup) if frac < args.warmup else \
                args.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, frac)))
            for g in opt.param_groups:
                g["lr"] = lr
            idx = perm[s * bs:(s + 1) * bs]
            x, y = augment(x_tr[idx].float()), y_tr[idx]
            target = F.one_hot(y, NUM_CLASSES).float()
            w = class_w[y]
            if args.mixup > 0:
                lam = float(np.random.beta(args.mixup, args.mixup))
                j = torch.randperm(len(y), device=dev)
                x, target, w = lam * x + (1 - lam) * x[j], lam * target + (1 - lam) * target[j], lam * w + (1 - lam) * w[j]
            target = target * (1 - args.label_smoothing) + args.label_smoothing / NUM_CLASSES
            with amp():
                logits = model(x).float()
            loss = (-(target * F.log_softmax(logits, 1)).sum(1) * w).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            if s % 20 == 0 or s == steps - 1:  # a sync now and then, not every step
                loss_sum += loss.item() * len(y)
                correct += (logits.argmax(1) == y).sum().item()
                seen += len(y)
            if stop["asked"] or time.time() > deadline or step == args.max_steps:
                break
        val_acc, val_loss = evaluate(model, x_va, y_va, 1024, amp)
        epoch_s = time.time() - e0
        history.append({"epoch": epoch, "seconds": round(epoch_s, 2), "lr": lr, "loss": loss_sum / max(seen, 1),
                        "accuracy": correct / max(seen, 1), "val_accuracy": val_acc, "val_loss": val_loss})
        print(f"epoch {epoch} {epoch_s:.1f}s lr {lr:.4f} loss {loss_sum / max(seen, 1):.3f} "
              f"acc {correct / max(seen, 1):.3f} val_accuracy {val_acc:.4f}", flush=True)
        if val_acc > best:
            best, best_epoch, best_state = val_acc, epoch, state_fp16(model)
            if time.time() - last_write > 30:  # survive a kill between writes
                save_npz(args.out / f"{args.model}_fp16.npz", best_state)
                last_write = time.time()
    if best_state is not None:
        save_npz(args.out / f"{args.model}_fp16.npz", best_state)
    meta = {
        "name": args.model, "class_names": list(CLASS_NAMES), "input_shape": [SIZE, SIZE, 1],
        "color_mode": "grayscale", "framework": f"torch {torch.__version__}",
        "parameters": sum(p.numel() for p in model.parameters()),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "epochs_trained": epoch, "best_epoch": best_epoch, "best_val_accuracy": best,
        "train_seconds": round(time.time() - t0, 1), "train_images": n,
        "devices": [torch.cuda.get_device_name(0) if cuda else "CPU"],
        "machine": f"{platform.machine()} {os.cpu_count()} cores, torch {torch.__version__}",
        "command": "python3 tools/gpu/torch_train.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "stopped_early": stop["asked"],
    }
    (args.out / f"{args.model}.json").write_text(json.dumps(meta, indent=2))
    (args.out / f"{args.model}.history.json").write_text(json.dumps(history, indent=1))
    print(f"best val_accuracy {best:.4f} at epoch {best_epoch}/{epoch}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
