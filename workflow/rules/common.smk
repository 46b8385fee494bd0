# Shared set-up: validate the config against the schema at parse time, and the path helpers
# that put every output of a run under {results_dir}/{run}/.

import sys
from pathlib import Path

# The Snakefile itself imports the package from this source tree; jobs import it through
# workflow/scripts/_bootstrap.py (or from the environment where it is installed).
SRC_DIR = str(Path(workflow.basedir) / "src")
if SRC_DIR not in sys.path:
    sys.path.insert(0, SRC_DIR)

from avhrrsm.config import (
    TARGET_YEARS,
    ConfigError,
    config_hash,
    in_synthetic_world,
    input_patterns,
    load_yaml,
    validate_config,
)
from avhrrsm.codeversion import code_version as _code_version
from avhrrsm.grid import region_window, tiles
from avhrrsm.requests import envelope_request, job_request, tile_pattern
from avhrrsm.learn.stage_keys import SPLIT_SETTINGS, YEAR_SETTINGS
from avhrrsm.ops.lost import (
    MANIFEST_NAME,
    LostOutputs,
    find_lost_outputs,
    incomplete_message,
)
from avhrrsm.io.rawfiles import (
    stack_year_files,
    static_files,
    tree_files,
    validation_files,
)

try:
    # Snakemake reads the config files itself, keeping the last of a key given twice: read
    # them again to refuse that (and to name the file)
    for _configfile in workflow.configfiles:
        load_yaml(_configfile)
    _resolved = validate_config(
        config, source="config (config.yaml and --config overrides)"
    )
except ConfigError as err:
    raise WorkflowError(str(err)) from None
config.clear()
config.update(_resolved)

RUN_DIR = Path(config["results_dir"]) / config["run"]
INPUTS = input_patterns(config)
SOIL_FRACTIONS = ("sand", "silt", "clay")
STACK_PRODUCTS = ("era5land", "glass_albedo", "glass_lst", "glass_modis")
INSITU_INPUTS = ("ismn", "cosmos", "smap_cvs", "smap_cvs_sites")


def _job_request(rule_name, wildcards, threads=None):
    year = getattr(wildcards, "year", None)
    return job_request(
        rule_name,
        config,
        year=None if year is None else int(year),
        tile=getattr(wildcards, "tile", None),
        threads=threads,
    )


INFERENCE_TILE_REQUEST = envelope_request("inference_tile", config)
# the tiles that run on CPU cores while the GPUs take the others (hpc.cpu_inference_share)
INFERENCE_TILE_CPU_REQUEST = envelope_request("inference_tile_cpu", config)
GPU_TILES = tile_pattern(config, on_cpu=False)
CPU_TILES = tile_pattern(config, on_cpu=True)


def request_threads(rule_name):
    """A rule's threads from its job's projected cost (avhrrsm.requests, profiles/README.md)."""
    return lambda wildcards: _job_request(rule_name, wildcards).threads


def request_mem_mb(rule_name):
    """A rule's mem_mb on the threads Snakemake gave the job (capped by --cores)."""
    return lambda wildcards, threads: _job_request(rule_name, wildcards, threads).mem_mb


def request_runtime(rule_name):
    """A rule's runtime (minutes): hpc.margin x the projected wall time on its threads."""
    return lambda wildcards, threads: _job_request(
        rule_name, wildcards, threads
    ).runtime


def code_version(script):
    """The version of the code a rule's script runs (sha256 of the package modules it reaches,
    see avhrrsm.codeversion): in each rule's params, so that an edit to a stage's code reruns
    that stage and what depends on it."""
    return _code_version(
        Path(workflow.basedir) / "workflow" / "scripts" / f"{script}.py"
    )


STAGE_SCRIPTS = sorted(
    path.stem
    for path in (Path(workflow.basedir) / "workflow" / "scripts").glob("*.py")
    if not path.stem.startswith("_")
)


onstart:
    # a folder output that lost files: stop before any job unless this command remakes it
    if LOST.get("incomplete"):
        _settings = workflow.dag_settings
        _incomplete = LostOutputs(**LOST).not_forced(
            _settings.forcerun, _settings.forceall
        )
        if _incomplete:
            raise WorkflowError(incomplete_message(_incomplete))
    # one workflow per run folder (Snakemake only locks the working directory)
    from avhrrsm.runlock import RunFolderInUse, acquire_run_folder

    try:
        acquire_run_folder(RUN_DIR, Path.cwd())
    except RunFolderInUse as err:
        raise WorkflowError(str(err)) from None
    # outputs of this run folder made by other code than the checkout's: said before any job
    from avhrrsm.ops.audit import outputs_made_by_other_code

    other = outputs_made_by_other_code(
        RUN_DIR, {name: code_version(name) for name in STAGE_SCRIPTS}
    )
    if other:
        counts = ", ".join(
            f"{rule} {len(paths)}" for rule, paths in sorted(other.items())
        )
        logger.warning(
            f"avhrrsm: outputs in {RUN_DIR} made by other code than this checkout's "
            f"(rule: outputs): {counts}. Snakemake reruns them (their rules' code version "
            "is a param) unless --rerun-triggers leaves params out."
        )


onsuccess:
    from avhrrsm.runlock import release_run_folder

    release_run_folder(RUN_DIR)


onerror:
    from avhrrsm.runlock import release_run_folder

    release_run_folder(RUN_DIR)


def run_path(*parts):
    """A path under this run's folder, as a string for Snakemake."""
    return str(RUN_DIR.joinpath(*parts))


def log_path(name):
    return run_path("logs", f"{name}.log")


def benchmark_path(name):
    return run_path("benchmarks", f"{name}.tsv")


def synthetic_dir():
    return run_path("synthetic")


def synthetic_input_patterns():
    """The input patterns that lie in the synthetic world: the products it writes."""
    return {
        name: pattern
        for name, pattern in config["inputs"].items()
        if in_synthetic_world(pattern)
    }


def uses_synthetic(*products):
    """True when any of these products is read from the synthetic world."""
    return config["synthetic"]["enabled"] and any(
        in_synthetic_world(config["inputs"][name]) for name in products
    )


def static_inputs(wildcards):
    """The static layers' inputs: the synthetic world, or the real DEM folder and soil files."""
    if uses_synthetic("merit_dem", "soilgrids"):
        return {"world": synthetic_dir()}
    files = static_files(
        INPUTS["merit_dem"],
        [INPUTS["soilgrids"].format(fraction=f) for f in SOIL_FRACTIONS],
    )
    return {name: paths or [INPUTS[name]] for name, paths in files.items()}


def real_inputs(products):
    """The patterns of those products that are not read from the synthetic world."""
    return {name: INPUTS[name] for name in products if not uses_synthetic(name)}


def stack_inputs(wildcards):
    """A year's stack inputs: every raw file the job reads (ERA5-Land's months, and the GLASS
    and GLASS-MODIS days that exist: a missing day is counted, logged and gap-filled rather than
    stopping the DAG, an added or replaced one reruns the year), and the synthetic world where
    a product comes from it."""
    inputs = stack_year_files(real_inputs(STACK_PRODUCTS), int(wildcards.year))
    if uses_synthetic(*STACK_PRODUCTS):
        inputs["world"] = synthetic_dir()
    return inputs


def stack_path(year):
    return run_path("stacks", f"{year}.zarr")


def target_years():
    """Configured years with a GLASS-MODIS target (2000-2020): the years samples come from."""
    return [year for year in config["years"] if year in TARGET_YEARS]


def previous_stack(wildcards):
    """The previous year's stack where it is configured (sequences cross 1 January)."""
    year = int(wildcards.year)
    return {"previous": stack_path(year - 1)} if year - 1 in config["years"] else {}


DEEP_MODELS = ("lstm", "bilstm", "atlstm", "transformer")


def model_file(model, length):
    """The trained model of one run: models/{model}/L{length}/model.pt (XGBoost: model.ubj)."""
    name = "model.ubj" if model == "xgboost" else "model.pt"
    return run_path("models", model, f"L{length}", name)


def compared_models():
    """The model file of every model in models.train, at models.sequence_length."""
    length = config["models"]["sequence_length"]
    return {model: model_file(model, length) for model in config["models"]["train"]}


def replicate_models():
    """Seed replicates of every compared model: input name {model}_seed{k}, k = 1 ..
    comparison.seeds - 1 (replicate 0 is the model of compared_models())."""
    length = config["models"]["sequence_length"]
    replicates = {}
    for model in config["models"]["train"]:
        for replicate in range(1, config["comparison"]["seeds"]):
            name = "model.ubj" if model == "xgboost" else "model.pt"
            replicates[f"{model}_seed{replicate}"] = run_path(
                "models", model, f"L{length}", f"seed{replicate}", name
            )
    return replicates


def sweep_models():
    """The sweep model's file at every length of comparison.sequence_lengths."""
    model = config["comparison"]["sweep_model"]
    return {
        f"L{length}": model_file(model, length)
        for length in config["comparison"]["sequence_lengths"]
    }


COMPARISON_OUTPUTS = {
    "metrics": "metrics.csv",
    "sequence_length": "sequence_length.csv",
    "attention": "attention.csv",
    "scatter": "scatter_density.png",
    "length_figure": "metric_vs_sequence_length.png",
    "attention_figure": "attention_per_lag.png",
    "summary": "summary.html",
    "summary_json": "summary.json",
}


def comparison_path(key):
    return run_path("comparison", COMPARISON_OUTPUTS[key])


def region_tiles():
    """Ids of the tiles of the global tiling (tile_deg) that meet the region."""
    return [
        tile_id
        for tile_id, _ in tiles(region_window(config["region"]), config["tile_deg"])
    ]


def product_model_file():
    """The model the product is made with (inference.model at models.sequence_length)."""
    return model_file(config["inference"]["model"], config["models"]["sequence_length"])


def uncertainty_model_file():
    """The product model's error model (rule uncertainty_calibration), beside the model."""
    return str(Path(product_model_file()).parent / "uncertainty.json")


def inference_tile_path(year, tile):
    return run_path("inference", str(year), f"{tile}.zarr")


def product_targets():
    return [run_path("product", str(year)) for year in config["years"]] + [
        run_path("product", f"summary_{year}.png") for year in config["years"]
    ]


CONFIG_SHA256 = config_hash(config)

VALIDATION_OUTPUTS = {
    "results": "results.nc",
    "network_summary": "network_summary.csv",
    "intercomparison": "intercomparison.json",
    "modis_consistency": "modis_consistency.nc",
    "report": "report.html",
    "boxplots": "boxplots.png",
    "site_map": "site_r_map.png",
    "scatter": "scatter_density.png",
    "timeseries": "timeseries.png",
    "modis_map": "modis_consistency.png",
    "homogeneity": "homogeneity.png",
}


def validation_path(key):
    return run_path("validation", VALIDATION_OUTPUTS[key])


def validation_sites_path():
    return run_path("validation", "parts", "sites.nc")


def validation_year_path(year):
    return run_path("validation", "parts", f"{year}.nc")


def synthetic_truth():
    """The world's hidden truth, which a synthetic run scores the product against too."""
    if all(uses_synthetic(name) for name in STACK_PRODUCTS):
        return run_path("synthetic", "truth")
    return None


def insitu_inputs(wildcards):
    """The in-situ inputs: the synthetic world, or the real ISMN archive and site folders."""
    if uses_synthetic(*INSITU_INPUTS):
        return {"world": synthetic_dir()}
    # every file under the folders (a path that does not exist stays, for Snakemake to name)
    return {name: tree_files(INPUTS[name]) or [INPUTS[name]] for name in INSITU_INPUTS}


def validation_raw_inputs(wildcards):
    """The ERA5-Land months and ESA CCI days a validation year reads, where they exist (and
    the synthetic world where one of them comes from it)."""
    inputs = validation_files(
        real_inputs(("era5land", "esa_cci")), [int(wildcards.year)]
    )
    if uses_synthetic("era5land", "esa_cci"):
        inputs["gridded_world"] = synthetic_dir()
    return inputs


def all_targets():
    """The default targets: the last output of every stage built so far."""
    return (
        [run_path("static", "static_layers.zarr")]
        + [stack_path(year) for year in config["years"]]
        + [run_path("samples", "manifest.json")]
        + [comparison_path(key) for key in COMPARISON_OUTPUTS]
        + product_targets()
        + [validation_path(key) for key in VALIDATION_OUTPUTS]
    )


def model_outputs(model, length):
    """Every file a training run writes: the model, metrics.csv, run.json (and scaler.json)."""
    folder = Path(model_file(model, length)).parent
    names = [Path(model_file(model, length)).name, "metrics.csv", "run.json"]
    if model != "xgboost":
        names.append("scaler.json")
    return [str(folder / name) for name in names]


def run_outputs():
    """Every output of a complete run: the default targets and all intermediate outputs."""
    length = config["models"]["sequence_length"]
    models = {(model, length) for model in config["models"]["train"]}
    models |= {
        (config["comparison"]["sweep_model"], n)
        for n in config["comparison"]["sequence_lengths"]
    }
    models.add((config["inference"]["model"], length))
    outputs = set(all_targets())
    outputs.add(uncertainty_model_file())
    if any(
        uses_synthetic(*group)
        for group in (
            ("merit_dem", "soilgrids"),
            STACK_PRODUCTS,
            INSITU_INPUTS,
        )
    ):
        outputs.add(synthetic_dir())
    outputs.add(run_path("samples", "split.zarr"))
    outputs.add(run_path("samples", "samples.zarr"))
    outputs |= {run_path("samples", f"{year}.zarr") for year in target_years()}
    for model, n in models:
        outputs |= set(model_outputs(model, n))
    for model in config["models"]["train"]:  # the seed replicates of the comparison
        for replicate in range(1, config["comparison"]["seeds"]):
            outputs |= {
                str(Path(path).parent / f"seed{replicate}" / Path(path).name)
                for path in model_outputs(model, length)
            }
    outputs |= {
        inference_tile_path(year, tile)
        for year in config["years"]
        for tile in region_tiles()
    }
    outputs.add(validation_sites_path())
    outputs |= {validation_year_path(year) for year in config["years"]}
    return sorted(outputs)


def manifest_path():
    return run_path(MANIFEST_NAME)


def lost_outputs():
    """Outputs of the run's last complete pass (its manifest) that are gone: targets of the
    default run, so that they and what depends on them are made again (Snakemake alone would
    say "Nothing to be done"). A folder output that lost files is named here (a dry run shows
    it) and stops the run before any job unless --forcerun or --forceall remakes it (onstart:
    the command's settings are known only then). avhrrsm.ops.lost; in the main process only.
    """
    if not getattr(workflow, "is_main_process", True):
        return []
    LOST.update(vars(find_lost_outputs(RUN_DIR, run_outputs())))
    if LOST["incomplete"]:
        logger.warning(incomplete_message(LOST["incomplete"]))
    if LOST["missing"]:
        logger.warning(
            f"avhrrsm: {len(LOST['missing'])} output(s) of the run's last complete pass are gone "
            f"and are made again, with what depends on them: {', '.join(LOST['missing'][:5])}"
            + (" ..." if len(LOST["missing"]) > 5 else "")
        )
    return LOST["missing"]


LOST = {}
