"""The layout that docs/ARCHITECTURE.md describes: no import circle, imports only from the front
ends towards the pipeline, small folders, and documents whose paths all exist."""

import ast
import re
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT

PACKAGES = ("demo", "trainer", "bench", "tools", "tests")
# Who may not import whom: the pipeline knows no front end, the guards no page, the trainer no demo.
FORBIDDEN = {
    "demo.pipeline": ("demo.web", "demo.guards", "demo.predict"),
    "demo.guards": ("demo.web", "demo.predict"),
    "trainer": ("demo",),
}
MAX_MODULES = 16
DOCS = ("README.md", "SECURITY.md", "docs/ARCHITECTURE.md", "docs/TRAINING.md", "docs/RUNTIMES.md")
PLACEHOLDERS = re.compile(r"\b(NAME|OUT|DIR|DATA|RUN|SPACE)\b")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    found = {"app": ROOT / "app.py"}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            found[module_name(path)] = path
    return found


def imports_of(path: Path, modules: dict) -> set[str]:
    """Project modules a file imports, at any depth of its code (a lazy import is an import too)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name:
                out.add(name)
    return out


def graph() -> dict[str, set[str]]:
    modules = project_modules()
    # A package's __init__ runs before any of its modules: importing demo.pipeline.faces imports demo and
    # demo.pipeline too, but those edges are Python's, not ours, so a module's own packages are left out.
    return {m: {i for i in imports_of(p, modules) if not m.startswith(i + ".")} for m, p in modules.items()}


def test_no_module_imports_itself_through_others():
    edges, cycles = graph(), []
    index, low, stack, on_stack, counter = {}, {}, [], set(), [0]

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    assert not cycles, f"import circles: {cycles}"


def test_the_cycle_check_sees_a_lazy_import(tmp_path):
    """trainer.data imports trainer.augment inside a function: the walk must still see it."""
    assert "trainer.augment" in graph()["trainer.data"]


@pytest.mark.parametrize("source", sorted(FORBIDDEN))
def test_imports_go_from_the_front_ends_towards_the_pipeline(source):
    edges = graph()
    wrong = {(m, i) for m, targets in edges.items() if m == source or m.startswith(source + ".")
             for i in targets if any(i == f or i.startswith(f + ".") for f in FORBIDDEN[source])}
    assert not wrong, f"{source} must not import {FORBIDDEN[source]}: {sorted(wrong)}"


def test_no_folder_holds_more_than_16_python_modules():
    folders = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            folders.setdefault(path.parent.relative_to(ROOT), []).append(path.name)
    crowded = {str(f): len(names) for f, names in folders.items() if len(names) > MAX_MODULES}
    assert not crowded and folders


def named_paths(text: str) -> set[str]:
    """Repository paths a Markdown text names: `code spans` and link targets with a / or a file suffix
    (fenced code blocks are commands, whose paths may be the outputs they make)."""
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    candidates = re.findall(r"`([^`\s]+)`", text) + re.findall(r"\]\(([^)\s#]+)", text)
    paths = set()
    for c in candidates:
        c = c.rstrip(".,:;")
        if "://" in c or c.startswith(("-", "$", "../", "~", "/", ".")) or any(ch in c for ch in "*=<>{}|?") \
                or PLACEHOLDERS.search(c):
            continue
        if "/" in c or re.search(r"\.(py|md|json|txt|toml|keras|tflite|sh|png|jpg|mp4|yml)$", c):
            if re.fullmatch(r"[\w./-]+", c) and not re.fullmatch(r"[\d.]+", c):
                paths.add(c)
    return paths


def tracked_names() -> set[str]:
    """Every name of a committed file or folder, for the bare names a table lists beside their folder."""
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    return {part for f in files for part in Path(f).parts}


def ignored(path: str) -> bool:
    """A build output that .gitignore names (an ONNX export, a run): documented, not committed."""
    return subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT).returncode == 0


@pytest.mark.parametrize("doc", DOCS)
def test_every_path_a_document_names_exists(doc):
    path = ROOT / doc
    assert path.is_file(), f"{doc} is missing"
    text = path.read_text()
    named = named_paths(text)
    assert named, f"{doc} names no path: the check would check nothing"
    base = path.parent
    names = tracked_names()
    missing = sorted(p for p in named if not (ROOT / p).exists() and not (base / p).exists() and not ignored(p)
                     and not ("/" not in p.rstrip("/") and p.rstrip("/") in names))
    assert not missing, f"{doc} names paths that do not exist: {missing}"


def test_the_readme_is_short():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 220, f"README.md has {len(lines)} lines"
