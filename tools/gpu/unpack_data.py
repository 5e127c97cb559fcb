"""Write pack_data.py's file back into class folders: ROOT/train|val/<class>/<file>.

    python tools/gpu/unpack_data.py build/fer2013.npz.xz /tmp/fer2013

test/ is made a link to val/ only because the trainer's reader asks for a test split;
training never reads it.
"""

import io
import lzma
import sys
from pathlib import Path

import numpy as np

packed, root = Path(sys.argv[1]), Path(sys.argv[2])
data = np.load(io.BytesIO(lzma.decompress(packed.read_bytes())))
for split in ("train", "val"):
    blob, offset = data[f"{split}_bytes"].tobytes(), 0
    for size, name in zip(data[f"{split}_len"], data[f"{split}_names"]):
        path = root / str(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(blob[offset:offset + size])
        offset += size
    print(split, len(data[f"{split}_len"]), "files")
if not (root / "test").exists():
    (root / "test").symlink_to(root / "val")
