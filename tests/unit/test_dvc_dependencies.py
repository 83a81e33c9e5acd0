"""`dvc.yaml` and `comparison/dvc.yaml` list every source file and every parameter each stage's code reads.

The source files are derived from the imports of each stage's entry module, followed transitively inside the
package (imports inside functions count: that is where the heavy ones live). The parameters are derived from
the same modules: every `params.<section>.<key>` read, through local aliases such as `cfg = params.data`; a
section used whole (passed on, dumped, copied) counts as the whole section. A stage that misses one would be
reported "up to date" by DVC after an edit that changes what it computes.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "nextquill"
PIPELINES = (REPO / "dvc.yaml", REPO / "comparison" / "dvc.yaml")
WHOLE = {"model_dump", "model_dump_json", "model_copy"}  # pydantic methods that read a whole section


def module_file(name: str) -> Path | None:
    path = REPO / Path(*name.split("."))
    if path.with_suffix(".py").is_file():
        return path.with_suffix(".py")
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    return None


@cache
def tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def imported_modules(path: Path) -> set[str]:
    """Every nextquill module `path` imports, at any depth of its code."""
    found = set()
    for node in ast.walk(tree(path)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("nextquill")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("nextquill"):
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names
                      if module_file(f"{node.module}.{alias.name}")}  # `from nextquill.stages import train`
    parents = {".".join(name.split(".")[:i]) for name in found for i in range(1, name.count(".") + 1)}
    return found | parents  # importing a.b.c runs a/__init__ and a/b/__init__ too


def closure(entry: str) -> set[Path]:
    todo, seen = [entry], set()
    while todo:
        name = todo.pop()
        path = module_file(name)
        if path is None or path in seen:
            continue
        seen.add(path)
        todo.extend(imported_modules(path))
    return seen


def _chain(node: ast.AST) -> list[str] | None:
    """`a.b.c` as ["a", "b", "c"], or None when the expression is not a plain attribute chain."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return [node.id, *reversed(parts)]
    return None


@cache
def params_properties() -> dict[str, set[str]]:
    """Properties of `Params` (config.py) -> the keys each reads through `self` (`params.training_seed`)."""
    out = {}
    for cls in ast.walk(tree(PACKAGE / "config.py")):
        if isinstance(cls, ast.ClassDef) and cls.name == "Params":
            for func in cls.body:
                if isinstance(func, ast.FunctionDef) and any(
                        isinstance(d, ast.Name) and d.id == "property" for d in func.decorator_list):
                    chains = [_chain(n) for n in ast.walk(func) if isinstance(n, ast.Attribute)]
                    longest = {".".join(c[1:]) for c in chains if c and c[0] == "self" and len(c) > 2}
                    out[func.name] = longest
    return out


@cache
def section_methods() -> dict[str, set[str]]:
    """Plain methods of the section models of config.py (`CompareConfig.seeds_of`) -> the fields each reads
    through `self` (`seeds`, `methods`, `reading_seeds`)."""
    out = {}
    for cls in ast.walk(tree(PACKAGE / "config.py")):
        if isinstance(cls, ast.ClassDef) and cls.name != "Params":
            for func in cls.body:
                if isinstance(func, ast.FunctionDef) and not func.decorator_list and not func.name.startswith("_"):
                    chains = [_chain(n) for n in ast.walk(func) if isinstance(n, ast.Attribute)]
                    out[func.name] = {c[1] for c in chains if c and c[0] == "self" and len(c) > 1}
    return out


def params_read(path: Path) -> set[str]:
    """Dotted params keys the functions of `path` read from a name `params` (argument or local) and its aliases;
    a property of `Params` counts as the keys it reads."""
    reads = set()
    for func in ast.walk(tree(path)):
        if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        aliases: dict[str, list[str]] = {"params": []}
        for node in ast.walk(func):  # aliases first: `cfg = params.data`, `cfg, fx = params.train, params.effects`
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                targets, values = node.targets[0], node.value
                pairs = (zip(targets.elts, values.elts, strict=False) if isinstance(targets, ast.Tuple)
                         and isinstance(values, ast.Tuple) else [(targets, values)])
                for target, value in pairs:
                    chain = _chain(value)
                    if isinstance(target, ast.Name) and chain and chain[0] in aliases:
                        aliases[target.id] = aliases[chain[0]] + chain[1:]
        parents = {child: parent for parent in ast.walk(func) for child in ast.iter_child_nodes(parent)}
        for node in ast.walk(func):
            chain = _chain(node) if isinstance(node, ast.Attribute | ast.Name) else None
            if not chain or chain[0] not in aliases or isinstance(parents.get(node), ast.Attribute):
                continue  # only the longest chain counts: `params.data.k`, not also `params.data`
            parent = parents.get(node)
            if isinstance(parent, ast.Assign) and node is parent.value and isinstance(parent.targets[0], ast.Name):
                continue  # an alias definition (`cfg = params.data`): what counts is what is read through it
            if (isinstance(parent, ast.Tuple) and isinstance(parents.get(parent), ast.Assign)
                    and isinstance(parents[parent].targets[0], ast.Tuple)):
                continue
            keys = aliases[chain[0]] + chain[1:]
            if keys and keys[-1] in WHOLE:
                keys = keys[:-1]
            if keys and keys[0] in params_properties():
                reads |= params_properties()[keys[0]]
            elif len(keys) > 1 and keys[-1] in section_methods():  # params.compare.seeds_of(name)
                reads |= {".".join([*keys[:-1], field]) for field in section_methods()[keys[-1]]}
            elif keys:
                reads.add(".".join(keys))
    return reads


def stages() -> list[tuple[str, str, dict, Path]]:
    out = []
    for pipeline in PIPELINES:
        doc = yaml.safe_load(pipeline.read_text())
        for name, stage in doc["stages"].items():
            out.append((f"{pipeline.relative_to(REPO)}:{name}", stage["cmd"], stage, pipeline))
    return out


def entry_module(cmd: str) -> str:
    match = re.match(r"python -m (nextquill[\w.]*)", cmd)
    assert match, f"stage command {cmd!r} does not run a nextquill module"
    return match.group(1)


def _listed(items: list) -> list[str]:
    return [next(iter(item)) if isinstance(item, dict) else str(item) for item in items or []]


def _declared_params(stage: dict) -> list[str]:
    keys = []
    for item in stage.get("params", []) or []:
        keys += list(item.values())[0] if isinstance(item, dict) else [str(item)]
    return keys


STAGES = stages()


def test_the_stages_are_found():
    names = {name.split(":")[1] for name, *_ in STAGES}
    assert {"base_model", "prepare", "train", "evaluate", "register", "trained", "zero_shot"} <= names


def test_package_init_files_hold_no_code():
    """`__init__.py` files are left out of the dependencies below; that is only safe while they hold no code
    (a docstring, and constants such as `__version__`)."""
    for path in PACKAGE.rglob("__init__.py"):
        for node in tree(path).body:
            assert isinstance(node, ast.Expr | ast.Assign) and isinstance(node.value, ast.Constant), path


@pytest.mark.parametrize(("name", "cmd", "stage", "pipeline"), STAGES, ids=[s[0] for s in STAGES])
def test_stage_lists_every_source_file_it_imports(name, cmd, stage, pipeline):
    base = (pipeline.parent / stage.get("wdir", ".")).resolve()
    deps = [(base / dep).resolve() for dep in _listed(stage.get("deps"))]
    needed = {path for path in closure(entry_module(cmd)) if path.name != "__init__.py"}
    missing = sorted(str(path.relative_to(REPO)) for path in needed
                     if not any(path == dep or dep in path.parents for dep in deps))
    assert missing == [], f"{name}: add to deps: {missing}"


@pytest.mark.parametrize(("name", "cmd", "stage", "pipeline"), STAGES, ids=[s[0] for s in STAGES])
def test_stage_lists_every_parameter_its_code_reads(name, cmd, stage, pipeline):
    declared = _declared_params(stage)
    reads = set().union(*(params_read(path) for path in closure(entry_module(cmd))))
    missing = sorted(key for key in reads
                     if not any(key == d or key.startswith(d + ".") for d in declared))
    assert missing == [], f"{name}: add to params: {missing}"
