"""The raw files each job reads, listed before it runs.

Jobs read GLASS, GLASS-MODIS and ESA CCI days by pattern (a missing day is counted and filled,
not a reason to stop the DAG) and the in-situ data and MERIT tiles through folders. Listing the
files that exist, as the rules' inputs, makes every raw file a job reads part of what decides
its rerun (a replaced file is newer than the output, an added or removed one changes the input
set) and of its provenance (each is hashed, through the hash cache of
:mod:`avhrrsm.hashing`).
"""

from __future__ import annotations

import glob
import os
import re
import string
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import pandas as pd

from avhrrsm.days import year_days, years_days
from avhrrsm.io.glass import composite_start, matching_files, pattern_fields
from avhrrsm.io.layouts import GLASS_ALBEDO
from avhrrsm.io.paths import walk_files
from avhrrsm.variables import GLASS_MODIS_YEARS


def daily_files(pattern: str, days: Iterable[pd.Timestamp]) -> list[str]:
    """Every existing file a daily pattern matches on these days (all matches of a ``*``), in
    day order and, within a day, name order: what :func:`~avhrrsm.io.glass.matching_files`
    gives day by day, with each folder listed once (a global DAG asks for ~40,000 days)."""
    days = list(days)
    folder_pattern, name_pattern = os.path.split(pattern)
    name_regex = _name_regex(name_pattern)
    if glob.has_magic(folder_pattern) or name_regex is None:
        return [str(path) for day in days for path in matching_files(pattern, day)]
    regex, fields = name_regex
    # the days of each folder, in day order; every folder read once
    by_folder: dict[str, list[pd.Timestamp]] = defaultdict(list)
    for day in days:
        by_folder[folder_pattern.format(**pattern_fields(day))].append(day)
    found: dict[pd.Timestamp, list[str]] = {}
    for folder, folder_days in by_folder.items():
        names_by_key: dict[tuple[str, ...], list[str]] = defaultdict(list)
        for name, is_file in _listing(folder):
            match = regex.fullmatch(name)
            # a literal name must be a file (as Path.is_file); a wildcard, anything (as glob)
            if match and (is_file or glob.has_magic(name_pattern)):
                if name.startswith(".") and not name_pattern.startswith("."):
                    continue  # glob leaves hidden names out
                names_by_key[match.groups()].append(name)
        for day in folder_days:
            values = pattern_fields(day)
            key = tuple(format(values[field], spec) for field, spec in fields)
            found[day] = [str(Path(folder, n)) for n in sorted(names_by_key.get(key, []))]
    return [path for day in days for path in found[day]]


FIELD_DIGITS = {"year": 4, "month": 2, "day": 2, "doy": 3}  # the most digits a field has


def _name_regex(name_pattern: str) -> tuple[re.Pattern[str], list[tuple[str, str]]] | None:
    """A file-name pattern (``{doy:03d}`` fields, ``*`` and ``?`` wildcards) as one regular
    expression whose groups are the fields as formatted, and the (field, spec) of each group.

    Only where a name splits into fields one way: every field of a fixed width (zero-padded to
    at least its most digits, or a bare ``{year}``) and every wildcard after the last field.
    None otherwise (and for ``[`` classes, conversions): the caller globs day by day."""
    parts: list[str] = []
    fields: list[tuple[str, str]] = []
    for literal, field, spec, conversion in string.Formatter().parse(name_pattern):
        if "[" in literal or conversion or (field is not None and glob.has_magic(literal)):
            return None
        parts.append(
            "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in literal)
        )
        if field is None:
            continue
        if field not in FIELD_DIGITS:
            return None
        width = re.fullmatch(r"0(\d+)d", spec or "")
        if width and int(width.group(1)) >= FIELD_DIGITS[field]:
            digits = int(width.group(1))
        elif field == "year" and not spec:
            digits = 4
        else:
            return None
        parts.append(f"(\\d{{{digits}}})")
        fields.append((field, spec or ""))
    return re.compile("".join(parts), re.DOTALL), fields


def _listing(folder: str) -> list[tuple[str, bool]]:
    """The entries of ``folder`` (name, whether a file, through links); none where absent."""
    try:
        with os.scandir(folder or ".") as entries:
            return [(entry.name, entry.is_file()) for entry in entries]
    except (FileNotFoundError, NotADirectoryError):
        return []


def monthly_files(pattern: str, years: Iterable[int], existing_only: bool) -> list[str]:
    """The month files of ``pattern`` (``{year}``, ``{month}``) of these years."""
    paths = [pattern.format(year=y, month=m) for y in years for m in range(1, 13)]
    return [p for p in paths if Path(p).is_file()] if existing_only else paths


def stack_year_files(patterns: Mapping[str, str], year: int) -> dict[str, list[str]]:
    """What the stack job of ``year`` reads, for the products ``patterns`` names: ERA5-Land's 12
    months (required), and the GLASS albedo composites, GLASS LST days and GLASS-MODIS days that
    exist."""
    days = year_days(year)
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
        "esa_cci": lambda p: daily_files(p, years_days(years)),
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
