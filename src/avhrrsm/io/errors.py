"""The one exception every reader raises for bad input: it names the file and what to do."""

from __future__ import annotations

from pathlib import Path


class InputError(ValueError):
    """An input file that is missing, unreadable or not what its product should be."""

    def __init__(self, path: str | Path, problem: str, hint: str = "") -> None:
        self.path = str(path)
        self.problem = problem
        self.hint = hint
        message = f"{self.path}: {problem}"
        if hint:
            message += f" ({hint})"
        super().__init__(message)


def require_file(path: str | Path, product: str) -> Path:
    """The path as a Path, or an InputError saying which product's file is missing."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, f"{product} file not found", "check inputs in config.yaml")
    return path
