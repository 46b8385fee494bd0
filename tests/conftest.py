"""Shared fixtures: the repository root, the test config, and one small synthetic world."""

from __future__ import annotations

from pathlib import Path

import pytest

from avhrrsm.config import load_config

REPO_ROOT = Path(__file__).resolve().parents[1]
TEST_CONFIG = REPO_ROOT / "workflow" / "configs" / "test.yaml"
DATA_DIR = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def test_config() -> dict:
    return load_config(TEST_CONFIG)


@pytest.fixture(scope="session")
def synthetic_world(tmp_path_factory, test_config) -> Path:
    """The synthetic world of the test config, written once per test session."""
    from avhrrsm.synth import write_world

    out = tmp_path_factory.mktemp("world") / "synthetic"
    write_world(
        out,
        test_config["region"],
        test_config["years"],
        test_config["synthetic"],
        test_config["inputs"],
        threads=2,
    )
    return out


@pytest.fixture(scope="session")
def world_patterns(synthetic_world, test_config) -> dict[str, str]:
    """The test config's input patterns, pointing into the session's synthetic world."""
    return {
        name: pattern.replace("{synthetic}", str(synthetic_world))
        for name, pattern in test_config["inputs"].items()
    }
