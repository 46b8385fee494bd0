"""`avhrrsm inputs check`, the in-situ part: each in-situ source read by the validation's own
readers, so that the check refuses what the run would refuse and lists what it would skip.

The ISMN archive and the COSMOS-UK release are read whole (integrity of every member, columns,
coordinates, depths, flags: :func:`avhrrsm.validate.sites.ismn_sites` and
:func:`~avhrrsm.validate.sites.cosmos_uk_sites`), and each source's records are made one site
per record as the run makes them; what the run would skip is listed under its reason, with
counts. Every NSIDC-0712 file is read and its reference pixel looked up in the site table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from avhrrsm.grid import Window, region_window
from avhrrsm.io.check import MAX_REASONS, ProductCheck
from avhrrsm.io.errors import InputError
from avhrrsm.io.insitu import nsidc0712_files, read_nsidc0712, read_nsidc0712_site_table
from avhrrsm.io.layouts import nsidc0712_layout
from avhrrsm.validate.sites import (
    Site,
    SkipLog,
    cosmos_uk_sites,
    ismn_sites,
    one_site_per_record,
)


def _skip_lines(skips: SkipLog) -> list[str]:
    """What a run would leave out: counts by reason, and the first sites and sensors named."""
    lines = [f"{count} {reason}" for reason, count in sorted(skips.counts.items()) if count]
    named = [
        *(f"site {e['network']}/{e['station']}: {e['reason']} {e['detail']}" for e in skips.sites),
        *(
            f"sensor {e['network']}/{e['station']} {e['sensor']}: {e['reason']} {e['detail']}"
            for e in skips.sensors
        ),
    ]
    lines += named[:MAX_REASONS]
    if len(named) > MAX_REASONS:
        lines.append(
            f"... and {len(named) - MAX_REASONS} more sites or sensors named in the run's log"
        )
    return lines


def _read_source(name: str, path: Path, read: Callable[[SkipLog], list[Site]]) -> ProductCheck:
    check = ProductCheck(name, expected=1)
    if not path.exists():
        check.missing.append(str(path))
        check.blocking.append(f"{path} does not exist")
        return check
    skips = SkipLog()
    try:
        sites = one_site_per_record(read(skips), skips)
    except InputError as err:
        check.unreadable.append(str(err))
        return check
    check.found = 1
    check.skipped = _skip_lines(skips)
    check.notes.append(f"{len(sites)} site(s) with valid days in the region")
    return check


def _check_smap(
    patterns: Mapping[str, str], layouts: Mapping[str, Any]
) -> tuple[ProductCheck, ProductCheck]:
    table_check = ProductCheck("smap_cvs_sites", expected=1)
    table = None
    try:
        table = read_nsidc0712_site_table(patterns["smap_cvs_sites"])
        table_check.found = 1
    except InputError as err:
        table_check.unreadable.append(str(err))
    files, _ = nsidc0712_files(patterns["smap_cvs"])
    check = ProductCheck("smap_cvs", expected=len(files))
    layout = nsidc0712_layout(layouts.get("nsidc0712"))
    for path in files:
        try:
            attrs = read_nsidc0712(path, layout).attrs
        except InputError as err:
            check.unreadable.append(str(err))
            continue
        check.found += 1
        if table is not None and not {attrs["reference_pixel"], attrs["site_id"]} & set(
            table.index
        ):
            check.missing.append(f"reference pixel {attrs['reference_pixel']} of {path.name}")
    if not files:
        check.blocking.append(f"no NSIDC-0712 match-up file under {patterns['smap_cvs']}")
    return check, table_check


def check_insitu(
    patterns: Mapping[str, str],
    region: Mapping[str, float],
    settings: Mapping[str, Any],
    layouts: Mapping[str, Any] | None = None,
) -> list[ProductCheck]:
    """The in-situ inputs as the validation reads them (``settings``: the config's
    ``validation`` section): the ISMN archive, the COSMOS-UK release, the NSIDC-0712 files and
    their site table."""
    window: Window = region_window(region)
    ismn = _read_source(
        "ismn",
        Path(patterns["ismn"]),
        lambda skips: ismn_sites(patterns["ismn"], window, settings, skips),
    )
    cosmos = _read_source(
        "cosmos",
        Path(patterns["cosmos"]),
        lambda skips: cosmos_uk_sites(patterns["cosmos"], window, skips),
    )
    return [ismn, cosmos, *_check_smap(patterns, layouts or {})]
