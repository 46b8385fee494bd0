"""Writing outputs atomically: under a temporary name beside the target, renamed into place
only when complete. A job killed mid-write (even by SIGKILL) leaves at most a hidden temporary
``.{name}.tmp-{pid}`` that no rule consumes, and the next attempt removes it."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def stale_temporaries(target: Path) -> list[Path]:
    """Temporaries of ``target`` left by earlier, interrupted attempts."""
    if not target.parent.is_dir():
        return []
    prefix = f".{target.name}.tmp-"
    return sorted(p for p in target.parent.iterdir() if p.name.startswith(prefix))


@contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` on success only."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in stale_temporaries(target):
        _remove(stale)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        _remove(target)
        os.replace(tmp, target)
    except BaseException:
        _remove(tmp)
        raise


def write_text_atomic(target: str | Path, text: str) -> Path:
    """Write a text file atomically (UTF-8)."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(target)
