"""The data dictionary: every variable avhrrsm stores, with its units, long_name and flag
meanings, and the model-input contract (which variables a model reads, in which order).

The stores take their attributes from here: the per-year stacks (inputs, their fill flags, the
target), the static layers, the sample sets, the inference tiles and the daily product files.
A leaf module (numpy only), so that readers, writers and reports can all import it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

# ---- names of the inputs and the target -------------------------------------------------------
ALBEDO_VARIABLES = ("albedo_bsa_vis", "albedo_bsa_nir", "albedo_bsa_shortwave")
AVHRR_VARIABLES = (*ALBEDO_VARIABLES, "lst")
INPUTS = (*AVHRR_VARIABLES, "era5land_swvl1")
TARGET = "glass_modis_sm"
GLASS_MODIS_YEARS = range(2000, 2021)  # the training target exists for these years only

# ---- per-year stacks: the inputs, the target and the inputs' fill flags ------------------------
FLAG_WATER, FLAG_OBSERVED, FLAG_INTERPOLATED, FLAG_SEASONAL, FLAG_NEAREST, FLAG_ANNUAL = (
    -1,
    0,
    1,
    2,
    3,
    4,
)
# the stack's fill methods by fill-flag value, as reports name them
FILL_METHOD_NAMES = {
    FLAG_INTERPOLATED: "temporal interpolation",
    FLAG_SEASONAL: "seasonal window mean",
    FLAG_NEAREST: "nearest land pixel",
    FLAG_ANNUAL: "annual mean",
}
FILL_FLAG_ATTRS = {
    "flag_values": np.array([-1, 0, 1, 2, 3, 4], np.int8),
    "flag_meanings": "water observed temporal_interpolation seasonal_window_mean nearest_land_pixel annual_mean",
    "units": "1",
}
STACK_ATTRS: Mapping[str, Mapping[str, str]] = {
    "albedo_bsa_vis": {"long_name": "AVHRR black-sky albedo, visible (GLASS-AVHRR)", "units": "1"},
    "albedo_bsa_nir": {
        "long_name": "AVHRR black-sky albedo, near infrared (GLASS-AVHRR)",
        "units": "1",
    },
    "albedo_bsa_shortwave": {
        "long_name": "AVHRR black-sky albedo, shortwave (GLASS-AVHRR)",
        "units": "1",
    },
    "lst": {
        "long_name": "AVHRR land surface temperature (GLASS-AVHRR)",
        "standard_name": "surface_temperature",
        "units": "K",
    },
    "era5land_swvl1": {
        "long_name": "ERA5-Land volumetric soil water layer 1 (0-7 cm), daily mean, bilinear to 0.05 degree",
        "units": "m3 m-3",
    },
    TARGET: {
        "long_name": "GLASS-MODIS surface soil moisture, 1 km -> 0.05 degree area-weighted mean (training target)",
        "standard_name": "volume_fraction_of_condensed_water_in_soil",
        "units": "m3 m-3",
    },
}

# ---- static layers ----------------------------------------------------------------------------
STATIC_ATTRS: Mapping[str, Mapping[str, object]] = {
    "land_mask": {
        "long_name": "land mask (at least half of the cell's DEM pixels are land)",
        "units": "1",
        "flag_values": np.array([0, 1], np.int8),
        "flag_meanings": "water land",
    },
    "land_fraction": {"long_name": "fraction of the cell's DEM pixels that are land", "units": "1"},
    "elevation": {
        "long_name": "mean elevation (MERIT DEM)",
        "standard_name": "surface_altitude",
        "units": "m",
    },
    "slope": {"long_name": "mean terrain slope from the fine DEM", "units": "degree"},
    "aspect_sin": {
        "long_name": "mean sine of aspect (direction of steepest descent, clockwise from north)",
        "units": "1",
    },
    "aspect_cos": {
        "long_name": "mean cosine of aspect (direction of steepest descent, clockwise from north)",
        "units": "1",
    },
    "sand_fraction": {
        "long_name": "sand mass fraction, 0-5 cm (SoilGrids 2.0, rescaled so sand+silt+clay=1)",
        "units": "1",
    },
    "silt_fraction": {
        "long_name": "silt mass fraction, 0-5 cm (SoilGrids 2.0, rescaled so sand+silt+clay=1)",
        "units": "1",
    },
    "clay_fraction": {
        "long_name": "clay mass fraction, 0-5 cm (SoilGrids 2.0, rescaled so sand+silt+clay=1)",
        "units": "1",
    },
    "soil_fill_flag": {
        "long_name": "soil texture gap-filled from the nearest cell",
        "units": "1",
        "flag_values": np.array([0, 1], np.int8),
        "flag_meanings": "observed nearest_neighbour_fill",
    },
}

# ---- valid ranges: what a value read back from a store may be (a value outside is damage) -------
# physical bounds, as the readers decode the inputs (LST: the GLASS LST layout's 150..360 K);
# the fill flags' codes; the product's soil moisture and quality bits
VALID_RANGES: Mapping[str, tuple[float, float]] = {
    **dict.fromkeys(ALBEDO_VARIABLES, (0.0, 1.0)),
    "lst": (150.0, 360.0),
    "era5land_swvl1": (0.0, 1.0),
    TARGET: (0.0, 1.0),
    **{f"{name}_fill_flag": (-1.0, 4.0) for name in INPUTS},
    "land_mask": (0.0, 1.0),
    "land_fraction": (0.0, 1.0),
    "elevation": (-500.0, 9000.0),
    "slope": (0.0, 90.0),
    "aspect_sin": (-1.0, 1.0),
    "aspect_cos": (-1.0, 1.0),
    "sand_fraction": (0.0, 1.0),
    "silt_fraction": (0.0, 1.0),
    "clay_fraction": (0.0, 1.0),
    "target": (0.0, 1.0),  # a sample set's target
    "soil_moisture": (0.0, 1.0),  # an inference tile's
    "sm_uncertainty": (0.0, 1.0),  # an inference tile's
}

# ---- the model-input contract -----------------------------------------------------------------
DYNAMIC_FEATURES: tuple[str, ...] = INPUTS
STATIC_FEATURES: tuple[str, ...] = (
    "elevation",
    "slope",
    "aspect_sin",
    "aspect_cos",
    "sand_fraction",
    "silt_fraction",
    "clay_fraction",
)
# inputs whose gap-filled indicator is a model input (ERA5-Land has no gaps but its all-fill
# days; the albedo bands share a composite but are kept apart for a plain contract)
FILL_INDICATORS: tuple[str, ...] = DYNAMIC_FEATURES
SPLITS = ("train", "validation", "test")
TRAIN, VALIDATION, TEST = 0, 1, 2
EXCLUDED = -1
REGIMES = ("dry", "wet")

# ---- sample sets ------------------------------------------------------------------------------
SAMPLE_ATTRS: Mapping[str, Mapping[str, Any]] = {
    "dynamic": {
        "long_name": "dynamic inputs of the days up to the sample day (last lag = the day)",
        "units": "see dynamic_units",
    },
    "dynamic_fill_flag": {
        "long_name": "gap filling of the dynamic inputs (stack fill flags)",
        "flag_values": FILL_FLAG_ATTRS["flag_values"],
        "flag_meanings": FILL_FLAG_ATTRS["flag_meanings"],
    },
    "gap_simulated": {
        "long_name": "1 where the input's observed values around the sample day were removed and "
        "refilled by the stack's gap filling (samples.gap_simulation)",
        "flag_values": np.array([0, 1], np.int8),
        "flag_meanings": "as_observed gap_simulated",
    },
    "static": {"long_name": "static layers of the sample's pixel", "units": "see static_units"},
    "target": {
        "long_name": "GLASS-MODIS surface soil moisture on the sample day (training target)",
        "units": "m3 m-3",
    },
    "split": {
        "long_name": "train / validation / test split",
        "flag_values": np.array([TRAIN, VALIDATION, TEST], np.int8),
        "flag_meanings": " ".join(SPLITS),
    },
    "row": {"long_name": "row of the global 0.05 degree grid (0 = northernmost)"},
    "col": {"long_name": "column of the global 0.05 degree grid (0 = 180 W)"},
}
# per day and variable of a stack: the share of the region's land its valid values cover
COVERAGE_SUFFIX = "_land_coverage"


def coverage_attrs(name: str) -> dict[str, Any]:
    """Attributes of ``{name}_land_coverage`` in a stack."""
    return {
        "long_name": f"share of the region's land pixels with a valid {name} value, as observed "
        "(before gap filling)",
        "units": "1",
        "valid_min": 0.0,
        "valid_max": 1.0,
    }


DYNAMIC_UNITS = {name: STACK_ATTRS[name]["units"] for name in DYNAMIC_FEATURES}
STATIC_UNITS = {name: str(STATIC_ATTRS[name]["units"]) for name in STATIC_FEATURES}

# ---- inference tiles and the daily product ----------------------------------------------------
FLAG_GAP_FILLED, FLAG_OUTSIDE_TRAINING, FLAG_SHORT_HISTORY, FLAG_CLIPPED = 1, 2, 4, 8
QUALITY_ATTRS = {
    "long_name": "quality flag of the soil moisture estimate",
    "flag_masks": np.array([1, 2, 4, 8], np.int8),
    "flag_meanings": "input_gap_filled input_outside_training_range short_history clipped_to_valid_range",
    "valid_range": np.array([0, 15], np.int8),
}
SM_ATTRS = {
    "long_name": "surface (0-5 cm) volumetric soil moisture",
    "standard_name": "volume_fraction_of_condensed_water_in_soil",
    "units": "m3 m-3",
}
# the soil moisture's standard error per pixel-day (avhrrsm.learn.uncertainty), an ancillary
# variable of it (CF standard-name modifier standard_error)
SM_UNCERTAINTY_ATTRS = {
    "long_name": "standard error of the surface (0-5 cm) volumetric soil moisture",
    "standard_name": "volume_fraction_of_condensed_water_in_soil standard_error",
    "units": "m3 m-3",
    "comment": (
        "one standard deviation of the value's error, from the product model's residuals on "
        "the validation split per error class (the day's gap-filled inputs, inputs outside the "
        "training range, short history, wetness); a Gaussian interval of +-1.645 of it holds "
        "the truth 90 % of the time where the calibration holds"
    ),
}
