"""Provenance: which code, settings, inputs, device and seed made an output, and its checksum.

Every output carries two records:

- **in its own metadata** (NetCDF/Zarr global attributes, ``avhrrsm_*``; the ``provenance``
  entry of JSON and checkpoint files): code version and git commit with a dirty flag, the rule
  and its wildcards, the params and their sha256, the sha256 of every input, library versions,
  device, seed and threads. Nothing in it depends on the clock, the host name or the absolute
  working directory, so a rerun with the same code, config and inputs gives the same bytes.
- **in a sidecar** ``{output}.prov.json`` written when the job ends: the same provenance, the
  output's own sha256, size and file count, and what changes from run to run (start and end
  time, host). Sidecars are records, not compared bytes.

Checksums are :mod:`avhrrsm.hashing`'s.
"""

from __future__ import annotations

import json
import platform
import socket
import subprocess
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from avhrrsm import __version__
from avhrrsm.atomic import write_text_atomic
from avhrrsm.config import config_hash
from avhrrsm.hashing import Digest, content_digest, raw_digest, stat_fingerprint

KEY_LIBRARIES = (
    "numpy",
    "xarray",
    "dask",
    "zarr",
    "netCDF4",
    "rasterio",
    "torch",
    "xgboost",
    "pandas",
)
SIDECAR_SUFFIX = ".prov.json"
SIDECAR_FORMAT = "avhrrsm-provenance-1"
ATTR_PREFIX = "avhrrsm_"


# The code's own folder: git finds the checkout (if any) that holds the running package.
PACKAGE_DIR = Path(__file__).resolve().parent


@lru_cache(maxsize=1)
def git_state() -> tuple[str, bool]:
    """(commit, dirty) of the checkout holding the running package, or ('unknown', False) when
    it is not in one (an installed wheel)."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=PACKAGE_DIR,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=PACKAGE_DIR,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout
        return commit, bool(status.strip())
    except (OSError, subprocess.SubprocessError):
        return "unknown", False


def library_versions() -> dict[str, str]:
    versions = {}
    for name in KEY_LIBRARIES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            continue
    return versions


@lru_cache(maxsize=1)
def cpu_description() -> str:
    """'cpu (model name)' from /proc/cpuinfo, else the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.lower().startswith("model name"):
                return f"cpu ({line.split(':', 1)[1].strip()})"
    except OSError:
        pass
    return f"cpu ({platform.processor() or platform.machine()})"


def sidecar_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.name + SIDECAR_SUFFIX)


def read_sidecar(path: str | Path) -> dict[str, Any] | None:
    """The sidecar record of an output, or None when it has none (or an unreadable one)."""
    side = sidecar_path(path)
    try:
        record = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("format") == SIDECAR_FORMAT else None


# How a job obtained an input's checksum (the record's ``inputs_checked``). Raw inputs are
# hashed through the hash cache: the same text whether the bytes were read now or earlier, so
# that records stay the same bytes from run to run.
CHECKED_BYTES = "bytes hashed (or the hash cache's checksum while size and mtime are unchanged)"
CHECKED_SIDECAR = "producer's checksum; size, files and mtime as it recorded"


def recorded_digest(path: str | Path) -> Digest:
    """The checksum of an output, from its producer's sidecar while the output is unchanged.

    A workflow output is hashed once, by the job that wrote it; later readers reuse that
    checksum as long as size, file count and newest mtime still match, and hash the bytes
    again otherwise (and always for raw inputs, which have no sidecar). A change that keeps
    size, file count and mtime is therefore not seen here: records say so
    (:func:`checked_digest`), and ``avhrrsm audit verify`` / ``lineage --check-bytes`` re-hash.
    """
    return checked_digest(path)[0]


def checked_digest(path: str | Path) -> tuple[Digest, str]:
    """The checksum of a job's input and how it was obtained (:data:`CHECKED_BYTES` or
    :data:`CHECKED_SIDECAR`)."""
    record = read_sidecar(path)
    if record is None:
        return raw_digest(path), CHECKED_BYTES
    if record.get("fingerprint") == stat_fingerprint(path):
        digest = Digest(
            str(record["sha256"]), int(record["size"]), int(record["files"]), record.get("members")
        )
        return digest, CHECKED_SIDECAR
    # changed since its record, or touched (Snakemake touches file outputs after their job)
    return raw_digest(path), CHECKED_BYTES


def input_digest(path: str | Path) -> str:
    """sha256 of a job's input (see :func:`recorded_digest`)."""
    return recorded_digest(path).sha256


# --- the provenance record -------------------------------------------------------------------


def _flat_inputs(inputs: Iterable[str | Path] | Mapping[str, Any]) -> list[str]:
    values = inputs.values() if isinstance(inputs, Mapping) else inputs
    flat: list[str] = []
    for value in values:
        if isinstance(value, (str, Path)):
            flat.append(str(value))
        else:
            flat.extend(str(v) for v in value)
    return sorted(set(flat))


def provenance_record(
    rule: str,
    params: Mapping[str, Any],
    inputs: Iterable[str | Path] | Mapping[str, Any] = (),
    *,
    wildcards: Mapping[str, Any] | None = None,
    seed: int | None = None,
    device: str | None = None,
    threads: int | None = None,
) -> dict[str, Any]:
    """The provenance of one job's outputs as plain JSON values (no clock, host or abs paths)."""
    commit, dirty = git_state()
    checked = {path: checked_digest(path) for path in _flat_inputs(inputs)}
    return {
        "version": __version__,
        "git_commit": commit,
        "git_dirty": dirty,
        "rule": rule,
        "wildcards": {k: str(v) for k, v in sorted((wildcards or {}).items())},
        "params_sha256": config_hash(dict(params)),
        "params": json.loads(json.dumps(dict(params), sort_keys=True, default=str)),
        "inputs": {path: digest.sha256 for path, (digest, _) in checked.items()},
        "inputs_checked": {path: how for path, (_, how) in checked.items()},
        "libraries": library_versions(),
        "python": platform.python_version(),
        "device": device or cpu_description(),
        "seed": seed,
        "threads": threads,
    }


def record_to_attrs(record: Mapping[str, Any]) -> dict[str, str]:
    """The record as NetCDF/Zarr global attributes: ``avhrrsm_{key}``, JSON for non-strings."""
    attrs = {}
    for key, value in record.items():
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        attrs[f"{ATTR_PREFIX}{key}"] = text
    return attrs


def attrs_to_record(attrs: Mapping[str, Any]) -> dict[str, Any] | None:
    """Inverse of :func:`record_to_attrs`; None when the attributes hold no provenance."""
    if f"{ATTR_PREFIX}rule" not in attrs:
        return None
    record: dict[str, Any] = {}
    for name, value in attrs.items():
        if not name.startswith(ATTR_PREFIX):
            continue
        key = name[len(ATTR_PREFIX) :]
        if key in ("version", "git_commit", "rule", "params_sha256", "python", "device"):
            record[key] = str(value)
            continue
        try:
            record[key] = json.loads(value) if isinstance(value, str) else value
        except ValueError:
            record[key] = value
    return record


def write_sidecar(
    output: str | Path, record: Mapping[str, Any], started: datetime, finished: datetime
) -> Path:
    """Write ``{output}.prov.json``: the record, the output's checksum and the job's times."""
    output = Path(output)
    digest = content_digest(output)
    side = sidecar_path(output)
    payload = {
        "format": SIDECAR_FORMAT,
        "output": str(output),
        **digest.as_dict(),
        "fingerprint": stat_fingerprint(output),
        "provenance": dict(record),
        "job": {
            "started": started.isoformat(timespec="seconds"),
            "finished": finished.isoformat(timespec="seconds"),
            "host": socket.gethostname(),
        },
    }
    return write_text_atomic(side, json.dumps(payload, indent=1, sort_keys=True) + "\n")


def now() -> datetime:
    return datetime.now(UTC)


# --- reading provenance back -----------------------------------------------------------------


def _zarr_root_attrs(store: Path) -> dict[str, Any] | None:
    for name, key in (("zarr.json", "attributes"), (".zattrs", None)):
        meta = store / name
        if meta.is_file():
            data = json.loads(meta.read_text(encoding="utf-8"))
            return data.get(key, {}) if key else data
    return None


def _netcdf_attrs(path: Path) -> dict[str, Any]:
    import netCDF4

    with netCDF4.Dataset(path) as nc:
        return {name: nc.getncattr(name) for name in nc.ncattrs()}


def embedded_record(path: str | Path) -> dict[str, Any] | None:
    """The provenance an output carries in its own metadata, or None."""
    path = Path(path)
    if path.is_dir():
        attrs = _zarr_root_attrs(path)
        return attrs_to_record(attrs) if attrs is not None else None
    if path.suffix == ".nc":
        try:
            return attrs_to_record(_netcdf_attrs(path))
        except OSError:  # not readable as NetCDF: the sidecar (if any) still tells
            return None
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            return None
        nested = data.get("provenance") if isinstance(data, dict) else None
        if isinstance(nested, dict):
            return attrs_to_record(nested) if f"{ATTR_PREFIX}rule" in nested else nested
    return None


def find_record(path: str | Path) -> tuple[Path, dict[str, Any]] | None:
    """(the output that holds it, its provenance) for a file or any file inside an output.

    Looks at the file's own metadata first, then at the sidecar of the file or of the
    folder output it lies in.
    """
    path = Path(path)
    if path.exists():
        embedded = embedded_record(path)
        if embedded is not None:
            return path, embedded
    for candidate in (path, *path.parents):
        if not candidate.name:  # the file system root holds no output
            break
        record = read_sidecar(candidate)
        if record is not None:
            return candidate, record["provenance"]
        if candidate != path and candidate.suffix == ".zarr":
            embedded = embedded_record(candidate)
            if embedded is not None:
                return candidate, embedded
    return None
