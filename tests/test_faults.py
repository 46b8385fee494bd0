"""Faults: jobs killed mid-write (SIGKILL) leave nothing a later rule could consume, and the
rerun gives the same bytes as an uninterrupted run; training killed mid-epoch resumes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_inference import INFERENCE, PRODUCT

from avhrrsm.atomic import HOST, atomic_path, stale_temporaries, temporaries
from avhrrsm.hashing import content_digest
from avhrrsm.infer import predict_tile
from avhrrsm.stacks import build_year_stack

STACK_JOB = """
import json, sys
from avhrrsm.stacks import build_year_stack
a = json.loads(sys.argv[1])
build_year_stack(a["out"], a["year"], a["patterns"], a["static"], a["region"], 0.5, a["settings"],
                 {"avhrrsm_rule": "stack_year"})
"""

INFERENCE_JOB = """
import json, sys
from avhrrsm.infer import predict_tile
a = json.loads(sys.argv[1])
predict_tile(a["out"], a["year"], a["tile"], 0.5, a["stack"], None, a["static"], a["model"],
             a["region"], a["settings"], a["valid_range"], {"avhrrsm_rule": "inference_tile"},
             threads=1)
"""


def _chunks_written(folder: Path) -> int:
    """Chunk files of a Zarr store being written (metadata files excluded)."""
    return sum(1 for p in folder.rglob("*") if p.is_file() and "c" in p.relative_to(folder).parts)


def _kill_mid_write(script: str, args: dict, target: Path, timeout: float = 300) -> None:
    """Start a job in its own process, SIGKILL it once its temporary store holds some chunks
    (but before it is complete), and check what it left."""
    process = subprocess.Popen([sys.executable, "-c", script, json.dumps(args)])
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            writing = temporaries(target)
            if writing and _chunks_written(writing[0]) >= 3:
                break
            if process.poll() is not None:
                pytest.fail(f"the job ended (code {process.returncode}) before it could be killed")
            time.sleep(0.01)
        else:
            pytest.fail("the job never started writing")
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL
    assert not target.exists()  # nothing under the output's name for a later rule to read
    assert stale_temporaries(target)  # only the hidden temporary of the killed attempt


@pytest.mark.parametrize("year", [2001])
def test_stack_job_killed_mid_write_reruns_to_the_same_bytes(
    year, test_stacks, world_patterns, test_config, tmp_path
):
    target = tmp_path / "stacks" / f"{year}.zarr"
    args = {
        "out": str(target),
        "year": year,
        "patterns": world_patterns,
        "static": str(test_stacks["static"]),
        "region": test_config["region"],
        "settings": test_config["stacks"],
    }
    _kill_mid_write(STACK_JOB, args, target)
    build_year_stack(
        target,
        year,
        world_patterns,
        test_stacks["static"],
        test_config["region"],
        0.5,
        test_config["stacks"],
        {"avhrrsm_rule": "stack_year"},
    )
    assert not stale_temporaries(target)  # the rerun cleaned up after the killed attempt
    assert content_digest(target) == content_digest(test_stacks["stacks"][year])


def test_inference_job_killed_mid_write_reruns_to_the_same_bytes(
    test_stacks,
    test_config,
    model_path,
    tmp_path,
):
    settings = {**INFERENCE, "memory_budget_mb": 0.01}  # one day per block: a long write
    args = {
        "year": 2001,
        "tile": "h359v94",
        "stack": str(test_stacks["stacks"][2001]),
        "static": str(test_stacks["static"]),
        "model": str(model_path),
        "region": test_config["region"],
        "settings": settings,
        "valid_range": PRODUCT["valid_range"],
    }
    killed = tmp_path / "killed" / "tile.zarr"
    _kill_mid_write(INFERENCE_JOB, {**args, "out": str(killed)}, killed)
    for target in (killed, tmp_path / "uninterrupted" / "tile.zarr"):
        predict_tile(
            target,
            2001,
            args["tile"],
            0.5,
            test_stacks["stacks"][2001],
            None,
            test_stacks["static"],
            model_path,
            test_config["region"],
            settings,
            PRODUCT["valid_range"],
            {"avhrrsm_rule": "inference_tile"},
            threads=1,
        )
    assert not stale_temporaries(killed)
    assert content_digest(killed) == content_digest(tmp_path / "uninterrupted" / "tile.zarr")


TRAINING_JOB = """
import json, os, signal, sys
from avhrrsm.learn.train import train_deep_model
a = json.loads(sys.argv[1])

def die_in_epoch_two(epoch, step):
    if epoch == 2 and step == 2:
        os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no exception handler runs

train_deep_model(a["samples"], a["run"], "bilstm", a["hyper"], 3, a["training"], 9, 1,
                 step_hook=die_in_epoch_two)
"""


def test_training_killed_mid_epoch_resumes_from_its_checkpoint(sample_set, tmp_path):
    from test_learn import HYPER, TRAINING

    from avhrrsm.learn.train import train_deep_model

    killed, whole = tmp_path / "killed", tmp_path / "whole"
    args = {
        "samples": str(sample_set["merged"]),
        "run": str(killed),
        "hyper": HYPER["bilstm"],
        "training": TRAINING,
    }
    job = subprocess.run([sys.executable, "-c", TRAINING_JOB, json.dumps(args)], check=False)
    assert job.returncode == -signal.SIGKILL
    assert not (killed / "model.pt").exists()
    assert [p.name for p in sorted((killed / "checkpoints").glob("*.pt"))] == ["epoch_001.pt"]
    resumed = train_deep_model(
        sample_set["merged"], killed, "bilstm", HYPER["bilstm"], 3, TRAINING, 9, 1
    )
    assert resumed["resumed_after_epoch"] == 1
    train_deep_model(sample_set["merged"], whole, "bilstm", HYPER["bilstm"], 3, TRAINING, 9, 1)
    assert content_digest(killed / "model.pt") == content_digest(whole / "model.pt")
    assert (killed / "metrics.csv").read_text() == (whole / "metrics.csv").read_text()


def test_a_temporary_of_a_running_process_is_never_removed(tmp_path):
    """Two workflows (or jobs) on one results folder: neither removes what the other writes."""
    target = tmp_path / "2001.zarr"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = tmp_path / f".2001.zarr.tmp-{HOST}-{sleeper.pid}"
        live.mkdir()
        other_host = tmp_path / ".2001.zarr.tmp-othernode-12345"
        other_host.mkdir()
        dead = subprocess.run(
            [sys.executable, "-c", "import os; print(os.getpid())"],
            capture_output=True,
            text=True,
            check=True,
        )
        stale = tmp_path / f".2001.zarr.tmp-{HOST}-{int(dead.stdout)}"
        stale.mkdir()
        legacy = tmp_path / f".2001.zarr.tmp-{int(dead.stdout)}"  # the names before host
        legacy.mkdir()
        assert stale_temporaries(target) == sorted([stale, legacy])
        with atomic_path(target) as tmp:
            tmp.mkdir()
        assert target.is_dir() and live.is_dir() and other_host.is_dir()
        assert not stale.exists() and not legacy.exists()
    finally:
        sleeper.kill()
        sleeper.wait()
    assert stale_temporaries(target) == [live]  # its writer has gone: now it is stale


def test_a_second_workflow_on_the_same_run_folder_is_refused(tmp_path):
    from conftest import TEST_CONFIG, run_snakemake

    from avhrrsm.runlock import RunFolderInUse, acquire_run_folder, release_run_folder

    run = tmp_path / "shared" / "test"
    lock = acquire_run_folder(run, tmp_path / "first")
    assert acquire_run_folder(run, tmp_path / "first") == lock  # the holder may ask again
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        owner = json.loads(lock.read_text())
        lock.write_text(json.dumps({**owner, "pid": sleeper.pid}))  # held by a live workflow
        with pytest.raises(RunFolderInUse, match="in use by the workflow in .*first"):
            acquire_run_folder(run, tmp_path / "second")
        second = tmp_path / "second"
        second.mkdir()
        shutil.copy(TEST_CONFIG, second / "config.yaml")
        result = run_snakemake(
            [
                "--cores",
                "1",
                "--configfile",
                "config.yaml",
                "--until",
                "synthesize",
                "--config",
                f"results_dir={tmp_path / 'shared'}",
            ],
            second,
        )
        assert result.returncode != 0
        assert f"{run} is in use by the workflow in {tmp_path / 'first'}" in result.stderr
        assert not (run / "synthetic").exists()
    finally:
        sleeper.kill()
        sleeper.wait()
    # its holder is gone: the next workflow takes the lock over and gives it back at the end
    assert acquire_run_folder(run, tmp_path / "second") == lock
    release_run_folder(run)
    assert not lock.exists()
