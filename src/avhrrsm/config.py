"""Configuration: load, validate against the JSON schema, fill defaults, hash.

The schema (``avhrrsm/schemas/config.schema.yaml``, shipped with the package) is the single
description of every key.
Validation happens when the Snakefile is parsed, before any job starts, and raises
:class:`ConfigError` with one line per problem naming the key and what is allowed.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
from collections.abc import Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from avhrrsm.variables import ALBEDO_VARIABLES, GLASS_MODIS_YEARS

GRID_STEP_DEG = 0.05


class ConfigError(ValueError):
    """A configuration that does not satisfy the schema or a cross-key rule."""


def load_schema() -> dict[str, Any]:
    """The config schema, package data of avhrrsm (found wherever the package is installed)."""
    text = resources.files("avhrrsm").joinpath("schemas", "config.schema.yaml").read_text("utf-8")
    return yaml.safe_load(text)


class _SafeYamlUniqueKeys(yaml.SafeLoader):
    """The safe loader, refusing a key given twice in one mapping (YAML keeps the last one
    without a word, so a setting would be silently lost)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice, on lines {seen[key]} and {line}"
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file with the safe loader; a clear error for bad syntax and for a
    key given twice."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        with open(path, encoding="utf-8") as handle:
            loader = _SafeYamlUniqueKeys(handle)
            try:
                data = loader.get_single_data()
            finally:
                loader.dispose()
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: the top level must be a mapping of keys, not {type(data).__name__}"
        )
    return data


def _fill_defaults(instance: Any, schema: Mapping[str, Any]) -> Any:
    """Return a copy of ``instance`` with schema defaults filled in, recursively."""
    if schema.get("type") == "object" and isinstance(instance, dict):
        filled = dict(instance)
        for key, subschema in schema.get("properties", {}).items():
            if key not in filled and "default" in subschema:
                filled[key] = copy.deepcopy(subschema["default"])
            if key in filled:
                filled[key] = _fill_defaults(filled[key], subschema)
        return filled
    return instance


def _coerce_numbers(instance: Any, schema: Mapping[str, Any]) -> Any:
    """Turn numeric strings into numbers where the schema wants numbers, and whole floats
    into integers where it wants integers (``epochs: 3.0`` would pass the schema as an integer
    and fail later deep in a job as a float).

    ``snakemake --config years=[2001,2002]`` hands over strings; a value that is not a clean
    number stays a string (or a float) and fails validation with its key named.
    """
    kind = schema.get("type")
    if kind == "object" and isinstance(instance, dict):
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        extra = extra if isinstance(extra, dict) else None
        return {
            k: _coerce_numbers(v, props[k]) if k in props else _coerce_numbers(v, extra or {})
            for k, v in instance.items()
        }
    if kind == "array" and isinstance(instance, list) and "items" in schema:
        return [_coerce_numbers(item, schema["items"]) for item in instance]
    if kind == "integer" and isinstance(instance, float) and instance.is_integer():
        return int(instance)  # 3.0 in YAML where a count is meant; 3.5 fails validation
    if kind in ("integer", "number") and isinstance(instance, str):
        try:
            number = float(instance)
        except ValueError:
            return instance
        if kind == "integer" and number.is_integer():
            return int(number)
        return number if kind == "number" else instance
    return instance


# Keys that moved between sections: an old config gets the new place named, not "unknown key".
MOVED_KEYS = {
    ("samples", "sequence_length"): (
        ("models", "sequence_length"),
        "it chooses how many of the stored lags a model reads, so it belongs with the models "
        "(changing it retrains but redraws no sample)",
    ),
}


def _moved_key_problems(config: Mapping[str, Any]) -> Iterator[str]:
    for (section, key), ((new_section, new_key), why) in MOVED_KEYS.items():
        old = config.get(section)
        if isinstance(old, Mapping) and key in old:
            yield (
                f"{section}.{key}: this key moved to {new_section}.{new_key}: {why}; write "
                f"'{new_section}: {{{new_key}: {old[key]}}}' and remove it from {section}"
            )


def _key_path(error: jsonschema.ValidationError) -> str:
    parts = [str(p) if not isinstance(p, int) else f"[{p}]" for p in error.absolute_path]
    text = ".".join(parts).replace(".[", "[")
    return text or "(top level)"


def _describe(error: jsonschema.ValidationError) -> str:
    """One line for one schema violation: the key, what is wrong, what is allowed."""
    where = _key_path(error)
    schema = error.schema
    if error.validator == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        moved = {key for section, key in MOVED_KEYS if section == where}  # named on their own
        unknown = sorted(set(error.instance) - set(allowed) - moved)
        lines = []
        for key in unknown:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            prefix = f"{where}." if where != "(top level)" else ""
            lines.append(
                f"{prefix}{key}: unknown key{hint}; allowed keys here: {', '.join(allowed)}"
            )
        return "\n  - ".join(lines)
    if error.validator == "enum":
        return (
            f"{where}: {error.instance!r} is not one of the allowed values {error.validator_value}"
        )
    if error.validator == "type":
        return f"{where}: {error.instance!r} has the wrong type; expected {error.validator_value}"
    if error.validator in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        bounds = ", ".join(f"{k} {schema[k]}" for k in ("minimum", "maximum") if k in schema)
        return f"{where}: {error.instance!r} is out of range (allowed: {bounds})"
    if error.validator == "required":
        return f"{where}: {error.message}"
    description = schema.get("description", "")
    suffix = f" ({description.strip()})" if description and len(description) < 120 else ""
    return f"{where}: {error.message}{suffix}"


def _semantic_problems(config: Mapping[str, Any]) -> Iterator[str]:
    """Rules that span keys and that JSON schema cannot express."""
    region = config["region"]
    if region["lon_min"] >= region["lon_max"]:
        yield f"region: lon_min ({region['lon_min']}) must be smaller than lon_max ({region['lon_max']})"
    if region["lat_min"] >= region["lat_max"]:
        yield f"region: lat_min ({region['lat_min']}) must be smaller than lat_max ({region['lat_max']})"
    for key, value in region.items():
        steps = value / GRID_STEP_DEG
        if abs(steps - round(steps)) > 1e-6:
            yield (
                f"region.{key}: {value} is not on the 0.05 degree grid; "
                f"use a multiple of 0.05 such as {round(steps) * GRID_STEP_DEG:.2f}"
            )
    yield from _learning_problems(config)
    synthetic_enabled = config["synthetic"]["enabled"]
    for name, pattern in config["inputs"].items():
        if SYNTHETIC in pattern and not synthetic_enabled:
            yield (
                f"inputs.{name}: refers to {{synthetic}} but synthetic.enabled is false; "
                "give the path of the real product or enable the synthetic world"
            )
        if SYNTHETIC in pattern and (
            not pattern.startswith(f"{SYNTHETIC}/") or ".." in Path(pattern).parts
        ):
            # the synthetic world is written by the workflow: it must stay inside the run folder
            yield (
                f"inputs.{name}: {pattern!r} must lie inside the synthetic world folder "
                "(start with '{synthetic}/', no '..')"
            )


def validate_config(config: Mapping[str, Any], source: str = "config") -> dict[str, Any]:
    """Validate ``config`` and return a new dict with every default filled in.

    Raises :class:`ConfigError` listing every problem found, each naming the key.
    """
    schema = load_schema()
    config = _coerce_numbers(copy.deepcopy(dict(config)), schema)
    validator_cls = jsonschema.validators.validator_for(schema)
    validator = validator_cls(schema)
    errors = sorted(validator.iter_errors(dict(config)), key=lambda e: list(e.absolute_path))
    problems = list(_moved_key_problems(config)) + [_describe(e) for e in errors]
    problems = [line for line in problems if line]
    if problems:
        lines = "\n  - ".join(problems)
        raise ConfigError(f"{source} is invalid:\n  - {lines}")
    resolved = _fill_defaults(dict(config), schema)  # recursive: fills inside filled defaults too
    problems = list(_semantic_problems(resolved))
    if problems:
        lines = "\n  - ".join(problems)
        raise ConfigError(f"{source} is invalid:\n  - {lines}")
    resolved["years"] = sorted(resolved["years"])
    return resolved


def load_config(path: str | Path) -> dict[str, Any]:
    """Read and validate a config file (what the CLI uses; the Snakefile validates its own)."""
    return validate_config(load_yaml(path), source=str(path))


def config_hash(config: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON form of a (resolved) config or params mapping."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def run_dir(config: Mapping[str, Any]) -> Path:
    return Path(config["results_dir"]) / config["run"]


SYNTHETIC = "{synthetic}"  # input paths starting with it lie in the run's synthetic world


def in_synthetic_world(pattern: str) -> bool:
    """Whether an input path pattern points into the run's synthetic world."""
    return str(pattern).startswith(SYNTHETIC)


def with_synthetic_folder(pattern: str, folder: str | Path) -> str:
    """``pattern`` with the {synthetic} placeholder replaced by the world's ``folder``."""
    return pattern.replace(SYNTHETIC, str(folder))


def input_patterns(config: Mapping[str, Any]) -> dict[str, str]:
    """The input path patterns with {synthetic} replaced by the run's synthetic-world folder.

    The remaining fields ({year}, {doy}, ...) are filled by the readers.
    """
    synthetic_dir = str(run_dir(config) / "synthetic")
    return {
        name: with_synthetic_folder(pattern, synthetic_dir)
        for name, pattern in config["inputs"].items()
    }


TARGET_YEARS = GLASS_MODIS_YEARS  # GLASS-MODIS soil moisture, the training target


def _learning_problems(config: Mapping[str, Any]) -> Iterator[str]:
    """Cross-key rules of the sample sets, the models and the comparison."""
    samples = config["samples"]
    stored = samples["stored_lags"]
    length = config["models"]["sequence_length"]
    if length > stored:
        yield (
            f"models.sequence_length ({length}) exceeds samples.stored_lags ({stored}); "
            "raise stored_lags"
        )
    too_long = [n for n in config["comparison"]["sequence_lengths"] if n > stored]
    if too_long:
        yield (
            f"comparison.sequence_lengths: {too_long} exceed samples.stored_lags ({stored}); "
            "raise stored_lags or drop them"
        )
    total = sum(samples["split_fractions"].values())
    if abs(total - 1.0) > 1e-6:
        yield f"samples.split_fractions: train + validation + test is {total:g}, must be 1"
    target_years = [y for y in config["years"] if y in TARGET_YEARS]
    if not target_years:
        yield (
            f"years: none of {config['years']} has a GLASS-MODIS target (2000-2020); "
            "the models cannot be trained; add at least one year from 2000-2020"
        )
    for year in samples["holdout_years"]:
        if year not in target_years:
            yield (
                f"samples.holdout_years: {year} is not a configured year with a target "
                f"(configured target years: {target_years})"
            )
    if target_years and set(target_years) <= set(samples["holdout_years"]):
        yield "samples.holdout_years: every target year is held out; nothing is left to train on"
    albedo = set(ALBEDO_VARIABLES)
    simulated_albedo = albedo & set(samples["gap_simulation"]["inputs"])
    if simulated_albedo and simulated_albedo != albedo:
        yield (
            f"samples.gap_simulation.inputs: {sorted(simulated_albedo)} without the other albedo "
            f"bands; the three come from one composite and gap together: give all of {sorted(albedo)} "
            "or none"
        )
    transformer = config["models"]["transformer"]
    if transformer["d_model"] % transformer["nhead"]:
        yield (
            f"models.transformer: d_model ({transformer['d_model']}) must be a multiple of "
            f"nhead ({transformer['nhead']})"
        )
