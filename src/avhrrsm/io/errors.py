"""The one exception every reader raises for bad input: it names the file and what to do."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
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

    def __reduce__(self) -> tuple[type, tuple[str, str, str]]:
        # raised in a worker process, re-raised in the job with its parts
        return (type(self), (self.path, self.problem, self.hint))


def require_file(path: str | Path, product: str) -> Path:
    """The path as a Path, or an InputError saying which product's file is missing."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, f"{product} file not found", "check inputs in config.yaml")
    return path


# what zarr/numcodecs/netCDF4 raise for a truncated or corrupt chunk
READ_ERRORS = (RuntimeError, ValueError, OSError, KeyError, EOFError)


@contextmanager
def reading(*paths: str | Path | None, what: str = "store") -> Iterator[None]:
    """Turn a library's error while reading data into an InputError naming the file(s)."""
    try:
        yield
    except InputError:
        raise
    except READ_ERRORS as err:
        from avhrrsm.io.chunks import damaged_chunks  # it raises InputError: imported here

        named = " or ".join(str(p) for p in paths if p is not None)
        chunks = [
            chunk
            for path in paths
            if path is not None and Path(path).is_dir()
            for chunk in damaged_chunks(path, limit=1)
        ]
        where = f"; damaged chunk: {', '.join(chunks)}" if chunks else ""
        raise InputError(
            named,
            f"the {what} cannot be read: {type(err).__name__}: {err}{where}",
            "it is damaged or truncated: delete it and rerun the job that wrote it",
        ) from err
