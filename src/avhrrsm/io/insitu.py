"""Readers of the field-scale in-situ files: COSMOS-UK daily CSV and SMAP core validation sites.

Both return a daily ``pandas.DataFrame`` indexed by UTC day with a ``soil_moisture`` column in
m3 m-3 (NaN where missing) and the site's metadata in ``.attrs``.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pandas as pd

from avhrrsm.io.errors import InputError, require_file

MISSING = -9999.0
HEADER_KEY = re.compile(r"^[A-Za-z0-9_.]+$")


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
        attrs.update(
            site_name=str(meta.get("SITE_NAME", site_id)),
            latitude=float(meta["LATITUDE"]),
            longitude=float(meta["LONGITUDE"]),
            elevation=float(meta.get("ALTITUDE", np.nan)),
        )
    result.attrs.update(attrs)
    return result


def read_smap_cvs(path: str | Path) -> pd.DataFrame:
    """A SMAP core validation site file: '# key: value' header lines, then ``date,soil_moisture``
    (m3 m-3, -9999 missing). ``attrs`` holds every header key (site_id, latitude, longitude,
    ease2_row, ease2_col, ...)."""
    path = require_file(path, "SMAP core validation site")
    text = path.read_text(encoding="utf-8", errors="replace")
    header: dict[str, object] = {}
    body: list[str] = []
    for line in text.splitlines():
        if line.startswith("#"):
            key, sep, value = line[1:].partition(":")
            if sep and HEADER_KEY.match(key.strip()):
                header[key.strip()] = value.strip()
        elif line.strip():
            body.append(line)
    if not body or "soil_moisture" not in body[0]:
        raise InputError(path, "SMAP CVS file has no 'date,soil_moisture' table")
    table = pd.read_csv(io.StringIO("\n".join(body)))
    if "date" not in table.columns:
        raise InputError(path, "SMAP CVS table has no 'date' column")
    values = pd.to_numeric(table["soil_moisture"], errors="coerce").replace(MISSING, np.nan)
    if values.notna().any() and (values.min() < 0 or values.max() > 1):
        raise InputError(
            path,
            f"SMAP CVS soil moisture {values.min():.4g}..{values.max():.4g} outside 0..1 m3 m-3",
        )
    result = pd.DataFrame(
        {"soil_moisture": values.to_numpy()}, index=_daily_index(table["date"], path)
    )
    result.index.name = "date"
    for key in ("latitude", "longitude"):
        if key not in header:
            raise InputError(path, f"SMAP CVS header has no '{key}'")
        header[key] = float(header[key])  # type: ignore[arg-type]
    for key in ("ease2_row", "ease2_col", "site_id", "n_pixels_0.05deg"):
        if key in header:
            header[key] = int(header[key])  # type: ignore[call-overload]
    result.attrs.update(header, path=str(path), network="SMAP-CVS")
    return result.sort_index()
