"""Rebuild a model from collect.py's float16 weight parts, as trainer.train's export would.

    python tools/gpu/import_weights.py --meta RUN/resnet50.json --parts 'resnet50_fp16.npz.part*' --out runs/gpu

ResNet50's float32 file (95 MB) is over what one transfer from a lent machine carries back,
so collect.py sends its weights rounded to float16; this writes OUT/NAME.keras (float32,
no optimizer) and OUT/NAME.json with "weights_transfer": "float16" recorded.
"""

import argparse
import glob
import io
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

p = argparse.ArgumentParser()
p.add_argument("--meta", required=True, type=Path)
p.add_argument("--parts", required=True, help="glob of the parts, in order")
p.add_argument("--out", required=True, type=Path)
args = p.parse_args()



from trainer.models import BackboneWeightsError  # noqa: E402
from trainer.pytorch.to_keras import read_parts  # noqa: E402
from trainer.train import rebuild  # noqa: E402

meta = json.loads(args.meta.read_text())
arrays = np.load(io.BytesIO(read_parts(glob.glob(args.parts))))
try:  # the run's own layout; a converted backbone's JSON says which padding and normalisation
    model = rebuild(meta["name"], meta["input_shape"], meta["settings"])
except BackboneWeightsError:
    raise SystemExit(f"need the backbone weights file {meta['settings']['backbone_weights']} to know its layout") from None
model.set_weights([arrays[k].astype("float32") for k in sorted(arrays.files)])
assert model.count_params() == meta["parameters"], "rebuilt model differs from the trained one"
args.out.mkdir(parents=True, exist_ok=True)
model.save(args.out / f"{meta['name']}.keras")
(args.out / f"{meta['name']}.json").write_text(json.dumps({**meta, "weights_transfer": "float16"}, indent=2))
history = args.meta.with_name(f"{meta['name']}.history.json")
if history.exists():
    (args.out / history.name).write_text(history.read_text())
print("wrote", args.out / f"{meta['name']}.keras")
