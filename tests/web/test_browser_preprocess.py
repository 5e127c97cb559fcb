"""demo/web/browser/preprocess.mjs, run by Node, against the server's own preprocessing: the crop,
grey conversion and resize of EmotionModel.prepare, the views of trainer.views, the temperature of
trainer.calibration. The browser must feed the model the very pixels the server does."""

import json
import os
import shutil
import subprocess

import numpy as np
import pytest
from conftest import ROOT
from PIL import Image

from demo.pipeline.faces import CROP_SCALE, CROP_SHIFT_UP, crop_face
from trainer.calibration import apply_temperature
from trainer.views import views

NODE = shutil.which("node")
MODULE = ROOT / "demo" / "web" / "browser" / "preprocess.mjs"

SCRIPT = """
import { cropFace, prepare, views, applyTemperature } from %s;
import fs from "fs";
const job = JSON.parse(fs.readFileSync(process.argv[2]));
const rgba = new Uint8ClampedArray(fs.readFileSync(job.frame));
const out = job.boxes.map((box) => {
  const crop = cropFace(rgba, job.width, job.height, box, job.crop);
  const face = prepare(crop, [48, 48, 1]);
  return { side: crop.side, face: Array.from(face), views: views(face, [48, 48, 1], "crops").map((v) => Array.from(v)) };
});
const probs = applyTemperature(job.probs, 0.5);
fs.writeFileSync(process.argv[3], JSON.stringify({ faces: out, probs: Array.from(probs) }));
"""


@pytest.mark.skipif(NODE is None and not os.environ.get("CI"), reason="node not installed (apt-get install nodejs)")
def test_the_browser_prepares_faces_as_the_server_does(tmp_path):
    rng = np.random.default_rng(7)
    height, width = 240, 320
    rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    rgba = np.concatenate([rgb, np.full((height, width, 1), 255, np.uint8)], axis=2)
    (tmp_path / "frame.bin").write_bytes(rgba.tobytes())
    # inside, across every edge (pixels repeated), tiny and larger than the frame
    boxes = [[100, 60, 80, 90], [-20, -10, 60, 50], [280, 200, 70, 70], [150, 100, 9, 11], [0, 0, 320, 300]]
    probs = [0.05, 0.01, 0.04, 0.7, 0.1, 0.06, 0.04]
    job = {"frame": str(tmp_path / "frame.bin"), "width": width, "height": height, "boxes": boxes,
           "crop": {"scale": CROP_SCALE, "shift_up": CROP_SHIFT_UP}, "probs": probs}
    (tmp_path / "job.json").write_text(json.dumps(job))
    (tmp_path / "run.mjs").write_text(SCRIPT % json.dumps(MODULE.as_uri()))
    subprocess.run([NODE or "node", str(tmp_path / "run.mjs"), str(tmp_path / "job.json"), str(tmp_path / "out.json")],
                   check=True, timeout=120)
    got = json.loads((tmp_path / "out.json").read_text())
    for box, face in zip(boxes, got["faces"]):
        crop = crop_face(rgb, box)
        assert face["side"] == crop.shape[0]
        server = np.asarray(Image.fromarray(crop).convert("L").resize((48, 48), Image.Resampling.BILINEAR), np.float32)
        np.testing.assert_array_equal(np.asarray(face["face"]).reshape(48, 48), server)  # the same pixels, exactly
        expected = [v[0, ..., 0] for v in views(server[None, ..., None], "crops")]
        np.testing.assert_allclose(np.asarray(face["views"]).reshape(12, 48, 48), np.stack(expected), atol=1e-3)
    np.testing.assert_allclose(got["probs"], apply_temperature(np.array([probs]), 0.5)[0], atol=1e-6)
