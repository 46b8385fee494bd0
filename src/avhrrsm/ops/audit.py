"""Reproducibility audits of a run: its manifest, verification, lineage and byte-for-byte reruns.

- :func:`build_manifest` writes ``{results_dir}/{run}/MANIFEST.json`` at the end of a run: every
  output with its sha256, size, file count (and per-file checksums of non-Zarr folders), the
  rule and wildcards that made it, the checksum of its provenance sidecar, and the resolved
  config. Paths are relative to the run folder, so a moved or archived run still verifies.
- :func:`verify_run` recomputes every checksum from the bytes and lists what changed or went
  missing since the manifest.
- :func:`lineage` follows the provenance records from a file back to the raw inputs.
- :func:`rerun` re-executes one year's (or one tile's) jobs in a scratch folder with the
  recorded config and compares the bytes with the originals.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from avhrrsm import __version__
from avhrrsm.atomic import HOST, process_alive, write_text_atomic
from avhrrsm.config import config_hash, in_synthetic_world
from avhrrsm.hashing import (
    IGNORED_NAMES,
    content_digest,
    file_sha256,
    keeps_members,
    member_digests,
    raw_digest,
    stat_fingerprint,
)
from avhrrsm.io.paths import walk_files
from avhrrsm.ops.lost import MANIFEST_NAME
from avhrrsm.provenance import (
    SIDECAR_SUFFIX,
    find_record,
    git_state,
    now,
    read_sidecar,
    recorded_digest,
    sidecar_path,
)

LOGGER = logging.getLogger(__name__)
MANIFEST_FORMAT = "avhrrsm-manifest-1"
# the jobs `audit rerun` re-executes: a year's ...
YEAR_RULES = (
    "stack_year",
    "samples_year",
    "inference_tile",
    "inference_tile_cpu",
    "product_year",
)
# ... or, with a tile, that tile's inference only (on a GPU, or on CPU cores: the share of
# hpc.cpu_inference_share)
TILE_RULES = ("inference_tile", "inference_tile_cpu")


class AuditError(RuntimeError):
    """An audit that cannot be carried out (no manifest, a rerun that failed, ...)."""


# --- the manifest ----------------------------------------------------------------------------


def _relative(path: Path, run_dir: Path) -> str:
    try:
        return path.resolve().relative_to(run_dir.resolve()).as_posix()
    except ValueError as err:
        raise AuditError(f"{path}: output outside the run folder {run_dir}") from err


def build_manifest(
    outputs: Sequence[str | Path],
    config: Mapping[str, Any],
    run_dir: str | Path,
    out_path: str | Path,
) -> dict[str, Any]:
    """Write the manifest of a run's outputs (checksums from the producers' sidecars while the
    outputs are unchanged, else from the bytes) and return it."""
    run_dir = Path(run_dir)
    entries: dict[str, dict[str, Any]] = {}
    without_record = []
    for output in sorted({Path(p) for p in outputs}):
        if not output.exists():
            raise AuditError(f"{output}: output listed for the manifest does not exist")
        sidecar = read_sidecar(output)
        entry: dict[str, Any] = {
            "kind": "folder" if output.is_dir() else "file",
            **recorded_digest(output).as_dict(),
        }
        if sidecar is None:
            without_record.append(str(output))
        else:
            entry["rule"] = sidecar["provenance"]["rule"]
            entry["wildcards"] = sidecar["provenance"].get("wildcards", {})
            entry["record"] = {
                "path": _relative(sidecar_path(output), run_dir),
                "sha256": file_sha256(sidecar_path(output)),
            }
        entries[_relative(output, run_dir)] = entry
    if without_record:
        LOGGER.warning(
            "%d outputs have no provenance sidecar (written outside the workflow?): %s",
            len(without_record),
            ", ".join(without_record),
        )
    commit, dirty = git_state()
    manifest = {
        "format": MANIFEST_FORMAT,
        "run": config.get("run"),
        "run_dir": str(run_dir),
        "created": now().isoformat(timespec="seconds"),
        "avhrrsm_version": __version__,
        "git_commit": commit,
        "git_dirty": dirty,
        "config_sha256": config_hash(config),
        "config": json.loads(json.dumps(dict(config), default=str)),
        "totals": {
            "outputs": len(entries),
            "files": sum(e["files"] for e in entries.values()),
            "bytes": sum(e["size"] for e in entries.values()),
        },
        "outputs_without_record": without_record,
        "outputs": entries,
    }
    out_path = write_text_atomic(out_path, json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    LOGGER.info(
        "manifest of %d outputs (%d files, %.1f MB) written to %s",
        len(entries),
        manifest["totals"]["files"],
        manifest["totals"]["bytes"] / 1e6,
        out_path,
    )
    return manifest


def find_manifest(run: str | Path) -> Path:
    """The manifest of a run given as its folder or as the manifest file itself."""
    run = Path(run)
    manifest = run if run.is_file() else run / MANIFEST_NAME
    if not manifest.is_file():
        raise AuditError(
            f"{manifest}: no manifest; it is written at the end of a complete run "
            "(run the workflow to its end, or give the run folder)"
        )
    return manifest


def load_manifest(run: str | Path) -> tuple[Path, dict[str, Any]]:
    path = find_manifest(run)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise AuditError(f"{path}: not a readable manifest ({err})") from err
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise AuditError(f"{path}: not an avhrrsm manifest (format {MANIFEST_FORMAT} expected)")
    return path, manifest


# --- verify ----------------------------------------------------------------------------------


@dataclass
class Problem:
    path: str
    what: str

    def __str__(self) -> str:
        return f"{self.what}: {self.path}"


@dataclass
class VerifyReport:
    manifest: Path
    checked: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _member_problems(
    path: str, actual: Mapping[str, str], expected: Mapping[str, str]
) -> Iterator[Problem]:
    for name in sorted(set(expected) | set(actual)):
        if name not in actual:
            yield Problem(f"{path}/{name}", "missing")
        elif name not in expected:
            yield Problem(f"{path}/{name}", "not in the manifest")
        elif actual[name] != expected[name]:
            yield Problem(f"{path}/{name}", "changed")


def verify_run(run: str | Path) -> VerifyReport:
    """Recompute the checksum of every output (and provenance record) of a run's manifest."""
    manifest_path, manifest = load_manifest(run)
    run_dir = manifest_path.parent
    report = VerifyReport(manifest_path)
    for rel, entry in sorted(manifest["outputs"].items()):
        path = run_dir / rel
        report.checked += 1
        if not path.exists():
            report.problems.append(Problem(rel, "missing"))
            continue
        try:
            digest = content_digest(path)  # every byte read once
        except OSError as err:  # a file gone between listing and reading it
            report.problems.append(
                Problem(
                    rel,
                    f"changed while being read ({type(err).__name__}: {err.filename}): a job "
                    "may be replacing it; run verify again when the workflow has finished",
                )
            )
            continue
        if digest.members is not None and entry.get("members") is not None:
            found = list(_member_problems(rel, digest.members, entry["members"]))
            if found:
                report.problems.extend(found)
                continue
        if digest.sha256 != entry["sha256"]:
            report.problems.append(Problem(rel, "changed"))
        record = entry.get("record")
        if record:
            record_path = run_dir / record["path"]
            if not record_path.is_file():
                report.problems.append(Problem(record["path"], "provenance record missing"))
            elif file_sha256(record_path) != record["sha256"]:
                report.problems.append(
                    Problem(record["path"], _record_change(record_path, digest, manifest))
                )
    return report


MANIFEST_BEHIND = (
    "provenance record newer than the manifest (the output was made again, with the same "
    "bytes, after the manifest was written, e.g. by --forcerun ... --until ...): the manifest "
    "is behind; refresh it with `snakemake --forcerun manifest` (or run the workflow to its end)"
)


def _record_change(record_path: Path, digest: Any, manifest: Mapping[str, Any]) -> str:
    """What a changed provenance record means: a later job that remade the output with the same
    bytes (the manifest is behind), or an edit."""
    sidecar = read_sidecar(record_path.with_name(record_path.name[: -len(".prov.json")]))
    try:
        finished = sidecar["job"]["finished"] if sidecar else ""
        later = finished > manifest.get("created", "")
    except (KeyError, TypeError):
        later = False
    if sidecar and sidecar.get("sha256") == digest.sha256 and later:
        return MANIFEST_BEHIND
    return "provenance record changed"


# --- outputs made by other code ---------------------------------------------------------------


def outputs_made_by_other_code(
    run_dir: str | Path, versions: Mapping[str, str]
) -> dict[str, list[str]]:
    """Rule -> outputs under ``run_dir`` whose provenance names another code version of the
    rule than ``versions`` (the checkout's, see :mod:`avhrrsm.codeversion`) or none at all."""
    found: dict[str, list[str]] = {}
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return found
    for side in walk_files(run_dir):
        if not side.name.endswith(SIDECAR_SUFFIX):
            continue
        try:
            record = json.loads(side.read_text(encoding="utf-8"))["provenance"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        rule = record.get("rule")
        if rule in versions and record.get("params", {}).get("code") != versions[rule]:
            found.setdefault(rule, []).append(str(side)[: -len(SIDECAR_SUFFIX)])
    return found


# --- lineage ---------------------------------------------------------------------------------


@dataclass
class LineageNode:
    """One file of a lineage: what its consumer recorded, and what made it."""

    path: str
    status: str
    recorded_sha256: str | None = None
    record: dict[str, Any] | None = None
    inputs: list[LineageNode] = field(default_factory=list)
    repeated: bool = False

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "status": self.status}
        if self.recorded_sha256:
            out["sha256"] = self.recorded_sha256
        if self.record is not None:
            keys = ("rule", "wildcards", "params_sha256", "version", "git_commit", "git_dirty")
            out.update({key: self.record.get(key) for key in (*keys, "device", "seed")})
        if self.repeated:
            out["repeated"] = True
        if self.inputs:
            out["inputs"] = [node.as_dict() for node in self.inputs]
        return out


def workdir_of(path: Path) -> Path:
    """The working directory the workflow ran in, from the nearest sidecar's recorded path."""
    path = path.absolute()
    for candidate in (path, *path.parents):
        record = read_sidecar(candidate)
        if record is not None:
            recorded = Path(record["output"])
            if recorded.is_absolute():
                return Path("/")
            return candidate.parents[len(recorded.parts) - 1]
    return Path.cwd()


# What an input's status says was checked.
CURRENT_BY_STAT = "current (size, files and mtime as recorded; bytes not re-hashed)"
CURRENT_BY_BYTES = "current (bytes re-hashed)"


def _input_status(path: Path, recorded: str, check_bytes: bool) -> tuple[str, dict | None]:
    """How an input on disk compares with the checksum its consumer recorded, saying what was
    checked: without ``check_bytes`` a workflow output is compared by its producer's sidecar and
    its size, file count and newest mtime (a change that keeps all three is not seen), and
    re-hashed (through the hash cache) where those differ; with it, every input's bytes are
    read and hashed again."""
    if not path.exists():
        return "missing", None
    found = find_record(path)
    if found is None or found[0] != path:
        if not check_bytes:
            return "raw input (not re-hashed)", None
        same = content_digest(path).sha256 == recorded
        return ("raw input, unchanged" if same else "raw input, CHANGED since"), None
    sidecar = read_sidecar(path)
    if sidecar is not None and sidecar["sha256"] != recorded:
        return "REBUILT since", found[1]
    if not check_bytes and sidecar is not None:
        if sidecar.get("fingerprint") == stat_fingerprint(path):
            return CURRENT_BY_STAT, found[1]
    # re-hashed: asked for, or size, files or mtime differ from the record (Snakemake touches
    # file outputs after their job; the hash cache keeps that to one read)
    actual = content_digest(path) if check_bytes else raw_digest(path)
    same = actual.sha256 == recorded
    return (CURRENT_BY_BYTES if same else "CHANGED since (bytes differ)"), found[1]


def lineage(file: str | Path, check_bytes: bool = False) -> LineageNode:
    """The chain from ``file`` back to the raw inputs, from provenance records alone.

    Each input's status says whether the file on disk is still the one recorded by its
    consumer ('current', with what was checked), was remade ('REBUILT since') or changed since,
    or is gone; inputs are re-hashed only with ``check_bytes``.
    """
    file = Path(file)
    if not file.exists():
        raise AuditError(f"{file}: no such file or folder")
    found = find_record(file)
    if found is None:
        raise AuditError(
            f"{file}: no provenance (neither in its metadata nor in a .prov.json sidecar); "
            "it was not written by the workflow"
        )
    holder, record = found
    workdir = workdir_of(holder)
    seen: set[str] = set()

    def expand(node: LineageNode) -> LineageNode:
        if node.record is None:
            return node
        for recorded_path, sha256 in sorted(node.record.get("inputs", {}).items()):
            path = Path(recorded_path)
            absolute = path if path.is_absolute() else workdir / path
            status, record = _input_status(absolute, sha256, check_bytes)
            child = LineageNode(recorded_path, status, sha256, record)
            if record is not None and recorded_path in seen:
                child.repeated = True
            elif record is not None:
                seen.add(recorded_path)
                expand(child)
            node.inputs.append(child)
        return node

    top = LineageNode(str(file), "this file", None, record)
    if holder != file:
        top.status = f"inside {holder}"
    return expand(top)


def lineage_problems(node: LineageNode) -> list[LineageNode]:
    """The inputs of a lineage that are not what their consumers recorded: changed, remade
    since or gone (``audit lineage`` exits 1 on any)."""
    found = [
        child
        for child in node.inputs
        if "CHANGED" in child.status or child.status in ("missing", "REBUILT since")
    ]
    for child in node.inputs:
        if not child.repeated:
            found += lineage_problems(child)
    return found


@dataclass
class RawInputChange:
    path: str
    what: str

    def __str__(self) -> str:
        return f"{self.what}: {self.path}"


def raw_input_changes(run: str | Path) -> tuple[list[RawInputChange], int]:
    """Every raw input a run's jobs recorded, re-hashed against the records (the changes, and
    the number of raw inputs checked).

    A raw input is an input of a job that is not itself an output of the run; the run's outputs
    are :func:`verify_run`'s. This sees what size and mtime cannot: a file replaced by a copy
    that keeps its mtime (``cp -p``, ``rsync -a``, untar), which Snakemake does not rerun for.
    """
    manifest_path, manifest = load_manifest(run)
    run_dir = manifest_path.parent
    recorded: dict[Path, set[str]] = {}
    for relative in sorted(manifest["outputs"]):
        output = run_dir / relative
        sidecar = read_sidecar(output)
        if sidecar is None:
            continue
        workdir = workdir_of(output)
        for recorded_path, sha256 in sidecar["provenance"].get("inputs", {}).items():
            path = Path(recorded_path)
            absolute = path if path.is_absolute() else workdir / path
            found = find_record(absolute) if absolute.exists() else None
            if found is not None and found[0] == absolute:
                continue  # an output of the workflow: audit verify checks it
            recorded.setdefault(absolute, set()).add(sha256)
    changes = []
    for path, digests in sorted(recorded.items()):
        if not path.exists():
            changes.append(RawInputChange(str(path), "missing"))
        elif content_digest(path).sha256 not in digests:
            changes.append(RawInputChange(str(path), "CHANGED since the run (bytes differ)"))
        elif len(digests) > 1:
            changes.append(
                RawInputChange(str(path), "CHANGED during the run (its jobs recorded other bytes)")
            )
    return changes, len(recorded)


def format_lineage(node: LineageNode, indent: str = "") -> Iterator[str]:
    record = node.record
    sha = f" sha256 {node.recorded_sha256[:12]}" if node.recorded_sha256 else ""
    yield f"{indent}{node.path}  [{node.status}]{sha}"
    if record is None:
        return
    if node.repeated:
        yield f"{indent}    (made by rule {record.get('rule')}; lineage shown above)"
        return
    wildcards = ", ".join(f"{k}={v}" for k, v in record.get("wildcards", {}).items())
    dirty = " (uncommitted changes)" if record.get("git_dirty") in (True, "true") else ""
    yield (
        f"{indent}    rule {record.get('rule')}({wildcards}) params sha256 "
        f"{str(record.get('params_sha256'))[:12]}; avhrrsm {record.get('version')} "
        f"@ {str(record.get('git_commit'))[:12]}{dirty}"
    )
    seed = record.get("seed")
    seed_text = "no random draws" if seed in (None, "null") else f"seed {seed}"
    yield f"{indent}    device {record.get('device')}, {seed_text}"
    for child in node.inputs:
        yield from format_lineage(child, indent + "  ")


# --- rerun -----------------------------------------------------------------------------------


@dataclass
class RerunResult:
    path: str
    rule: str
    identical: bool
    difference: str = ""


@dataclass
class RerunReport:
    year: int
    tile: str | None
    scratch: Path
    results: list[RerunResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return all(r.identical for r in self.results)


def rerun_selection(
    manifest: Mapping[str, Any], year: int, tile: str | None
) -> dict[str, dict[str, Any]]:
    """The manifest entries that a rerun of ``year`` (and ``tile``) re-creates."""
    rules = TILE_RULES if tile else YEAR_RULES
    selected = {}
    for rel, entry in manifest["outputs"].items():
        wildcards = entry.get("wildcards", {})
        if entry.get("rule") not in rules or wildcards.get("year") != str(year):
            continue
        if tile and wildcards.get("tile") != tile:
            continue
        selected[rel] = entry
    if not selected:
        what = f"tile {tile} of {year}" if tile else str(year)
        raise AuditError(f"the manifest lists no outputs of {what} (rules {', '.join(rules)})")
    return selected


def _link_tree(source: Path, target: Path) -> None:
    """Hard-link (or copy where links are impossible) a file or folder to ``target``."""
    if source.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, target)
        except OSError:
            shutil.copy2(source, target)
        return
    for root, _, files in os.walk(source, followlinks=True):
        for name in files:
            if name in IGNORED_NAMES:
                continue
            member = Path(root, name)
            _link_tree(member, target / member.relative_to(source))
    target.mkdir(parents=True, exist_ok=True)


def _first_difference(original: Path, rerun: Path) -> str:
    """Where two outputs differ: the first variable (sorted) and its max abs difference."""
    if original.is_dir() and keeps_members(original):
        old, new = member_digests(original), member_digests(rerun)
        for name in sorted(set(old) | set(new)):
            if old.get(name) != new.get(name):
                inner = original / name
                if name not in old or name not in new:
                    return f"file {name} only in the {'rerun' if name in new else 'original'}"
                return f"{name}: {_first_difference(inner, rerun / name)}"
        return "no file differs"
    if original.suffix in (".zarr", ".nc"):
        return _dataset_difference(original, rerun)
    return f"bytes differ (sha256 {file_sha256(original)[:12]} vs {file_sha256(rerun)[:12]})"


def _dataset_difference(original: Path, rerun: Path) -> str:
    import numpy as np
    import xarray as xr

    engine = "zarr" if original.suffix == ".zarr" else "netcdf4"
    kwargs = {"decode_times": False}  # physical values: a difference reads in the data's units
    with (
        xr.open_dataset(original, engine=engine, **kwargs) as old,
        xr.open_dataset(rerun, engine=engine, **kwargs) as new,
    ):
        names = sorted(set(old.variables) | set(new.variables))
        for name in names:
            if name not in old.variables or name not in new.variables:
                return f"variable {name} only in the {'rerun' if name in new else 'original'}"
            a, b = old[name].values, new[name].values
            if a.shape != b.shape:
                return f"variable {name}: shape {a.shape} vs {b.shape}"
            if np.issubdtype(a.dtype, np.number):
                differs = ~(
                    (a == b) | (np.isnan(a) & np.isnan(b)) if a.dtype.kind == "f" else a == b
                )
                if differs.any():
                    diff = np.abs(a.astype("float64") - b.astype("float64"))
                    units = old[name].attrs.get("units", "")
                    return (
                        f"variable {name}: {int(differs.sum())} values differ, "
                        f"max abs difference {float(np.nanmax(diff[differs])):.6g} {units}"
                    ).rstrip()
            elif not np.array_equal(a, b):
                return f"variable {name}: values differ"
            if not _attrs_equal(old[name].attrs, new[name].attrs):
                return f"variable {name}: attributes differ"
        for key in sorted(set(old.attrs) | set(new.attrs)):
            if not _attrs_equal({0: old.attrs.get(key)}, {0: new.attrs.get(key)}):
                return (
                    f"global attribute {key}: {str(old.attrs.get(key))[:80]!r} vs "
                    f"{str(new.attrs.get(key))[:80]!r}"
                )
    return "same values and attributes; the encoding (chunks, compression) differs"


def _attrs_equal(first: Mapping[Any, Any], second: Mapping[Any, Any]) -> bool:
    import numpy as np

    if set(first) != set(second):
        return False
    return all(np.array_equal(np.asarray(first[k]), np.asarray(second[k])) for k in first)


def _relative_roots(config: Mapping[str, Any]) -> set[str]:
    """First path components of the config's relative raw-input paths (e.g. 'data')."""
    roots = set()
    for pattern in config.get("inputs", {}).values():
        pattern = str(pattern)
        if in_synthetic_world(pattern) or Path(pattern).is_absolute():
            continue
        roots.add(Path(pattern).parts[0])
    return roots


def rerun(
    run: str | Path,
    snakefile: str | Path,
    year: int,
    tile: str | None = None,
    scratch: str | Path | None = None,
    keep: bool = False,
    snakemake_args: Sequence[str] = (),
) -> RerunReport:
    """Re-execute a year's (or a tile's) jobs in a scratch folder and compare the bytes.

    The scratch folder is a working directory of its own holding the recorded config and the
    run's other outputs as hard links (copies across file systems); only the selected jobs'
    rules are allowed to run, so nothing upstream (models, sample sets) is made again.
    ``snakefile`` is the workflow that reruns them (the checkout's; the warnings say when its
    commit is not the run's).
    """
    if not Path(snakefile).is_file():
        raise AuditError(f"{snakefile}: no such Snakefile to rerun the jobs with")
    manifest_path, manifest = load_manifest(run)
    run_dir = manifest_path.parent
    config = manifest["config"]
    recorded_run_dir = Path(manifest["run_dir"])
    if recorded_run_dir.is_absolute():
        raise AuditError(
            f"{manifest_path}: results_dir is an absolute path; a scratch rerun needs the run "
            "under a relative results_dir to write the same recorded paths"
        )
    workdir = run_dir.absolute().parents[len(recorded_run_dir.parts) - 1]
    selected = rerun_selection(manifest, year, tile)
    rules = sorted({entry["rule"] for entry in selected.values()})
    scratch_dir = _make_scratch(scratch, run_dir, f".audit-{config.get('run')}-{year}-")
    report = RerunReport(year, tile, scratch_dir)
    report.warnings += _remove_interrupted_scratch(run_dir.parent, scratch_dir)
    commit, dirty = git_state()
    if commit != manifest.get("git_commit") or dirty:
        report.warnings.append(
            f"the code is at {commit[:12]}{' with uncommitted changes' if dirty else ''}, the run "
            f"was made at {str(manifest.get('git_commit'))[:12]}: differences may come from code"
        )
    previous_sigterm = _on_sigterm(_interrupt)
    try:
        scratch_run = scratch_dir / recorded_run_dir
        _fill_scratch(run_dir, workdir, scratch_dir, scratch_run, manifest, selected)
        config_file = scratch_dir / "config.yaml"
        config_file.write_text(yaml.safe_dump(config, sort_keys=True), encoding="utf-8")
        command = [
            sys.executable, "-m", "snakemake", "--snakefile", str(Path(snakefile).resolve()),
            "--directory", str(scratch_dir), "--configfile", str(config_file),
            "--cores", str(_recorded_threads(run_dir, selected)), "--allowed-rules", *rules,
            *snakemake_args, "--", *(str(recorded_run_dir / rel) for rel in sorted(selected)),
        ]  # fmt: skip
        LOGGER.info("rerunning %s in %s: %s", ", ".join(rules), scratch_dir, " ".join(command))
        env = {**os.environ, "PYTHONHASHSEED": os.environ.get("PYTHONHASHSEED", "0")}
        stdout, stderr, returncode = _run_child(command, scratch_dir, env)
        (scratch_dir / "rerun.log").write_text(stdout + stderr, encoding="utf-8")
        if returncode != 0:
            keep = True
            raise AuditError(
                f"the rerun failed (log: {scratch_dir / 'rerun.log'}):\n{stderr[-3000:]}"
            )
        report.results += _compare_reruns(run_dir, scratch_run, selected)
    except KeyboardInterrupt:
        LOGGER.warning("rerun interrupted: removing its scratch folder %s", scratch_dir)
        raise
    finally:
        _on_sigterm(previous_sigterm)
        if keep:
            (scratch_dir / SCRATCH_KEPT).touch()
        else:
            shutil.rmtree(scratch_dir, ignore_errors=True)
    return report


def _make_scratch(scratch: str | Path | None, run_dir: Path, prefix: str) -> Path:
    """The rerun's scratch folder (``scratch``, or a new one beside the run), owned by this
    process; an error that says where it could not be made."""
    try:
        scratch_dir = Path(
            scratch or tempfile.mkdtemp(prefix=prefix, dir=run_dir.parent)
        ).absolute()
        scratch_dir.mkdir(parents=True, exist_ok=True)
        _write_owner(scratch_dir)
    except OSError as err:
        where = Path(scratch) if scratch else run_dir.parent
        raise AuditError(
            f"{where}: cannot make the rerun's scratch folder there ({err.strerror or err}); "
            "give --scratch DIR on a file system you can write (the same one as the run keeps "
            "its outputs as hard links, another one copies them)"
        ) from err
    return scratch_dir


def _fill_scratch(
    run_dir: Path,
    workdir: Path,
    scratch_dir: Path,
    scratch_run: Path,
    manifest: Mapping[str, Any],
    selected: Mapping[str, Any],
) -> None:
    """Every output of the run but the selected ones, with its provenance record, linked
    into the scratch run; the config's relative input folders linked beside it."""
    for rel in manifest["outputs"]:
        if rel in selected:
            continue
        _link_tree(run_dir / rel, scratch_run / rel)
        side = sidecar_path(run_dir / rel)
        if side.is_file():
            _link_tree(side, sidecar_path(scratch_run / rel))
    for root in _relative_roots(manifest["config"]):
        if (workdir / root).exists() and not (scratch_dir / root).exists():
            (scratch_dir / root).symlink_to((workdir / root).resolve())


def _compare_reruns(
    run_dir: Path, scratch_run: Path, selected: Mapping[str, Any]
) -> list[RerunResult]:
    """Each selected output made again against the original: the same bytes, or the first
    difference."""
    results = []
    for rel, entry in sorted(selected.items()):
        original, again = run_dir / rel, scratch_run / rel
        if not original.exists():
            results.append(RerunResult(rel, entry["rule"], False, "original missing"))
            continue
        same = content_digest(original).sha256 == content_digest(again).sha256
        difference = "" if same else _first_difference(original, again)
        results.append(RerunResult(rel, entry["rule"], same, difference))
    return results


SCRATCH_OWNER = ".avhrrsm-rerun-owner"
SCRATCH_KEPT = ".avhrrsm-rerun-kept"


def _on_sigterm(handler: Any) -> Any:
    """Set the SIGTERM handler where this is the main thread; the previous one (or None)."""
    try:
        return signal.signal(signal.SIGTERM, handler) if handler is not None else None
    except ValueError:  # not the main thread: signals stay as they are
        return None


def _interrupt(signum: int, frame: Any) -> None:
    """SIGTERM (a cluster's time limit, a kill): unwind like Ctrl-C, so the scratch goes."""
    raise KeyboardInterrupt(f"signal {signum}")


def _write_owner(scratch_dir: Path, child: int | None = None) -> None:
    """Who uses a scratch folder: this process and, once started, its Snakemake."""
    owner = {"host": HOST, "pid": os.getpid(), "children": [child] if child else []}
    (scratch_dir / SCRATCH_OWNER).write_text(json.dumps(owner), encoding="utf-8")


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: the child gets SIGTERM when the rerun's process dies, even by SIGKILL (no
    Snakemake left writing into a scratch folder nobody owns)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _run_child(command: list[str], scratch_dir: Path, env: dict[str, str]) -> tuple[str, str, int]:
    """Snakemake in the scratch folder, recorded as its user; stopped (SIGTERM, then SIGKILL)
    when the rerun is interrupted, and bound to die with this process."""
    child = subprocess.Popen(
        command,
        cwd=scratch_dir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,  # noqa: PLW1509
    )
    _write_owner(scratch_dir, child.pid)
    try:
        stdout, stderr = child.communicate()
    except BaseException:
        child.terminate()
        try:
            child.wait(timeout=60)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        raise
    return stdout, stderr, child.returncode


def _remove_interrupted_scratch(folder: Path, current: Path) -> list[str]:
    """Scratch folders of earlier reruns beside the run that were killed before they could
    clean up (their process and its Snakemake are gone): removed, and said. Kept ones (--keep,
    failures) stay; one whose Snakemake still runs is left, and said."""
    said = []
    for candidate in sorted(folder.glob(".audit-*")):
        owner_file = candidate / SCRATCH_OWNER
        if candidate == current or not owner_file.is_file() or (candidate / SCRATCH_KEPT).exists():
            continue
        try:
            owner = json.loads(owner_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if owner.get("host") != HOST or process_alive(int(owner.get("pid", -1))):
            continue
        running = [pid for pid in owner.get("children", []) if process_alive(int(pid))]
        if running:
            said.append(
                f"left {candidate}: the Snakemake of an interrupted earlier rerun (pid "
                f"{running[0]}) still runs in it"
            )
            LOGGER.warning("%s", said[-1])
            continue
        shutil.rmtree(candidate, ignore_errors=True)
        said.append(f"removed {candidate}, the scratch folder of an interrupted earlier rerun")
        LOGGER.warning("%s", said[-1])
    return said


def _recorded_threads(run_dir: Path, selected: Mapping[str, Any]) -> int:
    """The most threads any selected job used (thread counts change float reduction order)."""
    threads = [1]
    for rel in selected:
        record = read_sidecar(run_dir / rel)
        if record is not None and record["provenance"].get("threads"):
            threads.append(int(record["provenance"]["threads"]))
    return max(threads)


# --- the provenance page of the report -------------------------------------------------------


def write_provenance_page(
    manifest: Mapping[str, Any], run_dir: str | Path, out_path: str | Path
) -> None:
    """A readable page of every output's provenance (for ``snakemake --report``): the run's
    summary, then one collapsible section per rule, each output with its inputs given by their
    path relative to the run folder (raw inputs as recorded), and the resolved configuration."""
    import html

    run_dir = Path(run_dir).resolve()
    by_rule: dict[str, list[str]] = {}
    sizes: dict[str, float] = {}
    commits: dict[str, set[str]] = {}
    libraries: dict[str, str] = {}
    for rel, entry in sorted(manifest["outputs"].items()):
        sidecar = read_sidecar(run_dir / rel)
        record = sidecar["provenance"] if sidecar else {}
        libraries = libraries or record.get("libraries", {})
        rule = str(record.get("rule") or entry.get("rule") or "?")
        wildcards = ", ".join(f"{k}={v}" for k, v in record.get("wildcards", {}).items())
        inputs = "<br>".join(
            f"{html.escape(_shown_path(path, run_dir))} <code>{sha[:12]}</code>"
            for path, sha in sorted(record.get("inputs", {}).items())
        )
        cells = [
            html.escape(rel),
            html.escape(wildcards),
            f"<code>{entry['sha256'][:16]}</code>",
            f"{entry['size'] / 1e6:.2f} MB, {entry['files']} file(s)",
            f"<code>{str(record.get('params_sha256', ''))[:12]}</code>",
            html.escape(str(record.get("device", ""))),
            html.escape(str(record.get("seed"))),
            html.escape(sidecar["job"]["finished"] if sidecar else ""),
            inputs,
        ]
        by_rule.setdefault(rule, []).append(
            "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"
        )
        sizes[rule] = sizes.get(rule, 0.0) + entry["size"]
        commit = str(record.get("git_commit", ""))[:12] + (
            " dirty" if record.get("git_dirty") else ""
        )
        commits.setdefault(rule, set()).add(commit)
    header = "".join(
        f"<th>{h}</th>"
        for h in (
            "output", "wildcards", "sha256", "size", "params sha256", "device", "seed",
            "finished", "inputs (path relative to the run; sha256)",
        )
    )  # fmt: skip
    sections = [
        f"<details><summary><strong>{html.escape(rule)}</strong>: {len(rows)} output(s), "
        f"{sizes[rule] / 1e6:.1f} MB, commit {html.escape(', '.join(sorted(commits[rule])))}"
        f"</summary><table><tr>{header}</tr>{''.join(rows)}</table></details>"
        for rule, rows in by_rule.items()
    ]
    summary = {
        "run": manifest.get("run"),
        "avhrrsm": manifest.get("avhrrsm_version"),
        "git commit": f"{manifest.get('git_commit')}"
        f"{' (uncommitted changes)' if manifest.get('git_dirty') else ''}",
        "config sha256": manifest.get("config_sha256"),
        "manifest written": manifest.get("created"),
        "outputs": f"{manifest['totals']['outputs']} ({manifest['totals']['files']} files, "
        f"{manifest['totals']['bytes'] / 1e6:.1f} MB)",
        "libraries": ", ".join(f"{k} {v}" for k, v in sorted(libraries.items())),
    }
    page = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>Provenance of run {html.escape(str(manifest.get('run')))}</title>",
        "<style>body{font-family:sans-serif;max-width:1300px;margin:auto;padding:0 12px}"
        "table{border-collapse:collapse;font-size:12px;max-width:100%;margin:6px 0 12px}"
        "td,th{border:1px solid #ccc;padding:2px 4px;vertical-align:top;overflow-wrap:anywhere}"
        "th{background:#eef2f6;text-align:left}details{margin:4px 0}summary{cursor:pointer}"
        "pre{white-space:pre-wrap;overflow-wrap:anywhere}</style></head><body>",
        f"<h1>Provenance of run {html.escape(str(manifest.get('run')))}</h1><dl>",
        *(f"<dt>{html.escape(k)}</dt><dd>{html.escape(str(v))}</dd>" for k, v in summary.items()),
        "</dl><p>Check the run with <code>avhrrsm audit verify</code>; trace a file with "
        "<code>avhrrsm audit lineage FILE</code>; rerun a year with "
        "<code>avhrrsm audit rerun --year Y</code>.</p>",
        f"<h2>Outputs by rule ({len(by_rule)} rules)</h2>",
        *sections,
        "<h2>Resolved configuration</h2><pre>",
        html.escape(json.dumps(manifest.get("config", {}), indent=2, sort_keys=True)),
        "</pre></body></html>",
    ]
    write_text_atomic(out_path, "\n".join(page) + "\n")


def _shown_path(path: str, run_dir: Path) -> str:
    """``path`` relative to the (resolved) run folder where it lies inside it, else as recorded."""
    try:
        return str(Path(path).resolve().relative_to(run_dir))
    except ValueError:
        return path
