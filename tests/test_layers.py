"""The package's layers: imports only go down, and no module imports itself back.

The layers, bottom to top (ROADMAP.md's layout): `_core` (rules and engine, no I/O), `_api` (the
objects an app holds), `abc` (extension contracts), `_backends`, `_hosts`, `_daemon` (the per-user
daemon and its client), `testing`, `_cli`, and
the package's `__init__` / `__main__`, which join them. A module may import from its own layer or
any layer below. Every import counts: at module level, inside functions, and under
`TYPE_CHECKING`, because each is a dependency a reader has to hold in mind. Like the clock test,
this reads the source, so it fails on the line that breaks the rule.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "extended_runtime"

#: Each top-level part of the package and its layer (higher may import lower).
LAYERS = {
    "_core": 0,
    "_api": 1,
    "abc": 2,
    "_backends": 3,
    "_hosts": 4,
    "_daemon": 5,
    "testing": 6,
    "_cli": 7,
    "__init__": 8,
    "__main__": 9,
}


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 2:
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path, root: Path) -> list[tuple[int, str]]:
    """Every module of the package `path` imports, with the line, relative ones resolved."""
    module = _module_name(path, root)
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    if path.name == "__init__.py" and module == root.name:
        package = [root.name]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            names = [f"{target}.{alias.name}" for alias in node.names]
            found.extend((node.lineno, _existing(name, target, root)) for name in names)
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
    return [(line, name) for line, name in found if name.split(".")[0] == root.name]


def _existing(name: str, fallback: str, root: Path) -> str:
    """`from pkg import mod` imports a module when `mod` is one; else the name is in `pkg`."""
    relative = Path(*name.split(".")[1:])
    if (root / relative).with_suffix(".py").is_file() or (root / relative).is_dir():
        return name
    return fallback


def _layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS[parts[1]] if len(parts) > 1 else LAYERS["__init__"]


def _graph(root: Path) -> dict[str, list[tuple[int, str]]]:
    return {_module_name(p, root): _imports(p, root) for p in sorted(root.rglob("*.py"))}


def upward_imports(root: Path) -> list[str]:
    """Each import that points to a higher layer, as `module:line -> imported`."""
    return [
        f"{module}:{line} -> {target}"
        for module, imports in _graph(root).items()
        for line, target in imports
        if _layer(target) > _layer(module)
    ]


def cycles(root: Path) -> list[list[str]]:
    """The import cycles among the package's modules (each found once, from its first module)."""
    graph = {m: sorted({t for _, t in imports if t != m}) for m, imports in _graph(root).items()}
    found: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in graph.get(module, ()):
            if state.get(target) == 1:
                found.append([*path[path.index(target) :], target])
            elif target in graph and target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in graph:
        if module not in state:
            visit(module, [module])
    return found


def test_every_part_of_the_package_has_a_layer() -> None:
    parts = {p.name.removesuffix(".py") for p in PACKAGE.iterdir() if not p.name.startswith(".")}
    parts -= {"py.typed", "__pycache__"}
    assert parts == set(LAYERS)


def test_imports_only_go_down() -> None:
    assert upward_imports(PACKAGE) == []


def test_no_module_imports_itself_back() -> None:
    assert cycles(PACKAGE) == []


def _sample_package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "extended_runtime"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_the_scan_catches_an_upward_import_even_inside_a_function(tmp_path: Path) -> None:
    root = _sample_package(
        tmp_path,
        {
            "__init__.py": "",
            "_core/__init__.py": "",
            "_core/engine.py": "def f():\n    from .._hosts import base\n",
            "_hosts/__init__.py": "",
            "_hosts/base.py": "from .._core.engine import f\n",
        },
    )
    assert upward_imports(root) == [
        "extended_runtime._core.engine:2 -> extended_runtime._hosts.base"
    ]


@pytest.mark.parametrize(
    "files",
    [
        {
            "_api/a.py": "from .b import x\n",
            "_api/b.py": "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    from .a import y\n",
        },
        {"_api/a.py": "from . import b\n", "_api/b.py": "from . import a\n"},
    ],
    ids=["type-checking-only", "module-imports"],
)
def test_the_scan_catches_a_cycle(tmp_path: Path, files: dict[str, str]) -> None:
    root = _sample_package(tmp_path, {"__init__.py": "", "_api/__init__.py": "", **files})
    assert cycles(root) == [
        ["extended_runtime._api.a", "extended_runtime._api.b", "extended_runtime._api.a"]
    ]
