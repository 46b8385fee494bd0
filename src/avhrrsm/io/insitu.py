"""Readers of the field- and footprint-scale in-situ files as their portals ship them.

- COSMOS-UK (EIDC release): a daily ``pandas.DataFrame`` indexed by UTC day with a
  ``soil_moisture`` column in m3 m-3 (NaN where missing) and the site's metadata in ``.attrs``.
- SMAP core validation sites (NSIDC-0712 match-up files): the in-situ reference-pixel soil
  moisture at the SMAP overpass times (UTC), with the reference pixel's identity from the file
  name in ``.attrs``; its position comes from the data set's site table
  (:func:`read_nsidc0712_site_table`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from avhrrsm.io.errors import InputError, require_file
from avhrrsm.io.layouts import NSIDC0712, Nsidc0712Layout
from avhrrsm.io.paths import walk_files

MISSING = -9999.0


def _daily_index(values: pd.Series, path: Path) -> pd.DatetimeIndex:
    stamps = pd.to_datetime(values, errors="coerce", utc=True)
    if stamps.isna().any():
        first = int(np.flatnonzero(stamps.isna().to_numpy())[0])
        raise InputError(path, f"unreadable date {values.iloc[first]!r} in data row {first + 1}")
    index = pd.DatetimeIndex(stamps).floor("D")
    if index.has_duplicates:
        raise InputError(path, "duplicated days", "each day must appear once")
    return index


COSMOS_DAILY_FILE = re.compile(r"^cosmos-uk_(?P<site>[a-z0-9]+)_hydrosoil_daily_.*\.csv$", re.I)
COSMOS_SITE_METADATA_FILE = re.compile(r"^cosmos-uk_sitemetadata_.*\.csv$", re.I)
COSMOS_METADATA_COLUMNS = ("SITE_ID", "LATITUDE", "LONGITUDE")


def cosmos_uk_files(folder: str | Path) -> tuple[list[Path], Path | None]:
    """The daily files and the one site-metadata file of a COSMOS-UK release (the EIDC layout:
    ``COSMOS-UK_{SITE}_HydroSoil_Daily_{first}-{last}.csv`` per site and
    ``COSMOS-UK_SiteMetadata_{first}-{last}.csv`` for all; names in any case). Where several
    metadata files lie in the folder, the last in name order (the newest release) is used."""
    folder = Path(folder)
    names = sorted(p for p in folder.iterdir() if p.is_file())
    daily = [p for p in names if COSMOS_DAILY_FILE.match(p.name)]
    metadata = [p for p in names if COSMOS_SITE_METADATA_FILE.match(p.name)]
    return daily, (metadata[-1] if metadata else None)


def read_cosmos_uk_site_metadata(path: str | Path) -> pd.DataFrame:
    """The release's ``COSMOS-UK_SiteMetadata_*.csv``: one row per site, indexed by SITE_ID, with
    upper-case columns (SITE_NAME, LATITUDE, LONGITUDE, ALTITUDE, ... as the release has them)."""
    path = require_file(path, "COSMOS-UK site metadata")
    try:
        frame = pd.read_csv(path, encoding_errors="replace")
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise InputError(path, f"not a readable COSMOS-UK site metadata CSV ({err})") from err
    frame.columns = [str(c).strip().upper() for c in frame.columns]
    missing = [c for c in COSMOS_METADATA_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(
            path,
            f"COSMOS-UK site metadata columns missing: {', '.join(missing)}",
            f"columns in the file: {', '.join(frame.columns)}",
        )
    frame["SITE_ID"] = frame["SITE_ID"].astype(str).str.strip().str.upper()
    if frame["SITE_ID"].duplicated().any():
        twice = sorted(set(frame.loc[frame["SITE_ID"].duplicated(), "SITE_ID"]))
        raise InputError(path, f"sites listed twice: {', '.join(twice)}")
    for column, limit in (("LATITUDE", 90.0), ("LONGITUDE", 180.0)):
        text = frame[column].astype(str).str.strip()
        empty = frame[column].isna() | text.eq("")
        degrees = pd.to_numeric(frame[column], errors="coerce")
        bad = (~empty & (degrees.isna() | (degrees.abs() > limit))).to_numpy()
        if bad.any():
            rows = [f"{frame['SITE_ID'].iloc[k]} {text.iloc[k]!r}" for k in np.flatnonzero(bad)]
            raise InputError(
                path,
                f"{column} is not a number of degrees within +-{limit:g} for site(s) "
                f"{', '.join(rows[:5])}",
                "the release gives decimal degrees, north and east positive (52.5, -1.2)",
            )
        frame[column] = degrees
    return frame.set_index("SITE_ID")


def read_cosmos_uk(path: str | Path, site_metadata: pd.DataFrame | None = None) -> pd.DataFrame:
    """A COSMOS-UK daily file: ``soil_moisture`` (COSMOS_VWC % -> m3 m-3), ``effective_depth_cm``
    (D86_75M). -9999 is missing; column names in any case. ``attrs``: site_id, and
    site_name/latitude/longitude/elevation from the release's site metadata
    (:func:`read_cosmos_uk_site_metadata`) where it lists the site."""
    path = require_file(path, "COSMOS-UK")
    try:
        frame = pd.read_csv(path, na_values=[MISSING, "-9999", "-9999.0"], low_memory=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as err:
        raise InputError(path, f"not a readable COSMOS-UK CSV file ({err})") from err
    frame.columns = [str(c).strip().upper() for c in frame.columns]
    missing = [c for c in ("SITE_ID", "DATE_TIME", "COSMOS_VWC") if c not in frame.columns]
    if missing:
        raise InputError(
            path,
            f"COSMOS-UK columns missing: {', '.join(missing)}",
            f"columns in the file: {', '.join(map(str, frame.columns))}",
        )
    vwc = pd.to_numeric(frame["COSMOS_VWC"], errors="coerce")
    if vwc.notna().any() and vwc.max() <= 1.0 and vwc.max() > 0:
        raise InputError(
            path,
            "COSMOS_VWC values are all <= 1: they look like m3 m-3, not percent",
            "COSMOS-UK gives volumetric water content in %",
        )
    if vwc.notna().any() and (vwc.min() < 0 or vwc.max() > 100):
        raise InputError(
            path, f"COSMOS_VWC values {vwc.min():.4g}..{vwc.max():.4g} outside 0..100 %"
        )
    if frame.empty:
        raise InputError(
            path,
            "COSMOS-UK daily file has a header but no data rows",
            "an interrupted download or copy leaves this: download the site's file again",
        )
    result = pd.DataFrame(
        {
            "soil_moisture": (vwc / 100.0).to_numpy(),
            "effective_depth_cm": pd.to_numeric(
                frame["D86_75M"]
                if "D86_75M" in frame.columns
                else pd.Series(np.nan, index=frame.index),
                errors="coerce",
            ).to_numpy(),
        },
        index=_daily_index(frame["DATE_TIME"], path),
    )
    result.index.name = "date"
    result = result.sort_index()
    site_id = str(frame["SITE_ID"].iloc[0]).strip().upper()
    attrs: dict[str, object] = {
        "site_id": site_id,
        "network": "COSMOS-UK",
        "path": str(path),
        "n_missing_days": int(result["soil_moisture"].isna().sum()),
    }
    if site_metadata is not None and site_id in site_metadata.index:
        meta = site_metadata.loc[site_id]
        if not (np.isfinite(meta["LATITUDE"]) and np.isfinite(meta["LONGITUDE"])):
            attrs["no_position"] = True  # the metadata lists the site without a position
            result.attrs.update(attrs)
            return result
        attrs.update(
            site_name=str(meta.get("SITE_NAME", site_id)),
            latitude=float(meta["LATITUDE"]),
            longitude=float(meta["LONGITUDE"]),
            elevation=float(meta.get("ALTITUDE", np.nan)),
        )
    result.attrs.update(attrs)
    return result


# --------------------------------------------------------------------------------------------
# SMAP/In Situ Core Validation Site Land Surface Parameters Match-Up Data (NSIDC-0712)
# --------------------------------------------------------------------------------------------

# NSIDC-0712_{site id (4)}{grid km (2)}{pixel (2)}_{product}_{version}_{first day}_{last day}.txt,
# e.g. NSIDC-0712_16013601_SMAPL2SMP_R13080_20150401_20160331.txt
NSIDC0712_FILE = re.compile(
    r"^NSIDC-0712_(?P<site>\d{4})(?P<grid>\d{2})(?P<pixel>\d{2})_(?P<product>[A-Za-z0-9]+)_"
    r"(?P<version>[A-Za-z0-9]+)_(?P<first>\d{8})_(?P<last>\d{8})\.txt$",
    re.IGNORECASE,
)
NSIDC0712_TIME_COLUMNS = ("YR", "MO", "DAY", "HR", "MIN")


@dataclass(frozen=True)
class Nsidc0712Name:
    """What an NSIDC-0712 file name says: the reference pixel (site id, grid size, pixel number),
    the SMAP product and version matched up, and the period."""

    site_id: str
    reference_pixel: str
    grid_km: int
    product: str
    version: str
    first_day: str
    last_day: str


def parse_nsidc0712_name(name: str) -> Nsidc0712Name | None:
    """The parts of an NSIDC-0712 match-up file name, or None for any other name."""
    match = NSIDC0712_FILE.match(name)
    if match is None:
        return None
    return Nsidc0712Name(
        site_id=match["site"],
        reference_pixel=match["site"] + match["grid"] + match["pixel"],
        grid_km=int(match["grid"]),
        product=match["product"].upper(),
        version=match["version"].upper(),
        first_day=match["first"],
        last_day=match["last"],
    )


def nsidc0712_files(folder: str | Path) -> tuple[list[Path], list[Path]]:
    """(match-up files, every other file) under ``folder``, searched recursively through linked
    folders too (NSIDC's download tools write one folder per granule date), in path order."""
    matched, others = [], []
    for path in walk_files(folder):
        (matched if parse_nsidc0712_name(path.name) else others).append(path)
    return matched, others


def read_nsidc0712(path: str | Path, layout: Nsidc0712Layout = NSIDC0712) -> pd.DataFrame:
    """One NSIDC-0712 match-up file: ``soil_moisture`` (the in-situ column of ``layout``, m3 m-3,
    NaN where fill) indexed by the UTC time of the SMAP overpass (``Yr,Mo,Day,Hr,Min``).

    Layout: line 1 describes the site and product, line 2 names the comma-separated columns
    (starting ``Yr,Mo,Day,Hr,Min``); lines between it and the first data line that do not start
    with a year (units) are skipped. A data line with another number of fields or an unreadable
    time or value is counted (``attrs['n_bad_lines']``, first one in ``first_bad_line``); a cut
    last line of a file without a final newline marks it ``truncated``. ``attrs`` also hold the
    parts of the file name (:class:`Nsidc0712Name`), the description and the columns.
    """
    path = require_file(path, "NSIDC-0712 match-up")
    name = parse_nsidc0712_name(path.name)
    if name is None:
        raise InputError(
            path,
            "not an NSIDC-0712 match-up file name",
            "NSIDC-0712_{site}{grid km}{pixel}_{product}_{version}_{first}_{last}.txt",
        )
    raw = path.read_bytes()
    lines = raw.decode("utf-8", errors="replace").splitlines()
    if len(lines) < 2:
        raise InputError(
            path,
            f"NSIDC-0712 file ends after {len(lines)} line(s), before its column-name line",
            "the file is truncated: download it again",
        )
    columns = [c.strip() for c in lines[1].split(",")]
    upper = [c.upper() for c in columns]
    if tuple(upper[:5]) != NSIDC0712_TIME_COLUMNS:
        raise InputError(
            path,
            f"line 2 is not the column-name line (Yr,Mo,Day,Hr,Min,...): {lines[1][:80]!r}",
        )
    if layout.insitu_column.upper() not in upper:
        raise InputError(
            path,
            f"no in-situ column '{layout.insitu_column}'",
            f"columns in the file: {', '.join(columns)}; set layouts.nsidc0712.insitu_column",
        )
    value_at = upper.index(layout.insitu_column.upper())
    kept: list[list[str]] = []
    numbers: list[int] = []
    bad: list[int] = []
    started = False
    for number, line in enumerate(lines[2:], start=3):
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split(",")]
        if not started and not fields[0].lstrip("-").isdigit():
            continue  # a units line between the column names and the data
        started = True
        if len(fields) != len(columns):
            bad.append(number)
            continue
        kept.append(fields[:5] + [fields[value_at]])
        numbers.append(number)
    if not started:
        raise InputError(path, "NSIDC-0712 file has no data line", "the file may be truncated")
    table = pd.DataFrame(kept, columns=["year", "month", "day", "hour", "minute", "value"])
    parts = table.apply(pd.to_numeric, errors="coerce")
    stamps = pd.to_datetime(
        parts[["year", "month", "day", "hour", "minute"]], errors="coerce", utc=True
    )
    readable = stamps.notna().to_numpy() & parts["value"].notna().to_numpy()
    bad += [n for n, ok in zip(numbers, readable, strict=True) if not ok]
    values = parts["value"].to_numpy(np.float64)[readable]
    fill = values < layout.valid_min
    if np.any(values[~fill] > layout.valid_max):
        raise InputError(
            path,
            f"{layout.insitu_column} up to {values[~fill].max():.4g}, above "
            f"{layout.valid_max:g} m3 m-3",
            "NSIDC-0712 gives soil moisture in m3 m-3; is this another column?",
        )
    result = pd.DataFrame(
        {"soil_moisture": np.where(fill, np.nan, values)},
        index=pd.DatetimeIndex(stamps[readable], name="time"),
    ).sort_index(kind="stable")
    truncated = bool(bad) and bad[-1] == len(lines) and not raw.endswith(b"\n")
    result.attrs.update(
        {
            "path": str(path),
            "network": "SMAP-CVS",
            "site_id": name.site_id,
            "reference_pixel": name.reference_pixel,
            "grid_km": name.grid_km,
            "product": name.product,
            "version": name.version,
            "description": lines[0].strip(),
            "columns": columns,
            "insitu_column": columns[value_at],
            "n_fill": int(fill.sum()),
            "n_bad_lines": len(bad),
            "first_bad_line": min(bad) if bad else 0,
            "truncated": truncated,
        }
    )
    return result


SITE_TABLE_COLUMNS: Mapping[str, tuple[str, ...]] = {
    "reference_pixel": ("REFERENCE_PIXEL", "REFERENCE PIXEL", "REFERENCE_PIXEL_ID", "PIXEL_ID"),
    "site_id": ("SITE_ID", "SITEID", "SITE ID", "ID"),
    "name": ("NAME", "SITE_NAME", "SITE NAME", "SITE"),
    "latitude": ("LATITUDE", "LAT"),
    "longitude": ("LONGITUDE", "LON", "LONG"),
}


def read_nsidc0712_site_table(path: str | Path) -> pd.DataFrame:
    """The core validation sites' table (the NSIDC-0712 user guide's site list, as CSV): one row
    per site (``site_id``, 4 digits) or per reference pixel (``reference_pixel``, 8 digits as in
    the file names), with ``latitude``, ``longitude`` (degrees) and an optional ``name``; column
    names in any case. Indexed by the reference pixel where given, else by the site id."""
    path = require_file(path, "SMAP core validation site table")
    try:
        frame = pd.read_csv(path, dtype=str, encoding_errors="replace", skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise InputError(path, f"not a readable site table CSV ({err})") from err
    columns = {str(c).strip().upper(): c for c in frame.columns}
    found = {
        key: next((columns[a] for a in aliases if a in columns), None)
        for key, aliases in SITE_TABLE_COLUMNS.items()
    }
    missing = [k for k in ("latitude", "longitude") if found[k] is None]
    if found["site_id"] is None and found["reference_pixel"] is None:
        missing.append("site_id or reference_pixel")
    if missing:
        raise InputError(
            path,
            f"site table columns missing: {', '.join(missing)}",
            f"columns in the file: {', '.join(map(str, frame.columns))}",
        )

    def column(key: str) -> pd.Series:
        source = found[key]
        return (
            frame[source].fillna("").str.strip()
            if source is not None
            else pd.Series("", frame.index)
        )

    pixel, site = column("reference_pixel"), column("site_id")
    key = pixel.where(pixel != "", site).str.zfill(4)
    key = key.where(pixel == "", pixel.str.zfill(8))
    lat = pd.to_numeric(column("latitude"), errors="coerce")
    lon = pd.to_numeric(column("longitude"), errors="coerce")
    unusable = (key.str.strip("0") == "") | ~key.str.isdigit() | lat.isna() | lon.isna()
    unusable |= (lat.abs() > 90) | (lon.abs() > 180)
    if unusable.any():
        row = int(np.flatnonzero(unusable.to_numpy())[0])
        raise InputError(
            path,
            f"site table row {row + 2} has no usable id or position: {frame.iloc[row].to_dict()}",
        )
    if key.duplicated().any():
        raise InputError(
            path, f"listed twice in the site table: {', '.join(sorted(set(key[key.duplicated()])))}"
        )
    names = column("name")
    table = pd.DataFrame({"name": names.where(names != "", key), "latitude": lat, "longitude": lon})
    table.index = pd.Index(key, name="id")
    return table
