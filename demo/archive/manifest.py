"""OUT/manifest.jsonl: which units of a job are done (with their results) or failed, and why.

One JSON line per finished unit, appended and flushed to disk before the unit counts as done,
so a crash, a kill or a lost node loses at most the units in flight; a last line cut short by
a crash is ignored. A rerun of the same command reads it and skips what it lists as done.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

NAME = "manifest.jsonl"


class Manifest:
    def __init__(self, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / NAME
        self.done: dict[str, dict] = {}
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    continue  # the line a crash cut short: that unit runs again
                if entry.get("status") == "done":
                    self.done[entry["unit"]] = entry
        self._file = open(self.path, "a")

    def record(self, unit: str, status: str, **fields) -> dict:
        entry = {"unit": unit, "status": status, **fields}
        self._file.write(json.dumps(entry) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        if status == "done":
            self.done[unit] = entry
        return entry

    def close(self):
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
