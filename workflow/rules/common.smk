# Shared set-up: validate the config against the schema at parse time, and the path helpers
# that put every output of a run under {results_dir}/{run}/.

import sys
from pathlib import Path

# The Snakefile itself imports the package from this source tree; jobs import it through
# workflow/scripts/_bootstrap.py (or from the environment where it is installed).
SRC_DIR = str(Path(workflow.basedir) / "src")
if SRC_DIR not in sys.path:
    sys.path.insert(0, SRC_DIR)

from avhrrsm.config import ConfigError, validate_config

try:
    _resolved = validate_config(
        config, source="config (config.yaml and --config overrides)"
    )
except ConfigError as err:
    raise WorkflowError(str(err)) from None
config.clear()
config.update(_resolved)

RUN_DIR = Path(config["results_dir"]) / config["run"]


def run_path(*parts):
    """A path under this run's folder, as a string for Snakemake."""
    return str(RUN_DIR.joinpath(*parts))


def log_path(name):
    return run_path("logs", f"{name}.log")


def benchmark_path(name):
    return run_path("benchmarks", f"{name}.tsv")


def synthetic_dir():
    return run_path("synthetic")


def all_targets():
    """The default targets: the last output of every stage built so far."""
    targets = []
    if config["synthetic"]["enabled"]:
        targets.append(synthetic_dir())
    return targets
