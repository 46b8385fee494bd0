# One-command set-up: `make run` and `make test` create .venv and install everything first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CONFIG ?= config.yaml
SNAKEMAKE_ARGS ?=

.PHONY: run test lint dry-run bench lock clean slurm-profile

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

## run: the whole workflow on $(CONFIG) (default: the embedded synthetic world)
run: $(STAMP)
	$(BIN)/snakemake --profile profiles/local --configfile $(CONFIG) $(SNAKEMAKE_ARGS)

## dry-run: list the jobs the workflow would run
dry-run: $(STAMP)
	$(BIN)/snakemake -n --profile profiles/local --configfile $(CONFIG) $(SNAKEMAKE_ARGS)

## lint: ruff, snakefmt and snakemake --lint
lint: $(STAMP)
	$(BIN)/ruff check src tests workflow/scripts
	$(BIN)/ruff format --check src tests workflow/scripts
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/snakemake --lint

## test: lint, then the test suite (unit tests and a tiny end-to-end run of the workflow)
test: lint
	$(BIN)/python -m pytest

## bench: speed and memory figures -> benchmarks/results.json and benchmarks/RESULTS.md
bench: $(STAMP)
	@command -v gdalwarp >/dev/null || (apt-get install -y --no-install-recommends gdal-bin >/dev/null 2>&1 || \
		(apt-get update >/dev/null 2>&1 && apt-get install -y --no-install-recommends gdal-bin >/dev/null 2>&1) || \
		echo "gdalwarp unavailable: the regridding comparisons will be skipped")
	$(BIN)/avhrrsm bench

## slurm-profile: install the SLURM profile so that `snakemake --profile slurm` finds it
##   make slurm-profile SLURM_PARTITION=gpu SLURM_ACCOUNT=myproject [SLURM_STATUS_COMMAND=squeue]
##   [SLURM_JOB_CORES=15 SLURM_JOB_MEM_MB=128000 SLURM_JOB_GPUS=1]
SLURM_PARTITION ?=
SLURM_ACCOUNT ?=
SLURM_STATUS_COMMAND ?=
SLURM_INIT_SECONDS ?=
SLURM_JOB_CORES ?= 15
SLURM_JOB_MEM_MB ?= 128000
SLURM_JOB_GPUS ?= 1
slurm-profile: $(STAMP)
	$(BIN)/avhrrsm slurm-profile --partition "$(SLURM_PARTITION)" --account "$(SLURM_ACCOUNT)" \
		--status-command "$(SLURM_STATUS_COMMAND)" $(if $(SLURM_INIT_SECONDS),--init-seconds $(SLURM_INIT_SECONDS)) \
		--job-cores $(SLURM_JOB_CORES) --job-mem-mb $(SLURM_JOB_MEM_MB) --job-gpus $(SLURM_JOB_GPUS)

## lock: re-pin requirements.lock from a fresh resolution of pyproject.toml
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet -e '.[test]' && .venv-lock/bin/pip freeze --exclude-editable \
		| sed 's/^torch==\(.*\)+cpu$$/torch==\1/' > requirements.lock.new
	rm -rf .venv-lock && mv requirements.lock.new requirements.lock

clean:
	rm -rf $(VENV) .snakemake results
