"""Provenance records, the run manifest and the `avhrrsm audit` commands."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import xarray as xr
from conftest import run_tiny_workflow

from avhrrsm.hashing import content_digest
from avhrrsm.jobs import run_job
from avhrrsm.ops.audit import (
    CURRENT_BY_BYTES,
    CURRENT_BY_STAT,
    build_manifest,
    format_lineage,
    lineage,
    raw_input_changes,
    rerun_selection,
    verify_run,
)
from avhrrsm.provenance import (
    CHECKED_BYTES,
    CHECKED_SIDECAR,
    attrs_to_record,
    embedded_record,
    provenance_record,
    read_sidecar,
    record_to_attrs,
    recorded_digest,
    sidecar_path,
)

AVHRRSM = [sys.executable, "-m", "avhrrsm.cli"]


def _audit(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*AVHRRSM, "audit", *args], cwd=cwd, capture_output=True, text=True, timeout=600
    )


# --- checksums and records on tiny files ------------------------------------------------------


def test_file_digest_is_plain_sha256(tmp_path):
    path = tmp_path / "a.csv"
    path.write_bytes(b"x,y\n1,2\n")
    digest = content_digest(path)
    assert digest.sha256 == hashlib.sha256(b"x,y\n1,2\n").hexdigest()
    assert (digest.size, digest.files, digest.members) == (8, 1, None)


def test_folder_digest_follows_content_not_snakemake_markers(tmp_path):
    folder = tmp_path / "product"
    folder.mkdir()
    (folder / "a.nc").write_bytes(b"one")
    (folder / "b.nc").write_bytes(b"two")
    first = content_digest(folder)
    assert first.members == {
        "a.nc": hashlib.sha256(b"one").hexdigest(),
        "b.nc": hashlib.sha256(b"two").hexdigest(),
    }
    (folder / ".snakemake_timestamp").write_bytes(b"")
    assert content_digest(folder).sha256 == first.sha256
    (folder / "b.nc").write_bytes(b"TWO")
    assert content_digest(folder).sha256 != first.sha256
    store = tmp_path / "stack.zarr"
    shutil.copytree(folder, store)
    assert content_digest(store).members is None  # Zarr chunks are not listed one by one


def test_recorded_digest_is_reused_only_while_the_output_is_unchanged(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"weights")
    snakemake = _fake_job(tmp_path, outputs=[path], inputs={})
    with run_job(snakemake):
        pass
    record = read_sidecar(path)
    assert record["sha256"] == hashlib.sha256(b"weights").hexdigest()
    # a sidecar whose fingerprint matches is trusted (that is what makes input hashing cheap)
    record["sha256"] = "f" * 64
    sidecar_path(path).write_text(json.dumps(record))
    assert recorded_digest(path).sha256 == "f" * 64
    # ... and ignored as soon as the file is rewritten
    path.write_bytes(b"other weights")
    assert recorded_digest(path).sha256 == hashlib.sha256(b"other weights").hexdigest()


def test_attributes_round_trip_and_hold_no_clock_or_host(tmp_path):
    raw = tmp_path / "raw.nc"
    raw.write_bytes(b"raw bytes")
    attrs = record_to_attrs(
        provenance_record(
            "stack_year",
            {"tile_deg": 10, "region": {"lon_min": 0}},
            {"world": str(raw)},
            wildcards={"year": 2001},
            seed=7,
            device="cpu (test)",
            threads=2,
        )
    )
    assert all(isinstance(v, str) for v in attrs.values())
    record = attrs_to_record(attrs)
    assert record["rule"] == "stack_year" and record["wildcards"] == {"year": "2001"}
    assert record["inputs"] == {str(raw): hashlib.sha256(b"raw bytes").hexdigest()}
    assert record["seed"] == 7 and record["threads"] == 2 and record["device"] == "cpu (test)"
    assert record["params"] == {"region": {"lon_min": 0}, "tile_deg": 10}
    assert len(record["params_sha256"]) == 64 and record["git_dirty"] in (True, False)
    text = json.dumps(attrs)
    assert "started" not in text and os.uname().nodename not in text
    # the same call gives the same attributes (what makes rerun bytes identical)
    again = record_to_attrs(
        provenance_record(
            "stack_year",
            {"region": {"lon_min": 0}, "tile_deg": 10},
            {"world": str(raw)},
            wildcards={"year": 2001},
            seed=7,
            device="cpu (test)",
            threads=2,
        )
    )
    assert again == attrs


class _Named(dict):
    """What Snakemake's Namedlist offers the entry points: items(), iteration over values."""

    def __iter__(self):
        return iter(self.values())

    def __getattr__(self, name):
        return self[name]


def _fake_job(workdir: Path, outputs, inputs, rule="fake_rule", params=None, wildcards=None):
    return SimpleNamespace(
        rule=rule,
        input=_Named(inputs),
        output=_Named({f"out{i}": str(p) for i, p in enumerate(outputs)}),
        params=_Named(params or {}),
        wildcards=_Named(wildcards or {}),
        log=[str(workdir / "logs" / f"{rule}.log")],
        threads=1,
    )


def test_failed_job_writes_no_sidecar_and_removes_a_stale_one(tmp_path):
    out = tmp_path / "out.csv"
    out.write_text("old")
    sidecar_path(out).write_text("{}")
    job = _fake_job(tmp_path, outputs=[out], inputs={})
    with pytest.raises(RuntimeError), run_job(job):
        raise RuntimeError("the science failed")
    assert not sidecar_path(out).exists()


# --- a small chain of jobs: manifest, verify, lineage -----------------------------------------


@pytest.fixture
def chain(tmp_path, monkeypatch):
    """raw input -> stack (folder) -> metrics.csv, made by run_job in a workdir of its own."""
    monkeypatch.chdir(tmp_path)
    raw = Path("data/raw.txt")
    raw.parent.mkdir()
    raw.write_text("raw observations")
    run = Path("results/demo")
    stack = run / "stacks" / "2001"
    with run_job(
        _fake_job(tmp_path, [stack], {"raw": str(raw)}, "stack_year", {"k": 1}, {"year": 2001})
    ) as job:
        stack.mkdir(parents=True)
        (stack / "day1.csv").write_text("day one " + job.attrs["avhrrsm_rule"])
        (stack / "day2.csv").write_text("day two")
    metrics = run / "comparison" / "metrics.csv"
    with run_job(_fake_job(tmp_path, [metrics], {"stack": str(stack)}, "compare_models")):
        metrics.parent.mkdir(parents=True)
        metrics.write_text("model,rmse\natlstm,0.011\n")
    build_manifest([stack, metrics], {"run": "demo"}, run, run / "MANIFEST.json")
    return SimpleNamespace(raw=raw, run=run, stack=stack, metrics=metrics)


def test_manifest_lists_every_output_with_its_rule_and_record(chain):
    manifest = json.loads((chain.run / "MANIFEST.json").read_text())
    assert set(manifest["outputs"]) == {"stacks/2001", "comparison/metrics.csv"}
    stack = manifest["outputs"]["stacks/2001"]
    assert stack["rule"] == "stack_year" and stack["wildcards"] == {"year": "2001"}
    assert stack["files"] == 2 and set(stack["members"]) == {"day1.csv", "day2.csv"}
    assert stack["record"]["path"] == "stacks/2001.prov.json"
    assert manifest["config"] == {"run": "demo"} and manifest["totals"]["outputs"] == 2
    assert verify_run(chain.run).ok


def test_verify_reports_changed_missing_and_extra_files(chain):
    (chain.stack / "day2.csv").write_text("day two, edited")
    (chain.stack / "day3.csv").write_text("not made by the workflow")
    chain.metrics.unlink()
    problems = {str(p) for p in verify_run(chain.run).problems}
    assert problems == {
        "changed: stacks/2001/day2.csv",
        "not in the manifest: stacks/2001/day3.csv",
        "missing: comparison/metrics.csv",
    }


def test_verify_catches_an_edited_provenance_record(chain):
    side = sidecar_path(chain.metrics)
    side.write_text(side.read_text().replace("compare_models", "something_else"))
    problems = [str(p) for p in verify_run(chain.run).problems]
    assert problems == ["provenance record changed: comparison/metrics.csv.prov.json"]


def test_lineage_walks_back_to_the_raw_input(chain):
    tree = lineage(chain.metrics)
    assert tree.record["rule"] == "compare_models"
    (stack,) = tree.inputs
    assert stack.path == str(chain.stack) and stack.status == CURRENT_BY_STAT
    assert stack.record["rule"] == "stack_year"
    (raw,) = stack.inputs
    assert raw.path == str(chain.raw) and raw.record is None
    assert raw.status == "raw input (not re-hashed)"
    # a file inside a folder output gets the folder's provenance
    inside = lineage(chain.stack / "day1.csv")
    assert inside.record["rule"] == "stack_year" and "inside" in inside.status
    text = "\n".join(format_lineage(tree))
    assert "rule stack_year(year=2001)" in text
    assert "data/raw.txt  [raw input (not re-hashed)]" in text
    # the record says how each input's checksum was obtained
    assert tree.record["inputs_checked"] == {str(chain.stack): CHECKED_SIDECAR}
    assert stack.record["inputs_checked"] == {str(chain.raw): CHECKED_BYTES}


def test_lineage_flags_inputs_remade_or_edited_since(chain):
    chain.raw.write_text("raw observations, reprocessed")
    job = _fake_job(Path.cwd(), [chain.stack], {"raw": str(chain.raw)}, "stack_year", {"k": 1})
    with run_job(job):
        (chain.stack / "day2.csv").write_text("day two, remade")
    tree = lineage(chain.metrics, check_bytes=True)
    (stack,) = tree.inputs
    assert stack.status == "REBUILT since"
    assert stack.inputs[0].status == "raw input, unchanged"  # the new stack's record is current
    old_tree = lineage(chain.metrics)
    assert old_tree.inputs[0].status == "REBUILT since"


def test_lineage_says_what_it_checked_and_finds_a_chunk_changed_behind_its_mtime(chain):
    """A changed chunk whose size and mtime are kept passes the cheap check: the status says
    the bytes were not re-hashed, and --check-bytes finds the change."""
    day2 = chain.stack / "day2.csv"
    before = day2.stat()
    day2.write_text("day TWO")  # same size
    os.utime(day2, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert lineage(chain.metrics).inputs[0].status == CURRENT_BY_STAT
    assert lineage(chain.metrics, check_bytes=True).inputs[0].status == (
        "CHANGED since (bytes differ)"
    )
    day2.write_text("day two, longer now")
    assert lineage(chain.metrics).inputs[0].status == "CHANGED since (bytes differ)"


def test_a_raw_input_replaced_behind_its_mtime_is_found_by_a_byte_check(chain, capsys):
    """What ``cp -p``, ``rsync -a`` and untar do: other bytes, same size and mtime. Snakemake
    reruns nothing; ``raw_input_changes`` (``inputs check --check-bytes``) finds it, and
    ``audit lineage --check-bytes`` exits 1 on it."""
    from avhrrsm.cli import main

    assert raw_input_changes(chain.run) == ([], 1)
    assert main(["audit", "lineage", str(chain.metrics), "--check-bytes"]) == 0
    before = chain.raw.stat()
    chain.raw.write_text("RAW observations")  # same size
    os.utime(chain.raw, ns=(before.st_atime_ns, before.st_mtime_ns))
    changes, checked = raw_input_changes(chain.run)
    assert checked == 1 and [str(c) for c in changes] == [
        f"CHANGED since the run (bytes differ): {Path.cwd() / chain.raw}"
    ]
    capsys.readouterr()
    assert main(["audit", "lineage", str(chain.metrics)]) == 0  # not re-hashed: not seen
    assert main(["audit", "lineage", str(chain.metrics), "--check-bytes"]) == 1
    err = capsys.readouterr().err
    assert f"1 input(s) not as recorded: {chain.raw} [raw input, CHANGED since]" in err
    chain.raw.unlink()
    assert [c.what for c in raw_input_changes(chain.run)[0]] == ["missing"]


def test_verify_says_the_manifest_is_behind_a_remade_output_with_the_same_bytes(chain):
    """After `--forcerun ... --until ...` an output is made again, byte for byte, but the
    manifest rule did not run: verify says the manifest is behind and how to refresh it."""
    manifest_file = chain.run / "MANIFEST.json"
    manifest = json.loads(manifest_file.read_text())
    manifest["created"] = "2000-01-01T00:00:00+00:00"  # written before the job below
    manifest_file.write_text(json.dumps(manifest))
    with run_job(
        _fake_job(Path.cwd(), [chain.metrics], {"stack": str(chain.stack)}, "compare_models")
    ):
        chain.metrics.write_text("model,rmse\natlstm,0.011\n")  # the same bytes
    [problem] = verify_run(chain.run).problems
    assert problem.path == "comparison/metrics.csv.prov.json"
    assert "the manifest is behind" in problem.what and "--forcerun manifest" in problem.what


def test_verify_names_an_output_that_changes_while_it_is_read(chain, monkeypatch):
    import avhrrsm.ops.audit as audit

    def vanishing(path):
        raise FileNotFoundError(2, "No such file or directory", str(Path(path) / "day2.csv"))

    monkeypatch.setattr(audit, "content_digest", vanishing)
    problems = [str(p) for p in verify_run(chain.run).problems]
    assert problems[0].startswith("changed while being read (FileNotFoundError: ")
    assert "run verify again when the workflow has finished" in problems[0]


def test_a_rerun_whose_scratch_cannot_be_made_says_to_give_scratch(chain, monkeypatch):
    import tempfile

    from avhrrsm.ops.audit import AuditError, rerun

    def read_only(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(chain.run.parent))

    monkeypatch.setattr(tempfile, "mkdtemp", read_only)
    snakefile = Path.cwd() / "Snakefile"
    snakefile.write_text("")
    with pytest.raises(AuditError, match="give --scratch DIR") as info:
        rerun(chain.run, snakefile, year=2001)
    assert str(chain.run.parent) in str(info.value) and "Permission denied" in str(info.value)


def test_lineage_of_a_file_without_provenance_is_a_clear_error(tmp_path):
    stray = tmp_path / "notes.txt"
    stray.write_text("hand made")
    result = _audit("lineage", str(stray))
    assert result.returncode == 2
    assert "no provenance" in result.stderr and str(stray) in result.stderr


def test_verify_without_a_manifest_is_a_clear_error(tmp_path):
    result = _audit("verify", str(tmp_path))
    assert result.returncode == 2
    assert "MANIFEST.json: no manifest" in result.stderr


def test_rerun_selection_by_year_and_tile():
    manifest = {
        "outputs": {
            "stacks/2001.zarr": {"rule": "stack_year", "wildcards": {"year": "2001"}},
            "stacks/2002.zarr": {"rule": "stack_year", "wildcards": {"year": "2002"}},
            "inference/2001/h1v1.zarr": {
                "rule": "inference_tile",
                "wildcards": {"year": "2001", "tile": "h1v1"},
            },
            "inference/2001/h2v1.zarr": {
                "rule": "inference_tile",
                "wildcards": {"year": "2001", "tile": "h2v1"},
            },
            "models/lstm/L4/model.pt": {"rule": "train_deep", "wildcards": {"model": "lstm"}},
        }
    }
    assert set(rerun_selection(manifest, 2001, None)) == {
        "stacks/2001.zarr",
        "inference/2001/h1v1.zarr",
        "inference/2001/h2v1.zarr",
    }
    assert set(rerun_selection(manifest, 2001, "h2v1")) == {"inference/2001/h2v1.zarr"}
    with pytest.raises(RuntimeError, match="no outputs of 1999"):
        rerun_selection(manifest, 1999, None)


# --- the real workflow on the tiny config -----------------------------------------------------


@pytest.mark.slow
def test_every_output_of_a_run_carries_provenance(tiny_run):
    manifest = json.loads((tiny_run / "MANIFEST.json").read_text())
    assert manifest["outputs_without_record"] == []
    rules = {entry["rule"] for entry in manifest["outputs"].values()}
    assert rules == {
        "synthesize",
        "static_layers",
        "stack_year",
        "sample_split",
        "samples_year",
        "samples_merge",
        "train_deep",
        "train_xgboost",
        "train_deep_replicate",  # the comparison's seed replicates (comparison.seeds: 2)
        "train_xgboost_replicate",
        "compare_models",
        "uncertainty_calibration",
        "inference_tile",
        "product_year",
        "validation_sites",  # the validation's parts (parts/sites.nc, parts/{year}.nc)
        "validation_year",
        "validation",
    }
    for rel, entry in manifest["outputs"].items():
        record = read_sidecar(tiny_run / rel)
        assert record is not None and record["sha256"] == entry["sha256"], rel
        provenance = record["provenance"]
        assert provenance["inputs"] or provenance["rule"] == "synthesize", rel
        assert provenance["device"].startswith("cpu") and provenance["threads"] >= 1
    # in the files' own metadata: NetCDF/Zarr attributes, the JSON outputs' provenance entry
    day = next((tiny_run / "product" / "2015").glob("*.nc"))
    for path in (day, tiny_run / "stacks" / "2015.zarr", tiny_run / "comparison" / "summary.json"):
        record = embedded_record(path)
        assert record is not None and len(record["inputs"]) >= 1, path
        assert all(len(sha) == 64 for sha in record["inputs"].values())
    assert embedded_record(tiny_run / "models" / "lstm" / "L4" / "run.json")["seed"] == 7
    import torch
    import xgboost

    model = torch.load(tiny_run / "models" / "lstm" / "L4" / "model.pt", weights_only=True)
    assert model["provenance"]["avhrrsm_rule"] == "train_deep"
    checkpoint = next((tiny_run / "models" / "lstm" / "L4" / "checkpoints").glob("epoch_*.pt"))
    assert torch.load(checkpoint, weights_only=True)["provenance"]["avhrrsm_seed"] == "7"
    booster = xgboost.Booster(model_file=str(tiny_run / "models" / "xgboost" / "L4" / "model.ubj"))
    assert booster.attr("avhrrsm_rule") == "train_xgboost"
    page = (tiny_run / "provenance.html").read_text()
    assert "stacks/2015.zarr" in page and manifest["config_sha256"] in page
    # the seed replicates of the comparison are outputs of the run like any other
    replicates = [rel for rel in manifest["outputs"] if "/seed1/" in rel]
    assert {Path(rel).name for rel in replicates} >= {"model.pt", "model.ubj", "run.json"}
    # one section per rule; inputs shown by their path inside the run, not by basename
    assert page.count("<details>") == len({e["rule"] for e in manifest["outputs"].values()})
    assert "<summary><strong>inference_tile</strong>" in page
    assert "models/atlstm/L4/model.pt <code>" in page


@pytest.mark.slow
def test_audit_verify_and_lineage_on_a_run(tiny_run):
    result = _audit("verify", str(tiny_run))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(json.loads((tiny_run / 'MANIFEST.json').read_text())['outputs'])} outputs" in (
        result.stdout
    )
    day = next((tiny_run / "product" / "2015").glob("*.nc"))
    result = _audit("lineage", str(day), "--json")
    assert result.returncode == 0, result.stderr
    tree = json.loads(result.stdout)

    def walk(node):
        yield node
        for child in node.get("inputs", []):
            yield from walk(child)

    nodes = list(walk(tree))
    rules = {node.get("rule") for node in nodes}
    assert {"product_year", "inference_tile", "train_deep", "samples_merge", "stack_year"} <= rules
    assert {"static_layers", "synthesize", "sample_split", "samples_year"} <= rules
    # file outputs are touched by Snakemake after their job: those are re-hashed
    assert {node["status"] for node in nodes[1:]} <= {CURRENT_BY_STAT, CURRENT_BY_BYTES}


@pytest.mark.slow
def test_audit_catches_a_modified_output(tiny_run, tmp_path):
    workdir = tmp_path / "copy"
    shutil.copytree(tiny_run.parents[1], workdir, symlinks=True)
    run = workdir / "results" / "test"
    tile = run / "inference" / "2015" / "h17v04.zarr"
    with xr.open_zarr(tile) as ds:
        name = next(v for v in ds.data_vars if ds[v].dtype.kind == "f")
        values = ds[name].values.copy()
    values[0] += 0.25
    import zarr

    zarr.open_array(str(tile / name), mode="r+")[0] = values[0]
    result = _audit("verify", str(run))
    assert result.returncode == 1
    assert "changed: inference/2015/h17v04.zarr" in result.stdout
    # the rerun of that tile finds the variable that differs and by how much
    result = _audit("rerun", str(run), "--year", "2015", "--tile", "h17v04")
    assert result.returncode == 1, result.stderr[-3000:]
    assert f"DIFFERENT: variable {name}:" in result.stdout
    difference = float(result.stdout.split("max abs difference ")[1].split()[0])
    assert difference == pytest.approx(0.25, abs=1e-3)
    assert not list(run.parent.glob(".audit-*"))  # the scratch folder is removed


@pytest.mark.slow
def test_audit_rerun_of_a_year_gives_the_same_bytes(tiny_run):
    before = {p: p.stat().st_mtime_ns for p in (tiny_run / "product" / "2015").iterdir()}
    result = _audit("rerun", str(tiny_run), "--year", "2015")
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    for rule in ("stack_year", "samples_year", "inference_tile", "product_year"):
        assert f"({rule}): identical" in result.stdout
    assert "DIFFERENT" not in result.stdout and "all identical" in result.stdout
    # the originals were read, not touched
    assert before == {p: p.stat().st_mtime_ns for p in (tiny_run / "product" / "2015").iterdir()}
    assert verify_run(tiny_run).ok


@pytest.mark.slow
def test_two_clean_runs_give_identical_outputs(tiny_run, tmp_path):
    """Determinism: the tiny config run again from scratch gives the same bytes everywhere."""
    second = run_tiny_workflow(tmp_path / "second")
    first_manifest = json.loads((tiny_run / "MANIFEST.json").read_text())
    second_manifest = json.loads((second / "MANIFEST.json").read_text())
    assert first_manifest["config_sha256"] == second_manifest["config_sha256"]

    def checksums(manifest):
        return {rel: (e["sha256"], e["size"]) for rel, e in manifest["outputs"].items()}

    first, again = checksums(first_manifest), checksums(second_manifest)
    differing = sorted(rel for rel in first if first[rel] != again.get(rel))
    assert set(first) == set(again) and differing == [], differing
    # the records differ only in what is kept out of the compared bytes (times, host)
    side_a = read_sidecar(tiny_run / "stacks" / "2001.zarr")
    side_b = read_sidecar(second / "stacks" / "2001.zarr")
    assert side_a["provenance"] == side_b["provenance"]


def test_zarr_difference_names_the_variable(tmp_path):
    from avhrrsm.ops.audit import _first_difference

    base = xr.Dataset(
        {
            "a": ("x", np.arange(4.0), {"units": "m3 m-3"}),
            "b": ("x", np.arange(4.0), {"units": "K"}),
        }
    )
    base.to_zarr(tmp_path / "one.zarr")
    changed = base.copy(deep=True)
    changed["b"].values[2] += 0.5
    changed.to_zarr(tmp_path / "two.zarr")
    assert (
        _first_difference(tmp_path / "one.zarr", tmp_path / "two.zarr")
        == "variable b: 1 values differ, max abs difference 0.5 K"
    )


def test_code_version_follows_every_kind_of_import(tmp_path, monkeypatch):
    from avhrrsm import codeversion

    package = tmp_path / "avhrrsm"
    (package / "io").mkdir(parents=True)
    for name, text in {
        "__init__.py": "",
        "a.py": "from . import b\n",
        "b.py": "def f():\n    from avhrrsm.io import c  # inside a function\n",
        "unused.py": "",
        "io/__init__.py": "",
        "io/c.py": "from ..d import g\n",
        "d.py": "g = 1\n",
    }.items():
        (package / name).write_text(text)
    script = tmp_path / "script.py"
    script.write_text("import avhrrsm.a\n")
    monkeypatch.setattr(codeversion, "PACKAGE_DIR", package)
    reached = {p.relative_to(package).as_posix() for p in codeversion.reached_modules(script)}
    assert reached == {"__init__.py", "a.py", "b.py", "io/__init__.py", "io/c.py", "d.py"}
    codeversion.code_version.cache_clear()
    before = codeversion.code_version(script)
    (package / "unused.py").write_text("# not reached\n")
    codeversion.code_version.cache_clear()
    assert codeversion.code_version(script) == before
    (package / "d.py").write_text("g = 2\n")
    codeversion.code_version.cache_clear()
    assert codeversion.code_version(script) != before


def test_raw_inputs_are_hashed_once_through_the_hash_cache(tmp_path, monkeypatch):
    from avhrrsm import hashing

    monkeypatch.setenv("AVHRRSM_HASH_CACHE", str(tmp_path / "cache"))
    raw = tmp_path / "day.hdf"
    raw.write_bytes(b"raw bytes")
    calls = []
    real_sha256 = hashing.file_sha256
    monkeypatch.setattr(hashing, "file_sha256", lambda p: calls.append(p) or real_sha256(p))
    first = hashing.cached_file_sha256(raw)
    assert first == real_sha256(raw) and len(calls) == 1
    assert hashing.cached_file_sha256(raw) == first and len(calls) == 1  # from the cache
    raw.write_bytes(b"other bytes")  # size (and mtime) change: hashed again
    assert hashing.cached_file_sha256(raw) == real_sha256(raw) and len(calls) == 2
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "a.txt").write_text("a")
    assert hashing.raw_digest(folder) == content_digest(folder)
    monkeypatch.setenv("AVHRRSM_HASH_CACHE", "off")
    hashing.cached_file_sha256(raw)
    assert len(calls) == 5  # the folder member (cached, then by content_digest), no cache


def test_lost_outputs_are_found_from_the_manifest(chain):
    """The unit under the workflow's check: outputs the last manifest lists that are gone, and
    folders of files that lost files; a --forcerun of the folder or of its rule lets it pass."""
    from avhrrsm.ops.lost import find_lost_outputs

    expected = [str(chain.stack), str(chain.metrics), str(chain.run / "not_listed.csv")]
    assert find_lost_outputs(chain.run, expected).missing == []
    (chain.stack / "day2.csv").unlink()
    chain.metrics.unlink()
    lost = find_lost_outputs(chain.run, expected)
    assert lost.missing == [str(chain.metrics)]
    assert lost.incomplete == {str(chain.stack): ["day2.csv"]}
    assert lost.not_forced([]) == lost.incomplete
    assert lost.not_forced([str(chain.stack)]) == {} and lost.not_forced(["stack_year"]) == {}
    assert lost.not_forced([], force_all=True) == {}
    assert find_lost_outputs(chain.run / "nowhere", expected).missing == []  # no manifest
