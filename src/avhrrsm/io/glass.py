"""Readers of the GLASS-AVHRR HDF4 products: albedo (GLASS02B05, 8-day) and LST (GLASS08B31).

The files are HDF4 (HDF-EOS2 grid) with one SDS per band on the global 0.05 degree CMG grid
(7200 x 3600, north-up from 90 N, 180 W, no coordinate variables), read through ``pyhdf``
(whose wheels bundle the HDF4 library). Only the rows and columns of the requested window are
read. Names carry a production date that is not known in advance, so path patterns may hold a
``*`` (``GLASS02B05.V04.A{year}{doy:03d}.*.hdf``): :func:`find_file` resolves it.
"""

from __future__ import annotations

import glob
import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from avhrrsm.grid import Window
from avhrrsm.io.errors import InputError, require_file
from avhrrsm.io.layouts import HdfGridLayout

LOGGER = logging.getLogger(__name__)
HDF4_MAGIC = b"\x0e\x03\x13\x01"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def pattern_fields(day: pd.Timestamp) -> dict[str, int]:
    """The fields a daily path pattern may use."""
    return {"year": day.year, "month": day.month, "day": day.day, "doy": day.day_of_year}


def matching_files(pattern: str, day: pd.Timestamp) -> list[Path]:
    """The files of ``day`` for a pattern that may hold ``*`` (a production date, tiles), in
    name order; none where there is none."""
    name = pattern.format(**pattern_fields(day))
    if glob.has_magic(name):
        return sorted(Path(p) for p in glob.glob(name))
    return [Path(name)] if Path(name).is_file() else []


def find_file(pattern: str, day: pd.Timestamp) -> Path | None:
    """The one file of ``day`` for a pattern whose ``*`` is the production date.

    None when there is none; where several match (reprocessed files), the last in name order
    (the newest production date) is used and the others are logged.
    """
    matches = matching_files(pattern, day)
    if len(matches) > 1:
        LOGGER.warning("%d files match for %s; using %s", len(matches), day.date(), matches[-1])
    return matches[-1] if matches else None


def composite_start(day: pd.Timestamp, composite_days: int) -> pd.Timestamp:
    """The first day of the composite that covers ``day`` (8-day periods start on day 1,
    9, 17, ... of each year; the last one of a year is shorter)."""
    start_doy = (day.day_of_year - 1) // composite_days * composite_days + 1
    return pd.Timestamp(year=day.year, month=1, day=1) + pd.Timedelta(days=start_doy - 1)


def _check_hdf4(path: Path, product: str) -> None:
    with open(path, "rb") as handle:
        magic = handle.read(8)
    if magic.startswith(HDF4_MAGIC):
        return
    if magic == HDF5_MAGIC:
        raise InputError(
            path,
            f"is an HDF5/NetCDF4 file where {product} HDF4 is expected",
            "download the HDF4 (.hdf) files the GLASS portal distributes",
        )
    raise InputError(path, f"is not an HDF4 file ({product})")


def _attribute(attributes: Mapping[str, Any], *names: str) -> Any:
    for name in names:
        if name in attributes:
            value = attributes[name]
            return value[0] if isinstance(value, list | tuple) else value
    return None


def read_glass_sds(
    path: str | Path, layout: HdfGridLayout, variable: str, window: Window
) -> np.ndarray:
    """One band of a GLASS HDF4 file over ``window`` (rows/cols of the global 0.05 degree
    grid), as float32 with scaling applied and invalid values as NaN."""
    return read_glass_bands(path, layout, [variable], window)[variable]


def read_glass_bands(
    path: str | Path, layout: HdfGridLayout, variables: Sequence[str], window: Window
) -> dict[str, np.ndarray]:
    """Several bands of one GLASS HDF4 file over ``window`` (the file opened and checked
    once), each as in :func:`read_glass_sds`."""
    from pyhdf.error import HDF4Error
    from pyhdf.SD import SD, SDC

    path = require_file(path, layout.product)
    _check_hdf4(path, layout.product)
    try:
        hdf = SD(str(path), SDC.READ)
    except HDF4Error as err:
        raise InputError(path, f"not a readable {layout.product} HDF4 file ({err})") from err
    bands = {}
    try:
        _check_grid(path, hdf.attributes().get("StructMetadata.0"), layout)
        names = hdf.datasets()
        for variable in variables:
            sds_name = layout.sds[variable]
            if sds_name not in names:
                raise InputError(
                    path,
                    f"{layout.product}: SDS {sds_name!r} not found",
                    f"SDS in the file: {', '.join(sorted(names)) or 'none'}",
                )
            try:
                raw, attributes = _read_window(hdf.select(sds_name), path, layout, window)
            except HDF4Error as err:
                raise InputError(
                    path, f"{layout.product}: SDS {sds_name} cannot be read ({err})"
                ) from err
            bands[variable] = decode(raw, attributes, layout, path)
    except HDF4Error as err:  # the file's own structures (attributes, SDS list)
        raise InputError(path, f"{layout.product}: not a readable HDF4 file ({err})") from err
    finally:
        hdf.end()
    return bands


def _read_window(
    sds: Any, path: Path, layout: HdfGridLayout, window: Window
) -> tuple[np.ndarray, Mapping[str, Any]]:
    """The window of one SDS (checked to be the global grid) and its attributes."""
    try:
        info = sds.info()
        shape = tuple(info[2]) if info[1] > 1 else (info[2],)
        if shape != layout.shape:
            raise InputError(
                path,
                f"{layout.product}: SDS {info[0]} is {shape[0]} x {shape[-1]}, not the "
                f"global 0.05 degree grid {layout.shape[0]} x {layout.shape[1]}",
                "give the global files as distributed, not a subset",
            )
        raw = sds[window.row_start : window.row_stop, window.col_start : window.col_stop]
        return np.asarray(raw), sds.attributes()
    finally:
        sds.endaccess()


CMG_CORNERS = ((-180.0, 90.0), (180.0, -90.0))  # upper left, lower right (degrees)


def _gctp_degrees(packed: float) -> float:
    """GCTP's packed DDDMMMSSS.SS angle (HDF-EOS2 grid corners) in decimal degrees."""
    sign = -1.0 if packed < 0 else 1.0
    value = abs(packed)
    degrees = value // 1_000_000
    minutes = (value - degrees * 1_000_000) // 1000
    seconds = value - degrees * 1_000_000 - minutes * 1000
    return sign * (degrees + minutes / 60.0 + seconds / 3600.0)


def _check_grid(path: Path, struct_metadata: str | None, layout: HdfGridLayout) -> None:
    """Where the file is an HDF-EOS2 grid, its StructMetadata.0 must describe the global
    geographic 0.05 degree grid (a plain HDF4 file is taken to be on it; its SDS sizes are
    checked either way)."""
    if not struct_metadata:
        return
    fields = dict(re.findall(r"^\s*(\w+)=(.*?)\s*$", struct_metadata, re.MULTILINE))
    problems = []
    if fields.get("Projection", "GCTP_GEO") != "GCTP_GEO":
        problems.append(f"projection {fields['Projection']}")
    size = (int(fields.get("YDim", layout.shape[0])), int(fields.get("XDim", layout.shape[1])))
    if size != layout.shape:
        problems.append(f"{size[0]} x {size[1]} cells")
    for key, expected in zip(("UpperLeftPointMtrs", "LowerRightMtrs"), CMG_CORNERS, strict=True):
        if key in fields:
            corner = tuple(_gctp_degrees(float(v)) for v in fields[key].strip("()").split(","))
            if any(abs(a - b) > 1e-6 for a, b in zip(corner, expected, strict=True)):
                problems.append(f"{key} {corner}")
    if problems:
        raise InputError(
            path,
            f"{layout.product}: the HDF-EOS2 grid is not the global 0.05 degree CMG "
            f"({'; '.join(problems)})",
            "give the global files as distributed",
        )


def decode(
    raw: np.ndarray, attributes: Mapping[str, Any], layout: HdfGridLayout, path: str | Path
) -> np.ndarray:
    """Stored integers -> physical float32: fill and out-of-range as NaN, then scale/offset.

    A value from the config (``layout.overrides``) wins over the SDS attribute, which wins
    over the layout's default.
    """

    sources: dict[str, str] = {}

    def pick(key: str, *names: str) -> Any:
        if key in layout.overrides:
            sources[key] = "the config (layouts)"
            return getattr(layout, key)
        found = _attribute(attributes, *names)
        sources[key] = "the layout's default: the SDS has none" if found is None else "the SDS"
        return getattr(layout, key) if found is None else found

    scale = float(pick("scale_factor", "scale_factor"))
    offset = float(pick("add_offset", "add_offset"))
    fill = pick("fill_value", "_FillValue")
    valid = attributes.get("valid_range")
    valid_min, valid_max = layout.valid_min, layout.valid_max
    if valid is not None and not {"valid_min", "valid_max"} & layout.overrides:
        valid_min, valid_max = float(valid[0]), float(valid[1])
    if not np.isfinite(scale) or scale == 0:
        raise InputError(path, f"{layout.product}: scale_factor {scale} is not usable")
    bad = raw < valid_min
    bad |= raw > valid_max
    if fill is not None:
        bad |= raw == fill
    # in float32 and in place: a global band is 26 million values
    values = raw.astype(np.float32)
    values *= np.float32(scale)
    if offset:
        values += np.float32(offset)
    values[bad] = np.nan
    if layout.physical_range is not None and np.isfinite(values).any():
        low, high = float(np.nanmin(values)), float(np.nanmax(values))
        if low < layout.physical_range[0] or high > layout.physical_range[1]:
            raise InputError(
                path,
                f"{layout.product} decodes to {low:.4g}..{high:.4g} {layout.units}, outside "
                f"{layout.physical_range[0]:g}..{layout.physical_range[1]:g} {layout.units}: "
                f"scale_factor {scale:g} from {sources['scale_factor']}, add_offset "
                f"{offset:g} from {sources['add_offset']}",
                "set the right packing under layouts: in the config",
            )
    return values
