"""Writing outputs atomically: under a temporary name beside the target, renamed into place
only when complete. A job killed mid-write (even by SIGKILL) leaves at most a hidden temporary
``.{name}.tmp-{host}-{pid}`` that no rule consumes, and the next attempt removes it, unless the
process that writes it still runs (two workflows or jobs on one results folder) or runs on
another host."""

from __future__ import annotations

import errno
import logging
import os
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOGGER = logging.getLogger(__name__)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


HOST = socket.gethostname()


def _temporary_name(target: Path) -> str:
    return f".{target.name}.tmp-{HOST}-{os.getpid()}"


def process_alive(pid: int, since: float | None = None) -> bool:
    """Whether process ``pid`` of this host runs (and, with ``since``, was started by then: a
    number reused by a newer process does not count)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, another user's
    if since is not None:
        try:
            started = os.stat(f"/proc/{pid}").st_ctime
        except OSError:
            return True
        return started <= since + 1.0
    return True


def _owner(temporary: Path, target: Path) -> tuple[str | None, int | None]:
    """(host, pid) from a temporary's name; the host is None in names without one."""
    suffix = temporary.name[len(f".{target.name}.tmp-") :]
    host, _, pid = suffix.rpartition("-")
    return (host or None), (int(pid) if pid.isdigit() else None)


def temporaries(target: Path) -> list[Path]:
    """Every temporary of ``target``: being written, or left by an interrupted attempt."""
    if not target.parent.is_dir():
        return []
    prefix = f".{target.name}.tmp-"
    return sorted(p for p in target.parent.iterdir() if p.name.startswith(prefix))


def stale_temporaries(target: Path) -> list[Path]:
    """Temporaries of ``target`` left by earlier, interrupted attempts: those of processes of
    this host that no longer run. A temporary of a live process (another job or workflow on the
    same results folder) is never one; nor is one of another host, which cannot be checked
    from here (it is logged and left)."""
    stale = []
    for path in temporaries(target):
        host, pid = _owner(path, target)
        if host not in (None, HOST):
            LOGGER.warning("%s: a temporary of host %s, left in place", path, host)
            continue
        try:
            made = path.lstat().st_mtime
        except OSError:
            continue
        if pid is not None and pid != os.getpid() and process_alive(pid, made):
            LOGGER.warning("%s: being written by running process %d, left in place", path, pid)
            continue
        stale.append(path)
    return stale


def _fresh_temporary(target: Path) -> Path:
    """This process's temporary of ``target``, its folder made and stale ones removed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in stale_temporaries(target):
        _remove(stale)
    return target.with_name(_temporary_name(target))


@contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` on success only."""
    target = Path(target)
    tmp = _fresh_temporary(target)
    try:
        yield tmp
        _remove(target)
        os.replace(tmp, target)
    except BaseException as err:
        full = _out_of_space(err, target)
        _remove(tmp)
        if full is not None:
            raise full from err
        raise


@contextmanager
def scratch_path(target: str | Path, purpose: str) -> Iterator[Path]:
    """A temporary path beside ``target`` for its writer's intermediate data (e.g. a stack's
    first pass), named as a temporary of ``{target}.{purpose}``: removed when the block ends,
    whether it succeeded or not, and by the next attempt where a killed one left it."""
    target = Path(target)
    tmp = _fresh_temporary(target.with_name(f"{target.name}.{purpose}"))
    try:
        yield tmp
    finally:
        _remove(tmp)


# below this much free space a failed write is taken for a full file system (libraries such as
# netCDF/HDF5 report it as "NetCDF: HDF error" and lose the errno)
NEARLY_FULL_BYTES = 64 * 2**20


def _out_of_space(err: BaseException, target: Path) -> OSError | None:
    """An OSError that says "no space left on the device" and names the output, where ``err``
    came from a full file system (ENOSPC, or a library error while almost no space is free);
    None otherwise."""
    if not isinstance(err, OSError | RuntimeError):
        return None
    try:
        free = shutil.disk_usage(target.parent).free
    except OSError:
        return None
    if getattr(err, "errno", None) != errno.ENOSPC and free >= NEARLY_FULL_BYTES:
        return None
    return OSError(
        errno.ENOSPC,
        f"no space left on the device while writing {target} ({free / 2**20:.0f} MiB free in "
        f"{target.parent}; {type(err).__name__}: {err}): free space there, or point "
        "results_dir at a larger file system, then run again",
    )


def write_text_atomic(target: str | Path, text: str) -> Path:
    """Write a text file atomically (UTF-8)."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(target)
