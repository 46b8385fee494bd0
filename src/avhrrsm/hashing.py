"""Content checksums of files and folders, and the hash cache of raw inputs.

A file's checksum is the sha256 of its bytes (``sha256sum`` gives the same); a folder's (a Zarr
store, a year of daily files) is the sha256 of the sorted lines ``{relpath}\\0{sha256}`` of its
files, leaving out Snakemake's ``.snakemake_timestamp`` marker. The provenance records
(:mod:`avhrrsm.provenance`) carry these checksums.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from avhrrsm.atomic import write_text_atomic
from avhrrsm.io.paths import walk_files

# written by Snakemake into directory outputs after the job: not part of the content
IGNORED_NAMES = frozenset({".snakemake_timestamp"})
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Digest:
    """Content checksum of a file or folder: sha256, total bytes, number of files.

    ``members`` ({relative path: sha256}) is kept for folders that are not Zarr stores (a year
    of daily product files), so that a change can be traced to the file.
    """

    sha256: str
    size: int
    files: int
    members: dict[str, str] | None = None

    def as_dict(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"sha256": self.sha256, "size": self.size, "files": self.files}
        if self.members is not None:
            entry["members"] = self.members
        return entry


def keeps_members(path: Path) -> bool:
    """Folders whose files are listed one by one (not Zarr stores, whose chunks are many)."""
    return path.is_dir() and path.suffix != ".zarr"


def _member_files(folder: Path) -> list[Path]:
    """Files under ``folder`` (through linked folders) in a stable order (sorted relative POSIX
    paths)."""
    found = [path for path in walk_files(folder) if path.name not in IGNORED_NAMES]
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def member_digests(folder: str | Path) -> dict[str, str]:
    """{relative path: sha256} of every file of a folder."""
    folder = Path(folder)
    return {p.relative_to(folder).as_posix(): file_sha256(p) for p in _member_files(folder)}


def content_digest(path: str | Path) -> Digest:
    """The checksum of a file or a folder, computed from the bytes (see the module docstring)."""
    return _digest(path, file_sha256)


def _digest(path: str | Path, sha256_of: Callable[[Path], str]) -> Digest:
    """The checksum of a file or folder (see the module docstring), each file hashed by
    ``sha256_of`` (from the bytes, or through the hash cache)."""
    path = Path(path)
    if path.is_file():
        return Digest(sha256_of(path), path.stat().st_size, 1)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such file or folder")
    members = {p.relative_to(path).as_posix(): sha256_of(p) for p in _member_files(path)}
    tree = hashlib.sha256()
    for relpath, sha256 in members.items():
        tree.update(f"{relpath}\0{sha256}\n".encode())
    size = sum((path / relpath).stat().st_size for relpath in members)
    return Digest(tree.hexdigest(), size, len(members), members if keeps_members(path) else None)


def stat_fingerprint(path: str | Path) -> dict[str, int]:
    """Size, file count and newest mtime: cheap to take, changes when the content is rewritten."""
    path = Path(path)
    members = [path] if path.is_file() else _member_files(path)
    stats = [m.stat() for m in members]
    return {
        "size": sum(s.st_size for s in stats),
        "files": len(stats),
        "mtime_ns": max((s.st_mtime_ns for s in stats), default=0),
    }


# The hash cache of raw inputs: one small JSON per file (path, size, mtime, sha256), written
# atomically, so that jobs on several nodes can share it. $AVHRRSM_HASH_CACHE sets the folder
# ("off" disables it); by default .avhrrsm_cache/sha256 in the working directory.
HASH_CACHE_ENV = "AVHRRSM_HASH_CACHE"
DEFAULT_HASH_CACHE = Path(".avhrrsm_cache") / "sha256"


def hash_cache_dir() -> Path | None:
    """The hash cache's folder, or None where it is turned off."""
    value = os.environ.get(HASH_CACHE_ENV, "")
    if value.lower() in ("off", "0", "none"):
        return None
    return Path(value) if value else Path.cwd() / DEFAULT_HASH_CACHE


def cached_file_sha256(path: str | Path) -> str:
    """sha256 of a raw input file, from the hash cache while its size and mtime are the ones it
    had when it was hashed (a 40-year run reads the same raw files in many jobs)."""
    resolved = str(Path(path).resolve())
    stat = os.stat(resolved)
    folder = hash_cache_dir()
    if folder is None:
        return file_sha256(path)
    key = hashlib.sha256(resolved.encode()).hexdigest()
    entry = folder / key[:2] / f"{key}.json"
    try:
        cached = json.loads(entry.read_text(encoding="utf-8"))
        if (cached["path"], cached["size"], cached["mtime_ns"]) == (
            resolved,
            stat.st_size,
            stat.st_mtime_ns,
        ):
            return str(cached["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    sha256 = file_sha256(path)
    record = {"path": resolved, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(entry, json.dumps({**record, "sha256": sha256}))
    except OSError:
        pass  # a read-only cache: hash again next time
    return sha256


def raw_digest(path: str | Path) -> Digest:
    """The checksum of a raw input (file or folder, as :func:`content_digest` computes it),
    through the hash cache."""
    return _digest(path, cached_file_sha256)
