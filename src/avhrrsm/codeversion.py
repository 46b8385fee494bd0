"""Which code a rule runs: the avhrrsm modules its entry script reaches, and their checksum.

Snakemake reruns a job when its ``script:`` file changes, but not when a module of the package
it imports does. Each rule therefore carries ``code=code_version(...)`` in its params: the
sha256 of the source of every ``avhrrsm`` module reachable from the rule's script through
imports (module-level and inside functions, absolute and relative), found by reading the
sources, not by importing them. An edit to a module changes the version of exactly the rules
that reach it: Snakemake's params trigger reruns those and, through their outputs, what depends
on them.
"""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Iterator
from functools import cache
from pathlib import Path

PACKAGE = "avhrrsm"
PACKAGE_DIR = Path(__file__).resolve().parent


def _module_file(name: str) -> Path | None:
    """The source file of a module of the package (``avhrrsm.io.glass``), or None."""
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return None
    base = PACKAGE_DIR.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE_DIR).with_suffix("")
    parts = [PACKAGE, *relative.parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def _imported(path: Path) -> tuple[str, ...]:
    """Names of the package's modules imported anywhere in a source file (a ``from x import y``
    gives ``x`` and, where ``y`` is a module, ``x.y``); each file parsed once per process."""
    return tuple(_imports_of(path))


def _imports_of(path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = _module_name(path) if path.is_relative_to(PACKAGE_DIR) else ""
    if path.name != "__init__.py" and package:
        package = package.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, node.module] if node.module else anchor)
            else:
                base = node.module or ""
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def reached_modules(script: str | Path) -> list[Path]:
    """Every source file of the package reachable from ``script`` through imports, sorted;
    parent packages' ``__init__.py`` included (importing a module runs them)."""
    found: set[Path] = set()
    todo = [Path(script).resolve()]
    while todo:
        path = todo.pop()
        for name in _imported(path):
            parts = name.split(".")
            for depth in range(1, len(parts) + 1):
                module = _module_file(".".join(parts[:depth]))
                if module is not None and module not in found:
                    found.add(module)
                    todo.append(module)
    return sorted(found)


@cache
def code_version(script: str | Path) -> str:
    """sha256 (first 16 hex digits) of the sources a rule's script reaches: its own bytes and
    each reached module's relative path and bytes."""
    digest = hashlib.sha256(Path(script).read_bytes())
    for module in reached_modules(script):
        digest.update(module.relative_to(PACKAGE_DIR).as_posix().encode() + b"\0")
        digest.update(module.read_bytes())
    return digest.hexdigest()[:16]
