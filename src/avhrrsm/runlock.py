"""One workflow per run folder.

Snakemake locks its working directory, not the results folder: two working directories whose
configs name the same ``results_dir``/``run`` would write the same outputs and remove each
other's temporaries. The workflow takes ``{run folder}/.avhrrsm.lock`` when it starts (not in
dry runs, not in the job processes of a cluster) and gives it back when it ends; a second
workflow on the same run folder is refused with the first one's working directory, host and
process. A lock whose process is gone (same host) is taken over with a warning.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path

from avhrrsm.atomic import HOST, process_alive

LOGGER = logging.getLogger(__name__)
LOCK_NAME = ".avhrrsm.lock"


class RunFolderInUse(RuntimeError):
    """Another workflow holds the run folder."""


def _read(lock: Path) -> dict | None:
    try:
        owner = json.loads(lock.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return owner if isinstance(owner, dict) else None


def acquire_run_folder(run_dir: str | Path, workdir: str | Path) -> Path:
    """Take the run folder's lock for this process; raise :class:`RunFolderInUse` where another
    live workflow holds it."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = run_dir / LOCK_NAME
    me = {
        "host": HOST,
        "pid": os.getpid(),
        "workdir": str(Path(workdir).resolve()),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    for _ in range(3):
        try:
            handle = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            owner = _read(lock)
            if owner is None:
                LOGGER.warning("%s: unreadable lock, taken over", lock)
            elif owner.get("host") == HOST and owner.get("pid") == me["pid"]:
                return lock
            elif owner.get("host") == HOST and not process_alive(int(owner.get("pid", -1))):
                LOGGER.warning(
                    "%s: left by workflow %s (pid %s), which is gone; taken over",
                    lock,
                    owner.get("workdir"),
                    owner.get("pid"),
                )
            else:
                raise RunFolderInUse(
                    f"{run_dir} is in use by the workflow in {owner.get('workdir')} (pid "
                    f"{owner.get('pid')} on {owner.get('host')}, since {owner.get('started')}): "
                    "two workflows on one run folder would overwrite and remove each other's "
                    "outputs. Wait for it to end, give this run another `run:` name, or delete "
                    f"{lock} if that workflow is gone."
                ) from None
            lock.unlink(missing_ok=True)
            continue
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(me, stream)
        return lock
    raise RunFolderInUse(f"{lock}: could not be taken (another workflow keeps taking it)")


def release_run_folder(run_dir: str | Path) -> None:
    """Give the run folder's lock back, where this process holds it."""
    lock = Path(run_dir) / LOCK_NAME
    owner = _read(lock)
    if owner is not None and owner.get("host") == HOST and owner.get("pid") == os.getpid():
        lock.unlink(missing_ok=True)
