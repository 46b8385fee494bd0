"""The raw files each job reads, listed before it runs.

Jobs read GLASS, GLASS-MODIS and ESA CCI days by pattern (a missing day is counted and filled,
not a reason to stop the DAG) and the in-situ data and MERIT tiles through folders. Listing the
files that exist, as the rules' inputs, makes every raw file a job reads part of what decides
its rerun (a replaced file is newer than the output, an added or removed one changes the input
set) and of its provenance (each is hashed, through the hash cache of
:mod:`avhrrsm.provenance`).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import pandas as pd

from avhrrsm.io.glass import composite_start, matching_files
from avhrrsm.io.layouts import GLASS_ALBEDO
from avhrrsm.io.paths import walk_files
from avhrrsm.variables import GLASS_MODIS_YEARS


def _days(years: Iterable[int]) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(
        [d for y in years for d in pd.date_range(f"{y}-01-01", f"{y}-12-31", freq="D")]
    )


def daily_files(pattern: str, days: Iterable[pd.Timestamp]) -> list[str]:
    """Every existing file a daily pattern matches on these days (all matches of a ``*``)."""
    return [str(path) for day in days for path in matching_files(pattern, day)]


def monthly_files(pattern: str, years: Iterable[int], existing_only: bool) -> list[str]:
    """The month files of ``pattern`` (``{year}``, ``{month}``) of these years."""
    paths = [pattern.format(year=y, month=m) for y in years for m in range(1, 13)]
    return [p for p in paths if Path(p).is_file()] if existing_only else paths


def stack_year_files(patterns: Mapping[str, str], year: int) -> dict[str, list[str]]:
    """What the stack job of ``year`` reads, for the products ``patterns`` names: ERA5-Land's 12
    months (required), and the GLASS albedo composites, GLASS LST days and GLASS-MODIS days that
    exist."""
    days = _days([year])
    composites = [d for d in days if composite_start(d, GLASS_ALBEDO.composite_days) == d]
    listers = {
        "era5land": lambda p: monthly_files(p, [year], existing_only=False),
        "glass_albedo": lambda p: daily_files(p, composites),
        "glass_lst": lambda p: daily_files(p, days),
        "glass_modis": lambda p: daily_files(p, days) if year in GLASS_MODIS_YEARS else [],
    }
    return {name: lister(patterns[name]) for name, lister in listers.items() if name in patterns}


def validation_files(patterns: Mapping[str, str], years: Sequence[int]) -> dict[str, list[str]]:
    """The ERA5-Land months and ESA CCI days of the validation years that exist, for the
    products ``patterns`` names."""
    listers = {
        "era5land": lambda p: monthly_files(p, years, existing_only=True),
        "esa_cci": lambda p: daily_files(p, _days(years)),
    }
    return {name: lister(patterns[name]) for name, lister in listers.items() if name in patterns}


def tree_files(path: str | Path) -> list[str]:
    """A file, or every file under a folder (through linked folders); none where absent."""
    path = Path(path)
    if path.is_file():
        return [str(path)]
    return [str(p) for p in walk_files(path)] if path.is_dir() else []


def vrt_files(path: str | Path) -> list[str]:
    """A GDAL VRT and the files it references (``SourceFilename``), or the file itself."""
    path = Path(path)
    if path.suffix.lower() != ".vrt" or not path.is_file():
        return [str(path)]
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError:
        return [str(path)]  # the reader says what is wrong with it
    members = []
    for source in root.iter("SourceFilename"):
        name = (source.text or "").strip()
        relative = source.get("relativeToVRT", "0") == "1"
        member = path.parent / name if relative else Path(name)
        if member.is_file() and str(member) not in members:
            members.append(str(member))
    return [str(path), *members]


def static_files(merit_folder: str | Path, soilgrids: Iterable[str]) -> dict[str, list[str]]:
    """The MERIT tiles under the DEM folder and the SoilGrids VRTs with their tiles."""
    return {
        "merit_dem": [p for p in tree_files(merit_folder) if p.endswith("_dem.tif")],
        "soilgrids": [member for vrt in soilgrids for member in vrt_files(vrt)],
    }
