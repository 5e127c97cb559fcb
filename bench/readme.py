"""Rewrite a marked section of the README: the text between <!-- NAME:start --> and <!-- NAME:end -->."""

from __future__ import annotations

import re
from pathlib import Path


def replace_section(readme: Path, name: str, body: str) -> None:
    text = readme.read_text()
    pattern = rf"<!-- {name}:start -->.*?<!-- {name}:end -->"
    if not re.search(pattern, text, flags=re.S):
        raise SystemExit(f"{readme} has no <!-- {name}:start --> ... <!-- {name}:end --> section")
    body = body if body.endswith("\n") else body + "\n"
    readme.write_text(re.sub(pattern, lambda _: f"<!-- {name}:start -->\n{body}<!-- {name}:end -->", text, flags=re.S))


def write_results(out: Path, name: str, data, table: str, readme: Path | None = None,
                  summary: str | None = None) -> None:
    """OUT/NAME.json and OUT/NAME.md, and the README's NAME section (the summary, or the table)."""
    import json

    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(data, indent=1) + "\n")
    (out / f"{name}.md").write_text(table if table.endswith("\n") else table + "\n")
    if readme:
        replace_section(readme, name, summary or table)
