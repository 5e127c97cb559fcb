"""Pack a class-folder data set's train/ and val/ JPEGs, byte for byte, into one xz file.

    python tools/gpu/pack_data.py ../shared/datasets/fer2013 build/fer2013.npz.xz

For a training machine that can't see the data: FER2013's 32,298 train+val files (52 MB)
become 38 MB, because their shared JPEG headers compress away. unpack_data.py restores them.
"""

import io
import lzma
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from trainer.data import find_splits  # noqa: E402

root, out = Path(sys.argv[1]), Path(sys.argv[2])
arrays = {}
for split, items in find_splits(root).items():
    if split == "test":
        continue  # never needed to train; reported on where the data lives
    blobs = [path.read_bytes() for path, _ in items]
    arrays[f"{split}_bytes"] = np.frombuffer(b"".join(blobs), dtype=np.uint8)
    arrays[f"{split}_len"] = np.array([len(b) for b in blobs])
    arrays[f"{split}_names"] = np.array([f"{split}/{path.parent.name}/{path.name}" for path, _ in items])
buf = io.BytesIO()
np.savez(buf, **arrays)
out.parent.mkdir(parents=True, exist_ok=True)
out.write_bytes(lzma.compress(buf.getvalue(), preset=9 | lzma.PRESET_EXTREME))
print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")
