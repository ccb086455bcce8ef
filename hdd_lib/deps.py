"""Which library code a computation runs: static import closures, their digests, DVC stage deps.

A closure holds every ``hdd_lib`` module imported at any depth (also inside functions), their parent packages,
and all modules of a package holding a ``Registry``; ``"hdd_lib.stages:distill_cell"`` counts module-level
imports plus those inside that function. :func:`code_digest` ignores comments and docstrings.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
from pathlib import Path
from typing import Iterable

__all__ = ["PACKAGE_DIR", "closure", "code_digest", "notebook_entries", "stage_deps", "dvc_deps"]

PACKAGE_DIR = Path(__file__).resolve().parent
_PKG = PACKAGE_DIR.name
#: Modules whose functions are pipeline stage bodies: a notebook depends on the functions it calls.
STAGE_MODULES = (f"{_PKG}.stages",)


def _file(module: str) -> Path | None:
    base = PACKAGE_DIR.joinpath(*module.split(".")[1:])
    return next((c for c in (base / "__init__.py", base.with_suffix(".py")) if c.is_file()), None)


@functools.cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _resolve(node: ast.ImportFrom | ast.Import, module: str, is_package: bool) -> list[str]:
    """Absolute ``hdd_lib`` module names an import statement of ``module`` loads."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == _PKG]
    target = node.module or ""
    if node.level:
        base = module.split(".")
        target = ".".join(base[: len(base) - node.level + is_package] + ([target] if target else []))
    if target.split(".")[0] != _PKG:
        return []
    return [target] + [f"{target}.{a.name}" for a in node.names if _file(f"{target}.{a.name}") is not None]


def _imports(module: str, function: str | None = None) -> set[str]:
    path = _file(module)
    if path is None:
        return set()
    is_package = path.name == "__init__.py"
    tree = _tree(path)
    if function is None:
        nodes: Iterable[ast.AST] = ast.walk(tree)
    else:  # module level and class bodies, plus the one function
        top = [n for n in tree.body if not isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        fns = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == function]
        if not fns:
            raise ValueError(f"{module} has no function {function!r}")
        nodes = [m for n in top + fns for m in ast.walk(n)]
    found = set()
    for node in nodes:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.update(_resolve(node, module, is_package))
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Registry":
            package = module if is_package else module.rsplit(".", 1)[0]
            found.update(f"{package}.{p.stem}" for p in _file(package).parent.glob("*.py") if p.stem != "__init__")
    return {m for m in found if _file(m) is not None}


def closure(entries: Iterable[str]) -> list[str]:
    """Sorted module names run by ``entries`` (``"hdd_lib.x"`` or ``"hdd_lib.x:function"``)."""
    todo = [(module, function or None) for module, _, function in (e.partition(":") for e in entries)]
    seen: set[str] = set()
    while todo:
        module, function = todo.pop()
        key = module if function is None else f"{module}:{function}"
        if key in seen:
            continue
        seen.add(key)
        parts = module.split(".")
        parents = [".".join(parts[:i]) for i in range(1, len(parts))]
        todo += [(m, None) for m in [*_imports(module, function), *parents] if m not in seen]
    return sorted({k.partition(":")[0] for k in seen if _file(k.partition(":")[0]) is not None})


def _normalised(path: Path) -> str:
    """The module's syntax tree without docstrings: comments, docstrings and layout do not count."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(getattr(body[0], "value", None), ast.Constant) and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, annotate_fields=False, include_attributes=False)


@functools.cache
def code_digest(*entries: str) -> str:
    """Short SHA-256 of the closure of ``entries`` (see the module docstring)."""
    h = hashlib.sha256()
    for module in closure(entries):
        path = _file(module)
        h.update(f"{path.relative_to(PACKAGE_DIR.parent)}\n{_normalised(path)}\n".encode())
    return h.hexdigest()[:16]


def notebook_entries(notebook: str | Path) -> list[str]:
    """The ``hdd_lib`` modules a notebook imports, and the :data:`STAGE_MODULES` functions it calls (``mod:fn``)."""
    cells = json.loads(Path(notebook).read_text())["cells"]
    source = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    source = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
    tree = ast.parse(source)
    aliases: dict[str, str] = {}
    entries: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == _PKG:
            for a in node.names:
                name = f"{node.module}.{a.name}"
                target = name if _file(name) is not None else node.module
                aliases[a.asname or a.name] = target
                if target not in STAGE_MODULES:
                    entries.add(target)
        elif isinstance(node, ast.Import):
            entries.update(a.name for a in node.names if a.name.split(".")[0] == _PKG)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and aliases.get(node.value.id) in STAGE_MODULES:
            entries.add(f"{aliases[node.value.id]}:{node.attr}")
    return sorted(entries)


def stage_deps(notebook: str | Path) -> list[str]:
    """Repository-relative paths of the code a notebook runs (a wholly used package as its folder)."""
    root, files = PACKAGE_DIR.parent, {_file(m) for m in closure(notebook_entries(notebook))}
    whole = {f.parent for f in files if f.parent != PACKAGE_DIR and set(f.parent.glob("*.py")) <= files}
    return sorted({f"{f.parent.relative_to(root)}/" if f.parent in whole else str(f.relative_to(root)) for f in files})


def dvc_deps(dvc_yaml: str | Path, *, write: bool = False) -> dict[str, tuple[list[str], list[str]]]:
    """``{stage: (declared library deps, computed ones)}``; ``write=True`` replaces the declared ones in place."""
    from ruamel.yaml import YAML
    yaml = YAML()
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    path = Path(dvc_yaml)
    doc = yaml.load(path.read_text())
    out = {}
    for name, stage in doc["stages"].items():
        deps = stage.get("deps", [])
        notebooks = [d for d in deps if str(d).endswith(".ipynb")]
        if not notebooks:
            continue
        computed = sorted({d for nb in notebooks for d in stage_deps(path.parent / nb)})
        declared = [str(d) for d in deps if str(d).startswith(f"{_PKG}/")]
        out[name] = (declared, computed)
        if write and declared != computed:
            others = [d for d in deps if not str(d).startswith(f"{_PKG}/")]
            deps.clear()
            deps.extend(others + computed)
    if write:
        with path.open("w") as f:
            yaml.dump(doc, f)
    return out
