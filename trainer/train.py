"""Train one registry model on a class-folder data set.

    python -m trainer.train --model cnn --data ../shared/datasets/fer2013 --epochs 60

Writes OUT/NAME.keras (best on validation, float32, no optimizer state), OUT/NAME.json
(class names, input shape, settings, timings) and OUT/NAME.history.json. A run that is
killed can go on with --resume: OUT/checkpoints/NAME/ holds the last finished epoch,
with its optimizer state, and the best weights so far.

Runs on any Keras 3 backend: TensorFlow feeds batches through tf.data; under JAX or PyTorch
(KERAS_BACKEND=jax, e.g. on a GPU machine without TensorFlow) rotation, zoom and shift are
done on the host (trainer.augment) and the model keeps the cheap augmentation layers. Either
way the saved .keras file loads anywhere with safe_mode and takes raw 0-255 pixels.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

from trainer.classes import CLASS_NAMES

log = logging.getLogger("trainer.train")
ALL_LAYERS = 10_000  # --fine-tune-layers all: more layers than any backbone has


def layer_count(text: str) -> int:
    if text == "all":
        return ALL_LAYERS
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("need a positive number of layers or 'all'")
    return value


def positive_minutes(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("the time budget must be a positive number of minutes")
    return value


def parse_args(argv=None):
    from trainer.models import REGISTRY

    p = argparse.ArgumentParser(prog="python -m trainer.train", description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, choices=sorted(REGISTRY))
    p.add_argument("--data", required=True, help="class-folder root (train/ val/ test/ or class folders)")
    p.add_argument("--out", default="weights", help="folder for NAME.keras, NAME.json (default: weights)")
    p.add_argument("--epochs", type=int, help="epochs (head-only epochs for a pretrained backbone)")
    p.add_argument("--fine-tune-epochs", type=int, help="extra epochs with the backbone's top unfrozen")
    p.add_argument("--fine-tune-layers", type=layer_count, default=40,
                   help="backbone layers unfrozen to fine-tune, counted from the top, or 'all'")
    p.add_argument("--fine-tune-lr", type=float, help="peak learning rate while fine-tuning (default: lr/10)")
    p.add_argument("--fine-tune-bn", action="store_true",
                   help="also train BatchNorm while fine-tuning, so its statistics adapt to the new data")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--img-size", type=int, help="resolution the backbone works at (transfer models)")
    p.add_argument("--input-size", type=int, help="pixels the model takes (default 48)")
    p.add_argument("--color", choices=["auto", "grayscale", "rgb"], default="auto")
    p.add_argument("--lr", type=float, help="peak learning rate (cosine schedule with warm-up)")
    p.add_argument("--label-smoothing", type=float)
    p.add_argument("--patience", type=int, help="early stopping patience on val accuracy")
    p.add_argument("--backbone-weights", help="imagenet | none | PATH to a notop .weights.h5")
    p.add_argument("--no-class-weights", action="store_true", help="turn off balanced class weights")
    p.add_argument("--class-weight-power", type=float, default=1.0,
                   help="exponent on the balanced class weights: 1 balanced, 0.5 softer (default 1)")
    p.add_argument("--geometric-augmentation", choices=["model", "host"],
                   help="where rotation, zoom and shift happen: Keras layers in the model (default with "
                        "TensorFlow) or OpenCV on the host (default with JAX/PyTorch, whose GPU affine is slow)")
    p.add_argument("--mixup", type=float, default=0.0, metavar="ALPHA",
                   help="blend image pairs and their targets, weights from Beta(ALPHA, ALPHA); 0.2 is usual "
                        "(default 0: off)")
    p.add_argument("--corruptions", type=float, default=0.0, metavar="SHARE",
                   help="put this share of training images under a random camera corruption, kind and severity "
                        "drawn per image (trainer.corruptions; needs --geometric-augmentation host; default 0)")
    p.add_argument("--keep", choices=["best", "last"], default="best",
                   help="the weights to ship: the epoch best on clean val accuracy (default), or the last epoch "
                        "(when clean val is not the whole criterion, e.g. corruption training: choose on val after)")
    p.add_argument("--soft-targets", metavar="PATH.npy",
                   help="(train images, classes) probabilities to learn instead of the one-hot labels, in the "
                        "data folder's order (written by trainer.distill)")
    p.add_argument("--init-from", metavar="PATH",
                   help="start from the weights of a trained .keras file of the same layout (a second cycle)")
    p.add_argument("--width", type=int, help="cnn only: first block's filters, doubled per block (default 32)")
    p.add_argument("--time-budget", type=positive_minutes, metavar="MINUTES",
                   help="train for about this long: the cosine schedule follows elapsed time, not steps, "
                        "and training stops before the budget runs out (--epochs is then an upper bound)")
    p.add_argument("--precision", choices=["float32", "mixed_bfloat16", "mixed_float16"], default="float32")
    p.add_argument("--strategy", choices=["default", "mirrored", "multiworker"], default="default")
    p.add_argument("--max-steps", type=int, help="steps per epoch cap (smoke tests)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--resume", action="store_true", help="go on from OUT/checkpoints/NAME/")
    p.add_argument("--no-resume-checkpoint", action="store_true",
                   help="do not save the last epoch for --resume (a lent machine that is given back never "
                        "resumes; ResNet50's file with optimizer state is ~290 MB a save)")
    p.add_argument("--quiet", action="store_true", help="one log line per epoch, no progress bars")
    args = p.parse_args(argv)
    spec = REGISTRY[args.model]
    for key in ("epochs", "batch_size", "lr", "label_smoothing", "patience", "fine_tune_epochs"):
        if getattr(args, key) is None:
            setattr(args, key, getattr(spec, key))
    args.input_size = args.input_size or spec.input_size
    args.img_size = args.img_size or spec.net_size
    if args.backbone_weights is None:
        args.backbone_weights = spec.backbone_weights
    if args.backbone_weights in (None, "none"):
        args.fine_tune_epochs = 0  # nothing frozen, nothing to unfreeze
    if args.fine_tune_lr is None:
        args.fine_tune_lr = args.lr / 10
    return args


def make_strategy(name: str):
    import tensorflow as tf

    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":  # reads TF_CONFIG, one process per worker
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def git_commit() -> str | None:
    """Short hash of HEAD, with '+dirty' when tracked files have uncommitted changes."""
    def git(*args):
        return subprocess.run(["git", *args], capture_output=True, text=True, timeout=5,
                              cwd=Path(__file__).parent).stdout.strip()

    try:
        head = git("rev-parse", "--short", "HEAD")
        if head:
            return head + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")
    except OSError:
        pass
    # A copy of the tree without .git (a training machine): the caller may say which commit it is.
    return os.environ.get("EKSPRESI_COMMIT") or None


def compile_model(model, lr, steps, epochs, label_smoothing, timed=False):
    """AdamW with a cosine schedule (one warm-up epoch); timed: a plain rate that TimeBudget sets."""
    import keras

    schedule = lr / 10 if timed else keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=lr / 10, decay_steps=max(1, steps * epochs), alpha=0.01,
        warmup_target=lr, warmup_steps=steps,
    )
    model.compile(
        optimizer=keras.optimizers.AdamW(schedule, weight_decay=1e-4),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing),
        metrics=["accuracy"],
    )


def set_backbone_trainable(model, trainable_top: int | None, train_bn: bool = False):
    """Freeze the backbone (None) or unfreeze its top layers; BatchNorm stays frozen unless train_bn."""
    import keras

    try:
        backbone = model.get_layer("backbone")
    except ValueError:
        return
    backbone.trainable = trainable_top is not None
    if trainable_top is not None:
        for i, layer in enumerate(backbone.layers):
            top = i >= len(backbone.layers) - trainable_top
            layer.trainable = top and (train_bn or not isinstance(layer, keras.layers.BatchNormalization))


def time_budget(lr: float, budget_s: float, state: dict):
    """Keras callback: a cosine learning rate over the time budget, and a stop before it runs out.

    The fraction of the budget spent (finished epochs' time, validation and the saves between
    epochs included, which survives --resume) sets each epoch's rate, so the schedule anneals
    fully however fast the machine is. Training stops when another epoch as long as the last
    (with its save) would overrun.
    """
    import math

    import keras

    class TimeBudget(keras.callbacks.Callback):
        _last_end = None  # when the last epoch's own time ended
        _gap = 0.0  # what followed it before the next began (the checkpoint saves)

        def on_epoch_begin(self, epoch, logs=None):
            now = time.time()
            if self._last_end is not None:
                # Saves between epochs count too: ResNet50's best weights (286 MB with the optimizer)
                # at every improvement cost a lent GPU's run about 40 s over its budget.
                self._gap = now - self._last_end
                state["budget_seconds"] = state.get("budget_seconds", 0.0) + self._gap
            first = state.setdefault("budget_first_epoch", epoch)
            frac = min(1.0, state.get("budget_seconds", 0.0) / budget_s)
            cosine = lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * frac)))
            # One warm-up epoch at a tenth of the peak, as the step-based schedule does.
            self.model.optimizer.learning_rate = lr / 10 if epoch == first else cosine
            self._start = time.time()

        def on_epoch_end(self, epoch, logs=None):
            took = time.time() - self._start
            state["budget_seconds"] = state.get("budget_seconds", 0.0) + took
            # The first epoch also compiles (XLA: up to minutes with several runs on one GPU),
            # so it says nothing of the next one's length: only an overrun budget stops there.
            upcoming = 0.0 if epoch == state["budget_first_epoch"] else took + self._gap
            if state["budget_seconds"] + upcoming > budget_s:
                log.info("time budget: stopping after epoch %d (%.0f of %.0f s spent)",
                         epoch + 1, state["budget_seconds"], budget_s)
                self.model.stop_training = True
            self._last_end = time.time()

    return TimeBudget()


def runtime_info() -> tuple[str, list[str]]:
    """The backend and its devices, for the record of how a file was made."""
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return f"jax {jax.__version__}", sorted({d.platform.upper() for d in jax.devices()})
    if backend == "torch":
        import torch

        return f"torch {torch.__version__}", ["GPU"] if torch.cuda.is_available() else ["CPU"]
    import tensorflow as tf

    return f"tensorflow {tf.__version__}", [d.device_type for d in tf.config.list_logical_devices()]


def gpu_name() -> str | None:
    """The accelerator's name (nvidia-smi), when there is one."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None


def checkpointer(folder: Path, state: dict, save_last: bool = True):
    """Keras callback: last epoch (with optimizer) for --resume, best weights on val."""
    import keras

    class Checkpointer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            state["_epoch_start"] = time.time()

        def on_epoch_end(self, epoch, logs=None):
            logs = {k: float(v) for k, v in (logs or {}).items()}
            state["history"].append({"epoch": epoch + 1, **logs})
            if logs.get("val_accuracy", -1) > state["best_val_accuracy"]:
                state["best_val_accuracy"] = logs["val_accuracy"]
                state["best_epoch"] = epoch + 1
                self.model.save_weights(folder / "best.weights.h5")
            if save_last:
                tmp = folder / "last.tmp.keras"
                self.model.save(tmp)
                os.replace(tmp, folder / "last.keras")  # atomic: a kill never leaves half a file
            state["epoch"] = epoch + 1
            state["train_seconds"] = state.get("train_seconds", 0) + time.time() - state.pop("_epoch_start")
            (folder / "state.json").write_text(json.dumps(state, indent=1))

    return Checkpointer()


def rebuild(name: str, input_shape, settings: dict):
    """A run's layout, from its settings (NAME.json's "settings"), with no backbone file needed.

    Same layout as trained: a torchvision-flavour MobileNetV2 pads and normalises
    differently, and a run with warps on the host has no geometric layers. The weights
    come from the run; the backbone weights file is read only for its flavour.
    """
    from trainer.models import backbone_flavour, build_model

    return build_model(name, input_shape, net_size=settings.get("img_size"), backbone_weights="none",
                       flavour=backbone_flavour(settings.get("backbone_weights")), width=settings.get("width"),
                       geometric_aug=settings.get("geometric_augmentation") != "host")


def export(args, input_shape, weights_path: Path, meta: dict) -> Path:
    """Rebuild in float32, load the best weights, save without optimizer plus metadata."""
    import keras

    keras.config.set_dtype_policy("float32")
    model = rebuild(args.model, input_shape, vars(args))
    model.load_weights(weights_path)
    out = Path(args.out)
    path = out / f"{args.model}.keras"
    model.save(path)  # uncompiled: no optimizer state in the shipped file
    meta = {
        "name": args.model,
        "class_names": list(CLASS_NAMES),
        "input_shape": list(input_shape),
        "parameters": int(model.count_params()),
        **meta,
    }
    (out / f"{args.model}.json").write_text(json.dumps(meta, indent=2))
    return path


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    import keras

    from trainer.classes import balanced_class_weights
    from trainer.data import DataError, load_dataset, make_tf_dataset, one_hot_arrays
    from trainer.models import BackboneWeightsError, build_model

    keras.utils.set_random_seed(args.seed)
    tf_data = keras.backend.backend() == "tensorflow"
    args.geometric_augmentation = args.geometric_augmentation or ("model" if tf_data else "host")
    # Off TensorFlow with the warps in the model, plain arrays feed fit and Keras applies the class weights.
    plain_arrays = not tf_data and args.geometric_augmentation == "model"
    # Settings that cannot work are refused before any data is read or checkpoint removed.
    if not tf_data and args.strategy != "default":
        log.error("--strategy %s needs the TensorFlow backend", args.strategy)
        return 2
    if args.mixup and plain_arrays:
        log.error("--mixup needs tf.data or --geometric-augmentation host")
        return 2
    if args.corruptions and args.geometric_augmentation != "host":
        log.error("--corruptions needs --geometric-augmentation host")
        return 2
    if args.keep == "last" and args.no_resume_checkpoint:
        log.error("--keep last needs the last epoch's checkpoint: drop --no-resume-checkpoint")
        return 2
    if not 0 <= args.corruptions <= 1:
        log.error("--corruptions is a share of the images, within [0, 1]")
        return 2
    commit = git_commit()  # the code this run starts from
    out = Path(args.out)
    ckpt = out / "checkpoints" / args.model
    state_path = ckpt / "state.json"
    if args.resume and not state_path.exists():
        log.error("--resume: no checkpoint in %s; start without --resume", ckpt)
        return 2
    if not args.resume and ckpt.exists():
        log.info("starting afresh: removing old checkpoints in %s", ckpt)
        shutil.rmtree(ckpt)
    ckpt.mkdir(parents=True, exist_ok=True)

    try:
        data, color = load_dataset(args.data, args.input_size, args.color, ("train", "val"))
    except DataError as err:
        log.error("%s", err)
        return 2
    if args.soft_targets:
        import numpy as np

        targets = np.load(args.soft_targets)
        if targets.shape != (len(data["train"]), len(CLASS_NAMES)):
            log.error("--soft-targets %s: shape %s, but the train split holds %d images of %d classes",
                      args.soft_targets, targets.shape, len(data["train"]), len(CLASS_NAMES))
            return 2
        data["train"].targets = targets.astype("float32")
    channels = 1 if color == "grayscale" else 3
    input_shape = (args.input_size, args.input_size, channels)
    class_weight = None if args.no_class_weights else balanced_class_weights(
        data["train"].y, args.class_weight_power)
    if tf_data and args.geometric_augmentation == "model":
        train_ds = make_tf_dataset(data["train"], args.batch_size, shuffle=True, seed=args.seed,
                                   class_weight=class_weight, mixup_alpha=args.mixup)
        val_ds = make_tf_dataset(data["val"], args.batch_size, shuffle=False)
        steps = len(train_ds)
        if args.max_steps:
            train_ds, steps = train_ds.take(args.max_steps), min(steps, args.max_steps)
            val_ds = val_ds.take(args.max_steps)
        fit_data = {"x": train_ds, "validation_data": val_ds, "shuffle": False}  # tf.data shuffles itself
    else:  # in-memory arrays, cut to --max-steps batches
        limit = args.max_steps * args.batch_size if args.max_steps else None
        x, y = one_hot_arrays(data["train"])
        val = tuple(a[:limit] for a in one_hot_arrays(data["val"]))
        if args.geometric_augmentation == "host":
            from trainer.augment import HostAugmentedBatches

            train_batches = HostAugmentedBatches(x, y, args.batch_size, class_weight, seed=args.seed,
                                                 max_batches=args.max_steps, mixup_alpha=args.mixup,
                                                 corruption=args.corruptions,
                                                 labels=data["train"].y)
            fit_data = {"x": train_batches, "validation_data": val, "validation_batch_size": args.batch_size}
            steps = len(train_batches)
        else:
            fit_data = {"x": x[:limit], "y": y[:limit], "validation_data": val, "batch_size": args.batch_size,
                        "shuffle": True}
            steps = -(-len(fit_data["x"]) // args.batch_size)
    total_epochs = args.epochs + args.fine_tune_epochs

    keras.config.set_dtype_policy(args.precision)
    scope = make_strategy(args.strategy).scope if tf_data else contextlib.nullcontext
    budget_s = args.time_budget * 60 if args.time_budget else None

    def timed(phase_end: int) -> bool:
        # The time budget drives the last phase: the whole run, or the fine-tuning after the head.
        return bool(budget_s) and phase_end == total_epochs

    with scope():
        if args.resume:
            state = json.loads(state_path.read_text())
            model = keras.saving.load_model(ckpt / "last.keras")
            log.info("resuming %s after epoch %d of %d", args.model, state["epoch"], total_epochs)
        else:
            state = {"epoch": 0, "best_val_accuracy": -1.0, "best_epoch": 0, "history": []}
            try:
                model = build_model(args.model, input_shape, args.img_size, args.backbone_weights,
                                    width=args.width, geometric_aug=args.geometric_augmentation == "model")
            except BackboneWeightsError as err:
                log.error("%s", err)
                return 2
            if args.init_from:
                try:
                    model.load_weights(args.init_from)
                except (OSError, ValueError) as err:
                    log.error("--init-from %s: not a model of this layout (%s)", args.init_from, err)
                    return 2
            if args.fine_tune_epochs:
                set_backbone_trainable(model, None)
            compile_model(model, args.lr, steps, args.epochs, args.label_smoothing, timed=timed(args.epochs))
    if not args.quiet:
        model.summary(print_fn=log.info)

    callbacks = [
        checkpointer(ckpt, state, save_last=not args.no_resume_checkpoint),
        keras.callbacks.EarlyStopping("val_accuracy", patience=args.patience, mode="max"),
    ]
    verbose = 2 if args.quiet else 1  # 2: one line per epoch, for log files
    phases = [(args.epochs, None)]
    if args.fine_tune_epochs:
        phases.append((total_epochs, args.fine_tune_layers))
    started = time.time()
    for phase_end, unfreeze in phases:
        if state["epoch"] >= phase_end:
            continue
        if unfreeze is not None and state.get("phase") != "fine_tune":
            with scope():
                set_backbone_trainable(model, unfreeze, args.fine_tune_bn)
                compile_model(model, args.fine_tune_lr, steps, args.fine_tune_epochs, args.label_smoothing,
                              timed=timed(phase_end))
            state["phase"] = "fine_tune"
            log.info("fine-tuning %s backbone layers%s at lr %.1e",
                     "all" if unfreeze == ALL_LAYERS else f"the top {unfreeze}",
                     " with BatchNorm" if args.fine_tune_bn else "", args.fine_tune_lr)
        peak = args.fine_tune_lr if unfreeze is not None else args.lr
        model.fit(
            **fit_data, epochs=phase_end, initial_epoch=state["epoch"],
            # tf.data and host batches carry the class weights as sample weights themselves.
            class_weight=class_weight if plain_arrays else None,
            # TimeBudget first: it records the epoch's time before the checkpoint saves the state.
            callbacks=([time_budget(peak, budget_s, state)] if timed(phase_end) else []) + callbacks,
            verbose=verbose,
        )  # early stopping ends a phase; fine-tuning still follows a stalled head phase
    elapsed = time.time() - started

    backend, devices = runtime_info()
    gpu = gpu_name() if "GPU" in devices else None
    meta = {
        "color_mode": color,
        "settings": {k: v for k, v in vars(args).items() if k not in ("resume", "quiet", "no_resume_checkpoint")},
        "epochs_trained": state["epoch"],
        "best_epoch": state["best_epoch"],
        "best_val_accuracy": state["best_val_accuracy"],
        "train_seconds": round(state.get("train_seconds", elapsed), 1),
        "train_images": len(data["train"]),
        "skipped_unreadable": {k: v.skipped for k, v in data.items()},
        "machine": f"{platform.machine()} {os.cpu_count()} cores{', ' + gpu if gpu else ''}, "
        f"{platform.system()}, {backend}, keras {keras.__version__}",
        "devices": devices,
        "commit": commit,
        "command": "python -m trainer.train " + " ".join(sys.argv[1:] if argv is None else argv),
    }
    history = out / f"{args.model}.history.json"
    history.write_text(json.dumps(state["history"], indent=1))
    if args.keep == "last":
        meta["kept_epoch"] = state["epoch"]
        meta["kept_val_accuracy"] = state["history"][-1].get("val_accuracy")
    path = export(args, input_shape, ckpt / ("last.keras" if args.keep == "last" else "best.weights.h5"), meta)
    log.info("saved %s (%s; best val accuracy %.4f at epoch %d)", path, f"{args.keep} epoch",
             state["best_val_accuracy"], state["best_epoch"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
