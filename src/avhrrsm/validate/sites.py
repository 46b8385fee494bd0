"""In-situ sites at three scales, as daily series on UTC days, placed on the 0.05 degree grid.

- ``point``: ISMN sensors whose depth lies within 0..``ismn_max_depth_m``; readings kept when
  every part of their ISMN quality flag is in ``quality_flags`` (``G`` by default); hourly ->
  daily mean over UTC days with at least ``min_obs_per_day`` readings; the nearest 0.05 degree
  pixel.
- ``field``: cosmic-ray probes, from COSMOS-UK daily files (VWC % -> m3 m-3) and from ISMN
  networks in ``cosmos_networks`` (depth within 0..``cosmos_max_depth_m``); effective depth kept.
- ``9km`` (or ``3km``/``36km``): SMAP core validation sites' reference pixels (NSIDC-0712);
  the product is averaged over the 0.05 degree pixels whose centres lie in the reference pixel's
  EASE-Grid 2.0 cell.

Nothing is dropped silently: every reading, day, sensor or site left out is counted under a
reason in ``SkipLog`` (and the skipped sites are listed by name).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pyproj import Transformer

from avhrrsm.grid import STEP_DEG, Window, ease2_bounds, ease2_cell
from avhrrsm.io.errors import InputError
from avhrrsm.io.insitu import (
    cosmos_uk_files,
    nsidc0712_files,
    parse_nsidc0712_name,
    read_cosmos_uk,
    read_cosmos_uk_site_metadata,
    read_nsidc0712,
    read_nsidc0712_site_table,
)
from avhrrsm.io.ismn import read_archive
from avhrrsm.io.layouts import NSIDC0712, Nsidc0712Layout

LOGGER = logging.getLogger(__name__)


@dataclass
class Site:
    network: str
    station: str
    sensor: str
    scale: str  # point | field | 9km
    latitude: float
    longitude: float
    depth_from: float
    depth_to: float
    source: str
    series: pd.Series  # daily, UTC days, m3 m-3
    pixels: np.ndarray  # (k, 2) rows and columns within the validation window
    notes: list[str] = field(default_factory=list)  # what was read differently or not at all

    def record_key(self) -> tuple[Any, ...]:
        """What identifies the in-situ record (two files with the same one are one record): a
        sensor by station, sensor, depths and position (to about 10 m), so that one file
        copied under two network folders of an archive, which the archive's layout names as
        two networks, is one record; a cosmic-ray probe (one per site, its effective depth a
        statistic of its days) by its position to about 100 m, so that a site read from
        ISMN's COSMOS-UK network and from the EIDC release is one. A footprint site: its
        network and reference pixel."""
        if self.scale == "field":
            return ("field", round(self.latitude, 3), round(self.longitude, 3))
        if self.scale != "point":
            return (self.network, self.station)
        return (
            self.station,
            self.sensor,
            round(self.depth_from, 4),
            round(self.depth_to, 4),
            round(self.latitude, 4),
            round(self.longitude, 4),
        )


@dataclass
class SkipLog:
    """What was left out, counted by reason, with the names of skipped sites."""

    counts: Counter = field(default_factory=Counter)
    sites: list[dict[str, str]] = field(default_factory=list)
    sensors: list[dict[str, str]] = field(default_factory=list)
    site_periods: list[dict[str, str]] = field(default_factory=list)

    def skip_site(self, reason: str, network: str, station: str, detail: str = "") -> None:
        self.counts[f"site_{reason}"] += 1
        self.sites.append(
            {"network": network, "station": station, "reason": reason, "detail": detail}
        )
        LOGGER.warning("skipped %s/%s: %s %s", network, station, reason, detail)

    def skip_sensor(
        self, reason: str, network: str, station: str, sensor: str, detail: str = ""
    ) -> None:
        """One sensor of a station left out (the station may be used through another)."""
        self.counts[f"sensors_{reason}"] += 1
        self.sensors.append(
            {
                "network": network,
                "station": station,
                "sensor": sensor,
                "reason": reason,
                "detail": detail,
            }
        )

    def skip_site_period(self, reason: str, site: Site, period: str, detail: str = "") -> None:
        """A site left unscored in one validation period (it may be scored in another)."""
        self.counts[f"site_periods_{reason}"] += 1
        self.site_periods.append(
            {
                "network": site.network,
                "station": site.station,
                "sensor": site.sensor,
                "period": period,
                "reason": reason,
                "detail": detail,
            }
        )


def _naive_utc(index: pd.Index) -> pd.DatetimeIndex:
    """Timestamps in UTC without a time zone (the products' time axis)."""
    index = pd.DatetimeIndex(index)
    return index.tz_convert("UTC").tz_localize(None) if index.tz is not None else index


def utc_days(series: pd.Series) -> pd.Series:
    """The series on naive UTC days (the products' time axis), float64."""
    index = _naive_utc(series.index)
    out = pd.Series(series.to_numpy(np.float64), index=index.floor("D").rename("date"))
    return out[~out.index.duplicated()].sort_index()


def nearest_pixel(lat: float, lon: float, window: Window) -> tuple[int, int] | None:
    """(row, col) within ``window`` of the 0.05 degree pixel holding the point, or None."""
    row = int(np.floor((90.0 - lat) / STEP_DEG)) - window.row_start
    col = int(np.floor((lon + 180.0) / STEP_DEG)) - window.col_start
    if 0 <= row < window.shape[0] and 0 <= col < window.shape[1]:
        return row, col
    return None


def flag_kept(flags: pd.Series, kept: set[str]) -> np.ndarray:
    """True where every comma-separated part of an ISMN quality flag is in ``kept``."""
    parts = flags.astype(str).str.split(",")
    return parts.map(lambda codes: all(code.strip() in kept for code in codes)).to_numpy(bool)


def ismn_daily(
    frame: pd.DataFrame, kept_flags: set[str], min_obs_per_day: int, skips: SkipLog
) -> pd.Series:
    """Daily means (UTC days) of the readings whose flags are kept; days with too few readings
    are dropped. Counts go to ``skips``."""
    values = frame["soil_moisture"]
    keep = flag_kept(frame["flag"], kept_flags)
    for code, count in frame.loc[~keep, "flag"].astype(str).value_counts().items():
        skips.counts[f"readings_flag_{code}"] += int(count)
    finite = np.isfinite(values.to_numpy())
    skips.counts["readings_missing_value"] += int((keep & ~finite).sum())
    good = values[keep & finite]
    days = _naive_utc(good.index).floor("D")
    grouped = good.groupby(days)
    daily = grouped.mean()
    counts = grouped.count()
    too_few = counts < min_obs_per_day
    skips.counts["days_too_few_readings"] += int(too_few.sum())
    daily = daily[~too_few]
    daily.index = pd.DatetimeIndex(daily.index, name="date")
    return daily.astype(np.float64)


def one_site_per_record(sites: list[Site], skips: SkipLog) -> list[Site]:
    """Each in-situ record scored once, however many files or archive members hold it.

    Sites of one record (:meth:`Site.record_key`) whose periods overlap are copies of it: the
    copy whose series ends last wins (a later release reprocesses the earlier days too), then
    the one with more days, then the first in path order (identical copies); the others are
    counted (``sensors_duplicate_record``), logged and listed with the copy that won. Pieces of
    one record that do not overlap (a record split over two files) are joined
    (``records_joined``). The record keeps the place of its first copy in ``sites``.
    """
    groups: dict[tuple[Any, ...], list[int]] = {}
    for k, site in enumerate(sites):
        groups.setdefault(site.record_key(), []).append(k)
    out: list[Site] = []
    for key, members in groups.items():
        if len(members) == 1:
            out.append(sites[members[0]])
            continue
        ordered = sorted(
            members,
            key=lambda k: (-sites[k].series.index.max().value, -sites[k].series.size, k),
        )
        winner = sites[ordered[0]]
        series = winner.series
        for k in ordered[1:]:
            other = sites[k]
            overlaps = (
                other.series.index.min() <= series.index.max()
                and other.series.index.max() >= series.index.min()
            )
            if overlaps:
                why = (
                    "it ends later"
                    if other.series.index.max() < winner.series.index.max()
                    else "it has more days"
                    if other.series.size < winner.series.size
                    else "it comes first in path order"
                )
                detail = f"{other.source}: a copy of the record in {winner.source} ({why})"
                skips.skip_sensor(
                    "duplicate_record", other.network, other.station, other.sensor, detail
                )
                LOGGER.warning("%s/%s: %s, not scored twice", other.network, other.station, detail)
                winner.notes.append(f"also in {other.source}, not scored twice")
            else:
                series = pd.concat([series, other.series]).sort_index()
                skips.counts["records_joined"] += 1
                LOGGER.info("%s/%s: %s joined to %s", key[0], key[1], other.source, winner.source)
                winner.notes.append(f"joined with {other.source} (periods do not overlap)")
                winner.source = f"{winner.source}; {other.source}"
        winner.series = series
        out.append(winner)
    return out


def ismn_sites(
    archive: str | Path, window: Window, settings: Mapping[str, Any], skips: SkipLog
) -> list[Site]:
    """Point sites (and cosmic-ray probes of ``cosmos_networks``) from an ISMN archive."""
    kept = set(settings["quality_flags"])
    cosmos_networks = set(settings["cosmos_networks"])
    sites = []
    for frame in read_archive(archive, "sm", skips.counts):
        a = frame.attrs
        cosmos = a["network"] in cosmos_networks
        max_depth = float(settings["cosmos_max_depth_m" if cosmos else "ismn_max_depth_m"])
        if not (0.0 <= a["depth_from"] <= a["depth_to"] <= max_depth + 1e-9):
            skips.skip_sensor(
                "depth_outside_range",
                a["network"],
                a["station"],
                str(a["sensor"]),
                f"{Path(a['path']).name}: {a['depth_from']:g}-{a['depth_to']:g} m, outside "
                f"0-{max_depth:g} m",
            )
            LOGGER.info(
                "%s: depth %s-%s m outside 0-%s m, not used",
                a["path"],
                a["depth_from"],
                a["depth_to"],
                max_depth,
            )
            continue
        pixel = nearest_pixel(a["latitude"], a["longitude"], window)
        if pixel is None:
            skips.skip_site(
                "outside_region",
                a["network"],
                a["station"],
                f"lat {a['latitude']}, lon {a['longitude']}",
            )
            continue
        notes = []
        if a.get("header_disagrees"):
            skips.counts["sensors_header_disagrees_with_name"] += 1
            notes.append(
                f"{Path(a['path']).name}: {'; '.join(a['header_disagrees'])} "
                "(read as the ismn package reads it)"
            )
        series = ismn_daily(frame, kept, int(settings["min_obs_per_day"]), skips)
        if series.empty:
            skips.skip_site("no_valid_day", a["network"], a["station"], a["path"])
            continue
        sites.append(
            Site(
                network=a["network"],
                station=a["station"],
                sensor=a["sensor"],
                scale="field" if cosmos else "point",
                latitude=a["latitude"],
                longitude=a["longitude"],
                depth_from=a["depth_from"],
                depth_to=a["depth_to"],
                source=a["path"],
                series=series,
                pixels=np.array([pixel]),
                notes=notes,
            )
        )
    return sites


def cosmos_uk_sites(folder: str | Path, window: Window, skips: SkipLog) -> list[Site]:
    """Field-scale sites from a COSMOS-UK release (EIDC layout, see
    :func:`avhrrsm.io.insitu.cosmos_uk_files`): a site the metadata file does not list is
    skipped as ``no_site_metadata`` (counted and listed)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError(folder, "is not a folder of COSMOS-UK daily files")
    files, metadata_path = cosmos_uk_files(folder) if folder.is_dir() else ([], None)
    if files and metadata_path is None:
        raise InputError(
            folder,
            f"{len(files)} COSMOS-UK daily files but no COSMOS-UK_SiteMetadata_*.csv",
            "the EIDC release ships one site metadata file for all sites: put it beside them",
        )
    metadata = read_cosmos_uk_site_metadata(metadata_path) if metadata_path else None
    sites = []
    for path in files:
        frame = read_cosmos_uk(path, metadata)
        a = frame.attrs
        if a.get("no_position"):
            skips.skip_site(
                "no_position",
                "COSMOS-UK",
                a["site_id"],
                f"no latitude/longitude in {metadata_path}",
            )
            continue
        if "latitude" not in a:
            skips.skip_site(
                "no_site_metadata", "COSMOS-UK", a["site_id"], f"not in {metadata_path}"
            )
            continue
        pixel = nearest_pixel(a["latitude"], a["longitude"], window)
        if pixel is None:
            skips.skip_site(
                "outside_region",
                "COSMOS-UK",
                a["site_id"],
                f"lat {a['latitude']}, lon {a['longitude']}",
            )
            continue
        series = frame["soil_moisture"].dropna()
        skips.counts["days_missing_value"] += int(frame["soil_moisture"].isna().sum())
        if series.empty:
            skips.skip_site("no_valid_day", "COSMOS-UK", a["site_id"], "every value is -9999")
            continue
        depth_cm = (
            float(np.nanmedian(frame["effective_depth_cm"]))
            if frame["effective_depth_cm"].notna().any()
            else np.nan
        )
        sites.append(
            Site(
                network="COSMOS-UK",
                station=str(a.get("site_name", a["site_id"])),
                sensor="cosmic-ray probe",
                scale="field",
                latitude=a["latitude"],
                longitude=a["longitude"],
                depth_from=0.0,
                depth_to=depth_cm / 100.0,
                source=str(path),
                series=utc_days(series),
                pixels=np.array([pixel]),
            )
        )
    return sites


def cell_pixels(row: int, col: int, window: Window, grid_km: int = 9) -> np.ndarray:
    """The window's 0.05 degree pixels whose centres lie in an EASE-Grid 2.0 cell."""
    x0, y0, x1, y1 = ease2_bounds(row, col, grid_km)
    lat, lon = window.lat(), window.lon()
    lon_grid, lat_grid = np.meshgrid(lon, lat)
    x, y = Transformer.from_crs("EPSG:4326", "EPSG:6933", always_xy=True).transform(
        lon_grid, lat_grid
    )
    inside = (x >= x0) & (x < x1) & (y >= y0) & (y < y1)
    return np.argwhere(inside)


def smap_sites(
    folder: str | Path,
    site_table: str | Path | None,
    window: Window,
    skips: SkipLog,
    grid_km: Collection[int] = (9,),
    layout: Nsidc0712Layout = NSIDC0712,
) -> list[Site]:
    """Footprint-scale sites from NSIDC-0712 match-up files, one per reference pixel.

    Only reference pixels of the ``grid_km`` sizes are used (the others are counted). The files
    of one reference pixel (several SMAP products, versions and periods match up the same in-situ
    estimate) are merged: a time given twice keeps its first value in path order. The reference
    pixel's position comes from ``site_table`` (:func:`read_nsidc0712_site_table`; by reference
    pixel, else by site id); the product is averaged over the 0.05 degree pixels whose centres
    lie in the EASE-Grid 2.0 cell of that size holding the position. Daily means over UTC days of
    the overpass readings. Fill values, malformed lines and files of other names are counted.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError(folder, "is not a folder of NSIDC-0712 match-up files")
    files, others = nsidc0712_files(folder) if folder.is_dir() else ([], [])
    for other in others:
        skips.counts["smap_cvs_files_not_nsidc0712"] += 1
        LOGGER.warning("%s: not an NSIDC-0712 match-up file name, not read", other)
    if not files:
        return []
    if site_table is None or not Path(site_table).is_file():
        raise InputError(
            site_table or folder,
            f"{len(files)} NSIDC-0712 files but no site table to place their reference pixels",
            "give inputs.smap_cvs_sites: a CSV of site_id (or reference_pixel), name, latitude, "
            "longitude, from the NSIDC-0712 user guide's site list",
        )
    table = read_nsidc0712_site_table(site_table)
    frames = _nsidc0712_by_pixel(files, grid_km, layout, skips)
    sites = []
    for pixel_id, pixel_frames in sorted(frames.items()):
        a = pixel_frames[0].attrs
        key = pixel_id if pixel_id in table.index else a["site_id"]
        if key not in table.index:
            skips.skip_site("no_site_metadata", "SMAP-CVS", pixel_id, f"not in {site_table}")
            continue
        meta = table.loc[key]
        station = f"{meta['name']} ({pixel_id})"
        row, col, _ = ease2_cell(float(meta["latitude"]), float(meta["longitude"]), a["grid_km"])
        pixels = cell_pixels(row, col, window, a["grid_km"])
        if pixels.size == 0:
            skips.skip_site(
                "outside_region",
                "SMAP-CVS",
                station,
                f"lat {meta['latitude']}, lon {meta['longitude']}",
            )
            continue
        readings, notes = _merged_readings(pixel_frames, skips)
        if readings.empty:
            skips.skip_site("no_valid_day", "SMAP-CVS", station, "every reading is fill")
            continue
        daily = readings.groupby(_naive_utc(readings.index).floor("D")).mean()
        daily.index = pd.DatetimeIndex(daily.index, name="date")
        products = sorted({f"{f.attrs['product']} {f.attrs['version']}" for f in pixel_frames})
        sites.append(
            Site(
                network="SMAP-CVS",
                station=station,
                sensor=f"upscaled in situ ({', '.join(products)})",
                scale=f"{a['grid_km']}km",
                latitude=float(meta["latitude"]),
                longitude=float(meta["longitude"]),
                depth_from=0.0,
                depth_to=0.05,
                source="; ".join(f.attrs["path"] for f in pixel_frames),
                series=daily.astype(np.float64),
                pixels=pixels,
                notes=notes,
            )
        )
    return sites


def _nsidc0712_by_pixel(
    files: Sequence[Path], grid_km: Collection[int], layout: Nsidc0712Layout, skips: SkipLog
) -> dict[str, list[pd.DataFrame]]:
    """The match-up files of the selected grid sizes, read and grouped by reference pixel in
    path order (the others counted)."""
    frames: dict[str, list[pd.DataFrame]] = {}
    for path in files:
        name = parse_nsidc0712_name(path.name)
        assert name is not None  # nsidc0712_files matched it
        if name.grid_km not in grid_km:
            skips.counts[f"smap_cvs_files_{name.grid_km}km_not_selected"] += 1
            LOGGER.info("%s: %d km reference pixel, not in %s km", path, name.grid_km, grid_km)
            continue
        frames.setdefault(name.reference_pixel, []).append(read_nsidc0712(path, layout))
    return frames


def _merged_readings(
    pixel_frames: Sequence[pd.DataFrame], skips: SkipLog
) -> tuple[pd.Series, list[str]]:
    """One reference pixel's readings from all its files (a time given twice keeps its first
    value), fill removed; fill values, malformed lines and repeats counted, noted per file."""
    notes = []
    for frame in pixel_frames:
        skips.counts["readings_fill_value"] += frame.attrs["n_fill"]
        if frame.attrs["n_bad_lines"]:
            skips.counts["readings_malformed_line"] += frame.attrs["n_bad_lines"]
            what = "truncated file, " if frame.attrs["truncated"] else ""
            notes.append(
                f"{Path(frame.attrs['path']).name}: {what}{frame.attrs['n_bad_lines']} "
                f"malformed line(s) not read, first at line {frame.attrs['first_bad_line']}"
            )
            LOGGER.warning("%s", notes[-1])
    readings = pd.concat([f["soil_moisture"] for f in pixel_frames])
    repeated = readings.index.duplicated(keep="first")
    skips.counts["readings_repeated_in_other_files"] += int(repeated.sum())
    return readings[~repeated].dropna(), notes
