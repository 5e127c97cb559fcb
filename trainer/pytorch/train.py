"""Train ResNet50 or MobileNetV2 in plain PyTorch, on the CPU (bfloat16 on AMX) or a GPU.

    python -m trainer.pytorch.train --model resnet50 --img-size 64 --data ../shared/datasets/fer2013 \\
        --soft-targets runs/resnet50/targets.npz --minutes 110 --out runs/resnet50 --resume

The networks are trainer.models' Keras networks layer for layer (trainer.pytorch.nets), so
trainer.pytorch.to_keras turns the result into a .keras file that carries its preprocessing.
Why not trainer.train: Keras trains these backbones slowly on every backend tried
(tools/gpu/README.md); PyTorch runs bfloat16 convolutions through oneDNN's AMX kernels here.

- Time budget: --minutes of training (time the process is stopped with SIGSTOP does not
  count) and/or a wall-clock --deadline; the learning rate follows a cosine over the budget,
  so a run ends annealed however fast the machine is, and it stops before an epoch that would
  not fit.
- A checkpoint (model, optimizer, best weights, history, random state) is written after every
  epoch; --resume continues from it after a kill, with the budget already spent counted.
- --soft-targets: trainer.served's predictions of the shipped ensemble, blended with the label
  as trainer.distill does (p ** (1/T) renormalised, then alpha * soft + (1 - alpha) * one-hot).

Writes OUT/NAME_fp16.npz (the best epoch on val, float16), OUT/NAME.json (settings, history,
best epoch) and OUT/NAME.history.json. SIGTERM ends the run early with its best weights written.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
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
from tqdm import tqdm

from trainer.classes import CLASS_NAMES, NUM_CLASSES, balanced_class_weights, class_weight_vector
from trainer.data import DataError, find_splits, load_image, load_split, sample
from trainer.distill import soft_targets
from trainer.pytorch.augment import augment
from trainer.pytorch.nets import SIZE, EmotionNet

log = logging.getLogger("trainer.pytorch.train")
CHECKPOINT = "checkpoint.pt"


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
    save_npz(cache, arrays)


def load_data(args) -> tuple[dict, list[str]]:
    """{x_train, y_train, x_val, y_val} as uint8 / int64 arrays, and the train files' class/name."""
    if args.data:
        listed = find_splits(args.data)
        arrays, names = {}, []
        for split in ("train", "val"):
            items = sample(listed[split], args.limit)
            loaded = load_split(items, SIZE, "grayscale", split)
            if loaded.skipped and split == "train" and args.soft_targets:
                raise DataError(f"{loaded.skipped} unreadable train files: the soft targets would not line up")
            arrays[f"x_{split}"], arrays[f"y_{split}"] = loaded.x, loaded.y.astype(np.int64)
            if split == "train":
                names = [f"{f.parent.name}/{f.name}" for f, _ in items]
        return arrays, names
    data = np.load(args.cache)  # a GPU machine's decoded cache (--prepare)
    arrays = {k: data[k] for k in ("x_train", "y_train", "x_val", "y_val")}
    if args.limit:  # a random sample: the cache is sorted by class
        for split in ("train", "val"):
            keep = np.random.default_rng(0).permutation(len(arrays[f"y_{split}"]))[: args.limit]
            arrays[f"x_{split}"], arrays[f"y_{split}"] = arrays[f"x_{split}"][keep], arrays[f"y_{split}"][keep]
    return arrays, []


def targets_for(path: Path, names: list[str], labels: np.ndarray, temperature: float, alpha: float) -> np.ndarray:
    """trainer.served's train probabilities, row for row with `names`, blended with the labels."""
    stored = np.load(path)
    row = {str(n): i for i, n in enumerate(stored["train_files"])}
    missing = [n for n in names if n not in row]
    if missing:
        raise DataError(f"{path} has no prediction for {len(missing)} train files (first: {missing[0]}); "
                        "rerun python -m trainer.served on this data")
    return soft_targets(stored["train"][[row[n] for n in names]], labels, temperature, alpha)


# ---------------------------------------------------------------- helpers
def state_fp16(model: torch.nn.Module) -> dict[str, np.ndarray]:
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


class Budget:
    """Training seconds spent and left. A step that took far longer than the steps before it
    (the process was stopped with SIGSTOP to free the cores, or the machine slept) counts as a
    typical step, so pausing a run does not eat its schedule."""

    def __init__(self, minutes: float | None, deadline: float | None, spent: float = 0.0):
        self.total = 60 * minutes if minutes else math.inf
        self.deadline, self.spent, self.recent = deadline, spent, []

    def add(self, seconds: float) -> None:
        if len(self.recent) >= 5:
            seconds = min(seconds, 4 * float(np.median(self.recent)))
        self.recent = [*self.recent[-49:], seconds]
        self.spent += seconds

    def left(self) -> float:
        wall = self.deadline - time.time() if self.deadline else math.inf
        return min(self.total - self.spent, wall)

    def progress(self) -> float:
        return min(1.0, self.spent / max(self.spent + self.left(), 1e-9))


def learning_rate(peak: float, progress: float, warmup: float) -> float:
    if progress < warmup:
        return peak * progress / warmup
    return peak * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


# ---------------------------------------------------------------- training
def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m trainer.pytorch.train", description=__doc__.split("\n")[0])
    p.add_argument("--prepare", action="store_true", help="only decode --packed into --cache (a GPU machine)")
    p.add_argument("--packed", type=Path, default=Path("build/fer2013.npz.xz"))
    p.add_argument("--cache", type=Path, default=Path("/tmp/fer48.npz"), help="decoded data, without --data")
    p.add_argument("--data", help="class-folder root with train/ and val/")
    p.add_argument("--model", choices=("resnet50", "mobilenetv2"))
    p.add_argument("--img-size", type=int, default=96)
    p.add_argument("--backbone-weights", help="torchvision's mobilenet_v2 .pth (ImageNet); none: from scratch")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--optimizer", choices=("sgd", "adamw"), default="sgd",
                   help="sgd: Nesterov, momentum 0.9; adamw: decoupled weight decay")
    p.add_argument("--lr", type=float, default=0.1, help="peak learning rate")
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--label-smoothing", type=float, default=0.1, help="with hard labels only")
    p.add_argument("--class-weight-power", type=float, default=0.5)
    p.add_argument("--mixup", type=float, default=0.0, help="Beta(a, a) mixup; 0: off")
    p.add_argument("--warmup", type=float, default=0.03, help="fraction of the time budget")
    p.add_argument("--soft-targets", type=Path, help="trainer.served's .npz: distil from the shipped ensemble")
    p.add_argument("--distill-temperature", type=float, default=2.0)
    p.add_argument("--alpha", type=float, default=0.7, help="weight of the teacher against the label")
    p.add_argument("--deadline", type=float, help="unix time by which training ends")
    p.add_argument("--minutes", type=float, help="a budget of training minutes (pauses not counted)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt if there is one")
    p.add_argument("--precision", choices=("bfloat16", "float32"), default="bfloat16", help="autocast or not")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--limit", type=int, help="a random N train and N val images only (a rehearsal)")
    p.add_argument("--max-steps", type=int, help="stop after this many training steps (a test)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    if not args.prepare and (args.out is None or args.model is None or not (args.deadline or args.minutes)):
        p.error("training needs --model, --out and --deadline or --minutes")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.prepare:
        prepare(args.packed, args.cache)
        return 0
    stop = {"asked": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(asked=True))
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    cuda = torch.cuda.is_available()
    dev = torch.device("cuda" if cuda else "cpu")
    torch.backends.cudnn.benchmark = True
    torch.set_num_threads(args.threads)

    def amp():
        if args.precision == "float32":
            return contextlib.nullcontext()
        return torch.autocast(dev.type, dtype=torch.bfloat16)

    try:
        arrays, names = load_data(args)
        targets = (targets_for(args.soft_targets, names, arrays["y_train"], args.distill_temperature, args.alpha)
                   if args.soft_targets else None)
    except DataError as err:
        log.error("%s", err)
        return 2
    y_np = arrays["y_train"]
    class_w = torch.from_numpy(class_weight_vector(balanced_class_weights(y_np, args.class_weight_power))).to(dev)
    to_dev = lambda a: torch.from_numpy(a).to(dev).permute(0, 3, 1, 2).contiguous()  # noqa: E731 (n,1,48,48) uint8
    x_tr, x_va = to_dev(arrays["x_train"]), to_dev(arrays["x_val"])
    y_tr, y_va = torch.from_numpy(y_np).to(dev), torch.from_numpy(arrays["y_val"]).to(dev)
    if targets is None:
        smooth = args.label_smoothing
        targets = np.eye(NUM_CLASSES, dtype=np.float32)[y_np] * (1 - smooth) + smooth / NUM_CLASSES
    t_tr = torch.from_numpy(targets).to(dev)

    model = EmotionNet(args.model, args.img_size)
    if args.backbone_weights not in (None, "none"):
        state = torch.load(args.backbone_weights, map_location="cpu", weights_only=True)
        # strict: every key of torchvision's features must land, or the layouts differ
        model.backbone.load_state_dict({k: v for k, v in state.items() if k.startswith("features.")}, strict=True)
        log.info("backbone weights: %s", args.backbone_weights)
    model = model.to(dev).to(memory_format=torch.channels_last)
    if args.optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, nesterov=True,
                              weight_decay=args.weight_decay)
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    args.out.mkdir(parents=True, exist_ok=True)
    checkpoint_path = args.out / CHECKPOINT
    budget = Budget(args.minutes, args.deadline)
    history, best, best_epoch, best_state, epoch, step, epoch_s = [], -1.0, 0, None, 0, 0, 0.0
    if args.resume and checkpoint_path.is_file():
        ck = torch.load(checkpoint_path, map_location=dev, weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        history, best, best_epoch, best_state = ck["history"], ck["best"], ck["best_epoch"], ck["best_state"]
        epoch, step, epoch_s, budget.spent = ck["epoch"], ck["step"], ck["epoch_seconds"], ck["spent"]
        torch.set_rng_state(ck["torch_rng"])
        rng.bit_generator.state = ck["numpy_rng"]
        log.info("resumed %s after epoch %d (%.1f of the budget's minutes spent)", checkpoint_path, epoch,
                 budget.spent / 60)
    n, bs = len(y_tr), args.batch_size
    steps = max(1, n // bs)
    log.info("%s %dpx on %s (%s): %d train, %d val, %.1f minutes left", args.model, args.img_size, dev,
             args.precision, n, len(y_va), budget.left() / 60)
    while not stop["asked"] and budget.left() > 1.1 * epoch_s and step != args.max_steps:
        e0, epoch = time.time(), epoch + 1
        perm = torch.randperm(n, device=dev)
        seen, loss_sum, correct = 0, 0.0, 0
        bar = tqdm(range(steps), desc=f"epoch {epoch}", unit="step", mininterval=30, disable=None)
        for s in bar:
            t = time.time()
            lr = learning_rate(args.lr, budget.progress(), args.warmup)
            for g in opt.param_groups:
                g["lr"] = lr
            idx = perm[s * bs:(s + 1) * bs]
            x, y, target, w = augment(x_tr[idx].float()), y_tr[idx], t_tr[idx], class_w[y_tr[idx]]
            if args.mixup > 0:
                lam = float(rng.beta(args.mixup, args.mixup))
                j = torch.randperm(len(y), device=dev)
                x, target, w = lam * x + (1 - lam) * x[j], lam * target + (1 - lam) * target[j], lam * w + (1 - lam) * w[j]
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
            budget.add(time.time() - t)
            if stop["asked"] or budget.left() <= 0 or step == args.max_steps:
                break
        bar.close()
        t = time.time()
        val_acc, val_loss = evaluate(model, x_va, y_va, 512, amp)
        budget.spent += min(time.time() - t, 3 * history[-1]["val_seconds"]) if history else time.time() - t
        epoch_s = time.time() - e0 if not history else min(time.time() - e0, 2 * history[-1]["seconds"])
        history.append({"epoch": epoch, "seconds": round(epoch_s, 2), "val_seconds": round(time.time() - t, 2),
                        "lr": lr, "loss": loss_sum / max(seen, 1), "accuracy": correct / max(seen, 1),
                        "val_accuracy": val_acc, "val_loss": val_loss})
        log.info("epoch %d %.0fs lr %.4f loss %.3f acc %.3f val_accuracy %.4f (%.1f minutes left)", epoch, epoch_s,
                 lr, loss_sum / max(seen, 1), correct / max(seen, 1), val_acc, budget.left() / 60)
        if val_acc > best:
            best, best_epoch, best_state = val_acc, epoch, state_fp16(model)
            save_npz(args.out / f"{args.model}_fp16.npz", best_state)
        tmp = checkpoint_path.with_suffix(".tmp")
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "history": history, "best": best,
                    "best_epoch": best_epoch, "best_state": best_state, "epoch": epoch, "step": step,
                    "epoch_seconds": epoch_s, "spent": budget.spent, "torch_rng": torch.get_rng_state(),
                    "numpy_rng": rng.bit_generator.state}, tmp)
        tmp.replace(checkpoint_path)
    if best_state is not None:
        save_npz(args.out / f"{args.model}_fp16.npz", best_state)
    command = "python -m trainer.pytorch.train " + " ".join(sys.argv[1:] if argv is None else argv)
    meta = {
        "name": args.model, "class_names": list(CLASS_NAMES), "input_shape": [SIZE, SIZE, 1],
        "color_mode": "grayscale", "framework": f"torch {torch.__version__}",
        "parameters": sum(p.numel() for p in model.parameters()),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "epochs_trained": epoch, "best_epoch": best_epoch, "best_val_accuracy": best,
        "train_seconds": round(budget.spent, 1), "train_images": n,
        "devices": [torch.cuda.get_device_name(0) if cuda else f"CPU ({platform.processor() or platform.machine()})"],
        "machine": f"{platform.machine()} {os.cpu_count()} cores, {args.threads} threads, torch {torch.__version__}",
        "command": command, "stopped_early": stop["asked"],
    }
    (args.out / f"{args.model}.json").write_text(json.dumps(meta, indent=2))
    (args.out / f"{args.model}.history.json").write_text(json.dumps(history, indent=1))
    log.info("best val_accuracy %.4f at epoch %d/%d", best, best_epoch, epoch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
