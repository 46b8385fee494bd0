"""The config is validated against the schema: defaults filled, bad configs rejected clearly."""

from __future__ import annotations

import copy

import pytest
import yaml
from conftest import REPO_ROOT

from avhrrsm.config import (
    ConfigError,
    config_hash,
    input_patterns,
    load_config,
    load_schema,
    load_yaml,
    validate_config,
)


def test_default_config_validates_and_matches_schema_defaults():
    """The shipped config.yaml and the schema's defaults must not drift apart."""
    config = load_config(REPO_ROOT / "config.yaml")
    from_defaults = validate_config({})
    assert config == from_defaults
    assert config["years"] == [1999, 2000, 2001, 2002, 2015, 2016]
    assert config["synthetic"]["dem_arcsec"] == 9


def test_defaults_filled_in_nested_sections():
    config = validate_config({"synthetic": {"seed": 5}})
    assert config["synthetic"]["seed"] == 5
    assert config["synthetic"]["enabled"] is True
    assert config["synthetic"]["margin_deg"] == 0.5
    assert config["inputs"]["ismn"] == "{synthetic}/ismn/Data_separate_files_header_synthetic.zip"


@pytest.mark.parametrize(
    ("bad", "expected"),
    [
        ({"sed": 1}, ["sed: unknown key (did you mean 'seed'?)"]),
        ({"synthetic": {"sede": 1}}, ["synthetic.sede: unknown key (did you mean 'seed'?)"]),
        (
            {"years": [1975]},
            ["years[0]: 1975 is out of range (allowed: minimum 1981, maximum 2021)"],
        ),
        ({"years": "2001"}, ["years: '2001' has the wrong type; expected array"]),
        ({"years": []}, ["years:"]),
        (
            {"region": {"lon_min": 0, "lon_max": 1, "lat_min": 0}},
            ["'lat_max' is a required property"],
        ),
        (
            {"synthetic": {"dem_arcsec": 7}},
            ["synthetic.dem_arcsec: 7 is not one of the allowed values"],
        ),
        ({"synthetic": {"cloud_fraction": 1.5}}, ["synthetic.cloud_fraction: 1.5 is out of range"]),
        ({"run": "../escape"}, ["run: '../escape' does not match"]),
        (
            {"region": {"lon_min": 1, "lon_max": 0, "lat_min": 0, "lat_max": 1}},
            ["lon_min (1) must be smaller than lon_max (0)"],
        ),
        (
            {"region": {"lon_min": 0.02, "lon_max": 1, "lat_min": 0, "lat_max": 1}},
            ["region.lon_min: 0.02 is not on the 0.05 degree grid"],
        ),
        (
            {"synthetic": {"enabled": False}},
            ["inputs.era5land: refers to {synthetic} but synthetic.enabled is false"],
        ),
        (
            {"samples": {"gap_simulation": {"fraction": 0.3, "inputs": ["albedo_bsa_vis"]}}},
            ["samples.gap_simulation.inputs: ['albedo_bsa_vis'] without the other albedo bands"],
        ),
        (
            {"samples": {"gap_simulation": {"fraction": 0.95, "inputs": ["lst"]}}},
            ["samples.gap_simulation.fraction: 0.95 is out of range"],
        ),
    ],
)
def test_bad_configs_fail_with_the_key_named(bad, expected):
    with pytest.raises(ConfigError) as info:
        validate_config(bad, source="my.yaml")
    message = str(info.value)
    assert message.startswith("my.yaml is invalid:")
    for fragment in expected:
        assert fragment in message


def test_several_problems_reported_together():
    with pytest.raises(ConfigError) as info:
        validate_config({"sed": 1, "years": [1975]})
    assert "sed: unknown key" in str(info.value)
    assert "years[0]" in str(info.value)


def test_a_moved_key_names_its_new_place_and_nothing_else_is_lost():
    with pytest.raises(ConfigError) as info:
        validate_config({"samples": {"sequence_length": 6, "per_yer": 100}})
    message = str(info.value)
    assert "samples.sequence_length: this key moved to models.sequence_length" in message
    assert "'models: {sequence_length: 6}'" in message
    assert "unknown key" in message and "samples.per_yer" in message  # the typo still reported
    assert "samples.sequence_length: unknown key" not in message
    assert validate_config({"models": {"sequence_length": 6}})["models"]["sequence_length"] == 6
    with pytest.raises(
        ConfigError, match=r"models.sequence_length \(12\) exceeds samples.stored_lags"
    ):
        validate_config({"models": {"sequence_length": 12}})


def test_bad_yaml_and_missing_file_named(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("run: [unclosed\n")
    with pytest.raises(ConfigError, match="broken.yaml: not valid YAML"):
        load_yaml(broken)
    with pytest.raises(ConfigError, match="nothere.yaml: config file not found"):
        load_yaml(tmp_path / "nothere.yaml")
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_yaml(listing)


def test_validation_does_not_modify_its_input():
    raw = {"synthetic": {"seed": 3}}
    before = copy.deepcopy(raw)
    validate_config(raw)
    assert raw == before


def test_config_hash_is_order_independent_and_sensitive():
    a = validate_config({})
    b = yaml.safe_load(yaml.safe_dump(a))
    assert config_hash(a) == config_hash(dict(reversed(list(b.items()))))
    c = validate_config({"seed": 1})
    assert config_hash(a) != config_hash(c)


def test_input_patterns_point_into_the_run_folder():
    config = validate_config({"run": "r1", "results_dir": "out"})
    patterns = input_patterns(config)
    assert patterns["ismn"] == "out/r1/synthetic/ismn/Data_separate_files_header_synthetic.zip"
    assert "{year}" in patterns["era5land"]


def test_schema_every_property_documented_or_defaulted():
    schema = load_schema()
    for key, sub in schema["properties"].items():
        assert "default" in sub, f"top-level key {key} has no default"


def test_numeric_strings_from_the_command_line_are_accepted():
    """`snakemake --config years=[2001]` hands over strings; they count as numbers."""
    config = validate_config({"years": ["2001", "2015"], "synthetic": {"margin_deg": "0.3"}})
    assert config["years"] == [2001, 2015]
    assert config["synthetic"]["margin_deg"] == 0.3
    with pytest.raises(ConfigError, match="years\\[0\\]: '20x1' has the wrong type"):
        validate_config({"years": ["20x1"]})
