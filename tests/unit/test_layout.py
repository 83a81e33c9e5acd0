"""The package's layers stay visible: each imports only the layers below it, stages never import each other,
and no module name is used twice (docs/architecture.md draws the same layers)."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "nextquill"
# Bottom to top. A module may import its own layer's modules and any layer below, never one above.
LAYERS = (
    ("foundations", {"nextquill.config", "nextquill.paths", "nextquill.io", "nextquill.assets", "nextquill.progress",
                     "nextquill.provenance"}),
    ("method", {"nextquill.method"}),
    ("data", {"nextquill.data"}),
    ("model", {"nextquill.model"}),
    ("evaluation", {"nextquill.evaluation"}),
    ("mlops", {"nextquill.mlops"}),
    ("stages", {"nextquill.stages"}),
    ("entry points", {"nextquill.cli", "nextquill.compare", "nextquill.comparison"}),
)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(name: str) -> int:
    for index, (_, prefixes) in enumerate(LAYERS):
        if any(name == p or name.startswith(p + ".") for p in prefixes):
            return index
    raise AssertionError(f"{name} belongs to no layer of tests/unit/test_layout.py")


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("nextquill.")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("nextquill"):
            found |= {f"{node.module}.{a.name}" if (PACKAGE.parent / node.module.replace(".", "/") / f"{a.name}.py")
                      .is_file() else node.module for a in node.names}
    return found


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py")


def test_every_module_has_a_layer():
    for path in MODULES:
        layer(module_name(path))


@pytest.mark.parametrize("path", MODULES, ids=[module_name(p) for p in MODULES])
def test_imports_go_only_down(path):
    own = layer(module_name(path))
    upward = sorted(name for name in imports(path) if name != "nextquill" and layer(name) > own)
    assert upward == [], f"{module_name(path)} ({LAYERS[own][0]}) imports a higher layer: {upward}"


def test_no_stage_imports_another_stage():
    for path in (PACKAGE / "stages").glob("*.py"):
        others = {name for name in imports(path) if name.startswith("nextquill.stages.")} - {
            "nextquill.stages._cli", module_name(path)}
        assert others == set(), f"{path.name} imports {sorted(others)}: shared work belongs in a library module"


def test_no_module_name_is_used_twice():
    names = Counter(path.stem for path in MODULES)
    assert [name for name, n in names.items() if n > 1] == []
