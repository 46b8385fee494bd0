"""The layouts of the real gridded products, as small declarative specs.

Each spec holds what a reader needs to know about one product as its portal ships it: the
names of the scientific data sets (SDS) or variables, the packing (scale, offset, fill), the
valid range of the stored integers, the grid and the temporal step. The defaults are the real
products' values; ``config.yaml``'s ``layouts:`` section overrides any of them (e.g. another
GLASS version with another scale), so no reader carries these numbers as constants.

Sources: GLASS02B05 (albedo) SDS names, int16 packing with scale 1e-4 and "negative values are
invalid" from NASA-LIS/LISF ``lvt/datastreams/GLASSalbedo/readGLASSalbedoObs.F90``; the 0.05
degree CMG grid (7200 x 3600, north-up from 90 N, 180 W) from the same reader's offsets; the
ESA CCI SM flag bits (v08/v09 COMBINED: bit values and meanings, fill 127) from the metadata
files of TU Wien's ``esa_cci_sm`` package (``src/esa_cci_sm/metadata/*.ini``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class HdfGridLayout:
    """One GLASS HDF4 product on the global 0.05 degree CMG grid.

    ``scale_factor``, ``add_offset`` and ``fill_value`` are used where the SDS carries no such
    attribute; a value given in the config overrides the file's attribute too. Stored
    integers outside ``valid_min..valid_max`` (before scaling) are invalid.
    """

    product: str
    sds: Mapping[str, str]
    composite_days: int
    scale_factor: float
    add_offset: float
    fill_value: int
    valid_min: int
    valid_max: int
    units: str
    shape: tuple[int, int] = (3600, 7200)  # rows from 90 N, columns from 180 W
    overrides: frozenset[str] = field(default_factory=frozenset)
    # the range a decoded value must lie in (physics, not packing): outside it the packing is
    # wrong, and the reader says where the packing it used came from
    physical_range: tuple[float, float] | None = None


GLASS_ALBEDO = HdfGridLayout(
    product="GLASS-AVHRR albedo (GLASS02B05)",
    sds={
        "albedo_bsa_vis": "ABD_BSA_VIS",
        "albedo_bsa_nir": "ABD_BSA_NIR",
        "albedo_bsa_shortwave": "ABD_BSA_shortwave",
    },
    composite_days=8,
    scale_factor=1e-4,
    add_offset=0.0,
    fill_value=-1,
    valid_min=0,
    valid_max=10000,
    units="1",
)

GLASS_LST = HdfGridLayout(
    product="GLASS-AVHRR LST (GLASS08B31)",
    sds={"lst": "LST"},
    composite_days=1,
    scale_factor=0.01,
    add_offset=0.0,
    fill_value=0,
    valid_min=1,
    valid_max=65534,
    units="K",
    physical_range=(150.0, 360.0),
)


@dataclass(frozen=True)
class GeoTiffLayout:
    """A GeoTIFF product: its nodata (where the file has no tag), packing (where the file has
    no scale/offset tags) and the physical valid range. Config values win over the tags."""

    product: str
    nodata: float
    scale_factor: float
    add_offset: float
    valid_min: float
    valid_max: float
    units: str
    overrides: frozenset[str] = field(default_factory=frozenset)


GLASS_MODIS = GeoTiffLayout(
    product="GLASS-MODIS soil moisture",
    nodata=-9999.0,
    scale_factor=1.0,
    add_offset=0.0,
    valid_min=0.0,
    valid_max=1.0,
    units="m3 m-3",
)

# ESA CCI SM v07+ flag bits. Bit 64 (barren ground) is advisory: the estimate is valid.
CCI_FLAG_BITS = {
    1: "snow_coverage_or_temperature_below_zero",
    2: "dense_vegetation",
    4: "others_no_convergence_in_the_model_thus_no_valid_sm_estimates",
    8: "soil_moisture_value_exceeds_physical_boundary",
    16: "weight_of_measurement_below_threshold",
    32: "all_datasets_deemed_unreliable",
    64: "barren_ground_advisory_flag",
    128: "not_used",
}
# every bit but the barren-ground advisory (128 is unused; kept so that a future meaning masks)
CCI_INVALID_FLAG_BITS = 1 | 2 | 4 | 8 | 16 | 32 | 128

# ERA5-Land swvl1 below this is not a rounding artefact of the land-surface model but an error.
ERA5LAND_MIN_SWVL1 = -0.05


@dataclass(frozen=True)
class Nsidc0712Layout:
    """The SMAP/In Situ Core Validation Site match-up files (NSIDC-0712): which column holds the
    in-situ (upscaled, reference-pixel) soil moisture, and the reference-pixel grid sizes (km) the
    two-digit scale of the file name may take. Values below ``valid_min`` are fill (-9999)."""

    insitu_column: str
    valid_min: float
    valid_max: float
    grid_km: tuple[int, ...]


# 'WASM' (the weighted average of the site's sensors over the reference pixel) is the column
# public readers of NSIDC-0712 take as the in-situ value (e.g. fkwai/MatlabScripts,
# dataset/readSMAPval_script.m); the file layout (description line, column-name line starting
# Yr,Mo,Day,Hr,Min, comma separated values) from the NSIDC-0712 user guide and those readers.
NSIDC0712 = Nsidc0712Layout(insitu_column="WASM", valid_min=0.0, valid_max=1.0, grid_km=(3, 9, 36))


def nsidc0712_layout(overrides: Mapping[str, Any] | None = None) -> Nsidc0712Layout:
    """The NSIDC-0712 spec with the config's ``layouts.nsidc0712`` values applied."""
    changes = {k: v for k, v in (overrides or {}).items() if k in ("insitu_column",)}
    return replace(NSIDC0712, **changes)


GLASS_LAYOUTS = {"glass_albedo": GLASS_ALBEDO, "glass_lst": GLASS_LST}
OVERRIDABLE = ("scale_factor", "add_offset", "fill_value", "valid_min", "valid_max")


def glass_modis_layout(overrides: Mapping[str, Any] | None = None) -> GeoTiffLayout:
    """The GLASS-MODIS spec with the config's ``layouts.glass_modis`` values applied."""
    changes = {k: v for k, v in (overrides or {}).items() if k in OVERRIDABLE + ("nodata",)}
    return replace(GLASS_MODIS, **changes, overrides=frozenset(changes))


def glass_layout(name: str, overrides: Mapping[str, Any] | None = None) -> HdfGridLayout:
    """The spec of ``glass_albedo`` or ``glass_lst`` with the config's ``layouts.{name}``
    values applied (``sds`` maps stack variables to other SDS names)."""
    base = GLASS_LAYOUTS[name]
    overrides = dict(overrides or {})
    changes: dict[str, Any] = {k: overrides[k] for k in OVERRIDABLE if k in overrides}
    if "sds" in overrides:
        changes["sds"] = {**base.sds, **overrides["sds"]}
    return replace(base, **changes, overrides=frozenset(changes) - {"sds"})
