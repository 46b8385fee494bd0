"""ISMN point data as the portal ships it: the 'header + values' (.stm) archive with static
variables and metadata (read back by :mod:`avhrrsm.io.ismn`).
"""

from __future__ import annotations

import shutil
from collections.abc import Collection
from pathlib import Path

import numpy as np
import pandas as pd

from avhrrsm.synth.base import World
from avhrrsm.synth.sites import (
    COSMOS_FIRST_YEAR,
    Site,
    cosmos_field_scale,
    cosmos_sites,
    hash_name,
    hourly_from_daily,
    place_sites,
    point_series,
    zip_folder,
)


def _ismn_flags(
    values: np.ndarray, tair_hourly: np.ndarray, sat: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """ISMN quality flags for hourly values, with injected faults (values are changed in place)."""
    n = len(values)
    flags = np.full(n, "G", dtype=object)
    spikes = rng.random(n) < 0.002
    values[spikes] += 0.15
    negative = rng.random(n) < 0.0005
    values[negative] = -0.01
    cold = tair_hourly < 273.15
    codes = [
        (cold, "D03"),
        (cold & (tair_hourly < 271.0), "D02"),
        (spikes, "D06"),
        (values > sat, "C03"),
        (negative, "C01"),
    ]
    for mask, code in codes:
        add = mask & (flags != "G")
        flags[add] = flags[add] + "," + code
        flags[mask & (flags == "G")] = code
    return values, flags


def _ismn_header_line(
    cse: str,
    network: str,
    station: str,
    lat: float,
    lon: float,
    elevation: float,
    depth_from: float,
    depth_to: float,
    sensor: str,
) -> str:
    return (
        f"{cse:<10} {network:<15} {station:<17} {lat:9.5f} {lon:11.5f} {elevation:7.2f} "
        f"{depth_from:7.2f} {depth_to:7.2f} {sensor} "
    )


def _write_stm(
    folder: Path,
    cse: str,
    network: str,
    site: Site,
    depth_from: float,
    depth_to: float,
    sensor: str,
    times: pd.DatetimeIndex,
    values: np.ndarray,
    flags: np.ndarray,
    orig_flag: str,
) -> Path:
    start, end = times[0].strftime("%Y%m%d"), times[-1].strftime("%Y%m%d")
    name = (
        f"{cse}_{network}_{site.name}_sm_{depth_from:.6f}_{depth_to:.6f}_{sensor}_{start}_{end}.stm"
    )
    folder.mkdir(parents=True, exist_ok=True)
    stamps = times.strftime("%Y/%m/%d %H:%M")
    lines = [
        _ismn_header_line(
            cse,
            network,
            site.name,
            site.lat,
            site.lon,
            site.elevation,
            depth_from,
            depth_to,
            sensor,
        )
    ]
    lines += [
        f"{s} {v:8.4f} {f} {orig_flag}" for s, v, f in zip(stamps, values, flags, strict=True)
    ]
    path = folder / name
    path.write_text("\n".join(lines) + "\n", encoding="ascii")
    return path


def _write_static_variables(folder: Path, cse: str, network: str, site: Site, world: World) -> None:
    static = world.static
    r, c = site.row, site.col
    header = (
        "quantity_name;unit;depth_from[m];depth_to[m];value;description;quantity_source_name;"
        "quantity_source_description;quantity_source_provider;quantity_source_version;"
        "quantity_source_resolution;quantity_source_timerange;quantity_source_url;"
    )
    rows = []
    for top, bottom in ((0.0, 0.3), (0.3, 1.0)):
        rows.append(
            f"saturation;m^3*m^-3;{top:.2f};{bottom:.2f};{static.theta_sat[r, c]:.2f};;synthetic;"
            "avhrrsm synthetic world;avhrrsm;1;0.05 deg;;;"
        )
        for quantity, layer in (
            ("clay fraction", static.clay),
            ("sand fraction", static.sand),
            ("silt fraction", static.silt),
        ):
            rows.append(
                f"{quantity};% weight;{top:.2f};{bottom:.2f};{100 * layer[r, c]:.2f};;synthetic;"
                "avhrrsm synthetic world;avhrrsm;1;0.05 deg;;;"
            )
    for year, span in ((2000, "1998-2002"), (2005, "2003-2007"), (2010, "2008-2012")):
        rows.append(
            f"land cover classification;;;;130;Grassland;CCI_landcover_{year};ESA CCI Land Cover;"
            f"ESA;{year}-v1.6.1;300m;{span};;"
        )
    rows.append(
        "climate classification;;;;Csb;Temperate - Dry summer - Warm Summer;koeppen_geiger_2007;"
        "Koeppen-Geiger Climate Classification;;Peel2007;0.1°;;;"
    )
    path = folder / f"{cse}_{network}_{site.name}_static_variables.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")


ISMN_METADATA_XML = """<?xml version="1.0"?>
<gmd:MD_Metadata xmlns:gco="http://www.isotc211.org/2005/gco" xmlns:gmd="http://www.isotc211.org/2005/gmd">
    <gmd:fileIdentifier><gco:CharacterString>Metadata</gco:CharacterString></gmd:fileIdentifier>
    <gmd:language><gco:CharacterString>eng</gco:CharacterString></gmd:language>
    <gmd:identificationInfo>
        <gmd:MD_DataIdentification>
            <gmd:citation><gmd:CI_Citation><gmd:title>
                <gco:CharacterString>{title}</gco:CharacterString>
            </gmd:title></gmd:CI_Citation></gmd:citation>
            <gmd:abstract><gco:CharacterString>{abstract}</gco:CharacterString></gmd:abstract>
        </gmd:MD_DataIdentification>
    </gmd:identificationInfo>
</gmd:MD_Metadata>
"""


def write_ismn(world: World, years: Collection[int] | None = None) -> int:
    """An ISMN 'Header+values' archive as the portal delivers it (a .zip where the configured
    path ends so): {network}/{station}/*.stm, static variables, Metadata.xml, Readme.txt.

    Two networks of point stations (0-5 cm and deeper sensors, hourly, flags G/Dxx/Cxx), and the
    odd COSMOS cosmic-ray probes (0.00-0.19 m) that ISMN also distributes.
    """
    archive = Path(world.patterns["ismn"])
    # a .zip as the ISMN portal delivers it: written as a folder, then zipped
    root = archive.with_name(archive.name + ".unzipped") if archive.suffix == ".zip" else archive
    root.mkdir(parents=True, exist_ok=True)
    truth = world.truth
    years = sorted(set(truth.dates.year))
    rng = world.rng("ismn", 0)
    n_stations = int(world.settings["n_ismn_stations"])
    sites = place_sites(world, n_stations, rng)
    n_files = 0
    for index, site in enumerate(sites):
        network = "AVSYN" if index % 2 == 0 else "MEDSM"
        site_rng = world.rng("ismn", index + 1)
        first = site_rng.integers(len(years))
        last = site_rng.integers(first, len(years))
        keep = truth.dates.year.isin(years[first : last + 1])
        dates = truth.dates[keep]
        sensors = [(0.05, 0.05, "ThetaProbe-ML2X"), (0.20, 0.20, "ThetaProbe-ML2X")]
        if index % 3 == 0:
            sensors.insert(0, (0.0, 0.05, "Hydraprobe-II_Sdi-12"))
        if index % 4 == 1:
            sensors.append((0.50, 0.50, "ThetaProbe-ML2X"))
        folder = root / network / site.name
        tair_daily = truth.weather.air_temperature_k[keep, site.row, site.col].astype(np.float64)
        for depth_from, depth_to, sensor in sensors:
            daily = point_series(world, site, site_rng, 0.5 * (depth_from + depth_to))[keep]
            times, values = hourly_from_daily(dates, daily, site_rng)
            tair = np.repeat(tair_daily, 24)[: len(times)]
            tair = tair + 5.0 * np.sin(2 * np.pi * (times.hour.to_numpy() - 9) / 24.0)
            sat = float(world.static.theta_sat[site.row, site.col])
            values, flags = _ismn_flags(values, tair, sat, site_rng)
            outages = site_rng.random(len(times)) < 0.003
            outage = np.convolve(outages, np.ones(24 * 5), mode="same") > 0
            present = ~outage & (site_rng.random(len(times)) > 0.002)
            _write_stm(
                folder,
                network,
                network,
                site,
                depth_from,
                depth_to,
                sensor,
                times[present],
                np.round(values[present], 4),
                flags[present],
                "M",
            )
            n_files += 1
        _write_static_variables(folder, network, network, site, world)
    # COSMOS probes that come through ISMN (odd-numbered COSMOS sites).
    cosmos_years = [y for y in years if y >= COSMOS_FIRST_YEAR]
    for site in cosmos_sites(world)[1::2]:
        if not cosmos_years:
            break
        keep = truth.dates.year.isin(cosmos_years)
        dates = truth.dates[keep]
        site_rng = world.rng("cosmos", hash_name(site.name))
        daily = cosmos_field_scale(world, site)[keep]
        times, values = hourly_from_daily(dates, daily, site_rng, amplitude=0.002)
        flags = np.where(site_rng.random(len(times)) < 0.02, "D05", "G").astype(object)
        folder = root / "COSMOS" / site.name
        _write_stm(
            folder,
            "COSMOS",
            "COSMOS",
            site,
            0.0,
            0.19,
            "Cosmic-ray-Probe",
            times,
            np.round(values, 4),
            flags,
            "M",
        )
        _write_static_variables(folder, "COSMOS", "COSMOS", site, world)
        n_files += 1
    (root / "Metadata.xml").write_text(
        ISMN_METADATA_XML.format(
            title="ISMN archive (synthetic, avhrrsm)",
            abstract="Synthetic in situ soil moisture in the ISMN Header+values layout.",
        ),
        encoding="utf-8",
    )
    (root / "Readme.txt").write_text(
        "Variables stored in separate files (Header+values), synthetic ISMN-layout archive written by\n"
        "avhrrsm. Folder structure: Networkname/Stationname/*.stm. See ISMN documentation for the\n"
        "format and the quality flags (G good; C01-C03 plausibility; D01-D10 spectral/ancillary).\n",
        encoding="utf-8",
    )
    if root != archive:
        zip_folder(root, archive)
        shutil.rmtree(root)
    return n_files
