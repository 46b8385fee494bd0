"""Reader of ISMN archives: 'Header+values' and 'CEOP separate files', folder or zip.

Public entry points:

- :func:`read_sensor_file` (path) -> DataFrame indexed by UTC timestamps with columns
  ``soil_moisture``, ``flag``, ``orig_flag`` and ``.attrs`` holding ``network``, ``station``,
  ``latitude``, ``longitude``, ``elevation``, ``depth_from``, ``depth_to``, ``sensor`` (and
  ``cse``, ``variable``, ``format``, ``path``, ``n_bad_lines``).
- :func:`read_archive` (path) -> iterator of such frames over a folder or a ``.zip``.

Both formats, CR-only / CRLF / LF line endings, and sensor names that contain underscores are
handled. File names are parsed from both ends:
``{CSE}_{network}_{station}_{variable}_{depth_from}_{depth_to}_{sensor}_{start}_{end}.stm``.
Malformed data lines are skipped, counted (``attrs['n_bad_lines']``) and logged; a file with
no readable line, or whose layout is neither format, raises :class:`InputError`.
"""

from __future__ import annotations

import logging
import re
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from avhrrsm.io.errors import InputError
from avhrrsm.io.paths import read_zip_member, safe_member_parts, walk_files, zip_damage

LOGGER = logging.getLogger(__name__)

# ISMN variable abbreviations in file names -> column names.
VARIABLES = {
    "sm": "soil_moisture",
    "ts": "soil_temperature",
    "su": "soil_suction",
    "p": "precipitation",
    "ta": "air_temperature",
    "sd": "snow_depth",
    "sweq": "snow_water_equivalent",
    "tsf": "surface_temperature",
}
FILE_NAME = re.compile(
    r"^(?P<cse>[^_]+)_(?P<network>[^_]+)_(?P<station>.+?)_(?P<variable>[a-z]+)_"
    r"(?P<depth_from>-?\d+\.\d+)_(?P<depth_to>-?\d+\.\d+)_(?P<sensor>.+)_"
    r"(?P<start>\d{8})_(?P<end>\d{8})\.stm$"
)
DATE_TIME = re.compile(r"^\d{4}/\d{2}/\d{2}$")
TIME = re.compile(r"^\d{2}:\d{2}$")
FLOAT = re.compile(r"^[-+]?\d+(\.\d*)?([eE][-+]?\d+)?$")


@dataclass(frozen=True)
class FileNameParts:
    cse: str
    network: str
    station: str
    variable: str
    depth_from: float
    depth_to: float
    sensor: str
    start: str
    end: str


def parse_file_name(name: str) -> FileNameParts:
    """Split an ISMN .stm file name into its fields (sensor names may contain underscores)."""
    match = FILE_NAME.match(PurePosixPath(name).name)
    if match is None:
        raise InputError(
            name,
            "not an ISMN data file name",
            "expected {CSE}_{network}_{station}_{variable}_{depth_from}_{depth_to}_{sensor}_"
            "{start}_{end}.stm",
        )
    fields = match.groupdict()
    return FileNameParts(
        cse=fields["cse"],
        network=fields["network"],
        station=fields["station"],
        variable=fields["variable"],
        depth_from=float(fields["depth_from"]),
        depth_to=float(fields["depth_to"]),
        sensor=fields["sensor"],
        start=fields["start"],
        end=fields["end"],
    )


def _split_lines(raw: bytes) -> list[str]:
    text = raw.decode("latin-1")
    return [
        line for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n") if line.strip()
    ]


def _is_float(token: str) -> bool:
    return bool(FLOAT.match(token))


def _parse_station_block(tokens: list[str], source: str) -> dict[str, object]:
    """CSE network station... lat lon elev depth_from depth_to [sensor...]: from both ends.

    Station names may hold spaces, so the five numbers are located as the first run of five
    numeric tokens after the network.
    """
    for start in range(3, len(tokens) - 4):
        window = tokens[start : start + 5]
        if all(_is_float(t) for t in window):
            return {
                "cse": tokens[0],
                "network": tokens[1],
                "station": " ".join(tokens[2:start]),
                "latitude": float(window[0]),
                "longitude": float(window[1]),
                "elevation": float(window[2]),
                "depth_from": float(window[3]),
                "depth_to": float(window[4]),
                "sensor": " ".join(tokens[start + 5 :]),
            }
    raise InputError(
        source,
        "ISMN station line not understood",
        "expected 'CSE network station lat lon elevation depth_from depth_to sensor'",
    )


def detect_format(lines: list[str], source: str) -> str:
    """'header_values' or 'ceop_sep' from the first lines, else InputError."""
    if not lines:
        raise InputError(source, "empty ISMN file")
    first = lines[0].split()
    if (
        len(first) >= 4
        and DATE_TIME.match(first[0])
        and TIME.match(first[1])
        and DATE_TIME.match(first[2])
    ):
        return "ceop_sep"
    if len(lines) >= 2:
        second = lines[1].split()
        if len(second) >= 3 and DATE_TIME.match(second[0]) and TIME.match(second[1]):
            return "header_values"
    if len(lines) == 1 and len(first) >= 8 and not DATE_TIME.match(first[0]):
        raise InputError(source, "ISMN file has a header line but no data lines")
    raise InputError(
        source,
        "unknown ISMN file format",
        "expected 'Header+values' (a station line, then 'YYYY/MM/DD HH:MM value flag orig_flag')"
        " or 'CEOP separate files' (15 columns per line)",
    )


def _parse_records(
    records: list[tuple[int, list[str]]], source: str
) -> tuple[pd.DataFrame, int, int | None]:
    """Rows of [date, time, value, flag, orig_flag] -> frame; returns (frame, n_bad, first bad line)."""
    stamps, values, flags, orig_flags = [], [], [], []
    n_bad, first_bad = 0, None
    for line_number, fields in records:
        if (
            len(fields) < 3
            or not DATE_TIME.match(fields[0])
            or not TIME.match(fields[1])
            or not _is_float(fields[2])
        ):
            n_bad += 1
            first_bad = first_bad or line_number
            continue
        stamps.append(f"{fields[0]} {fields[1]}")
        values.append(float(fields[2]))
        flags.append(fields[3] if len(fields) > 3 else None)  # missing flags stay missing (NA)
        orig_flags.append(fields[4] if len(fields) > 4 else None)
    if not stamps:
        raise InputError(source, "no readable data line in ISMN file")
    index = pd.to_datetime(pd.Series(stamps), format="%Y/%m/%d %H:%M", errors="coerce")
    bad_time = index.isna().to_numpy()
    if bad_time.any():
        n_bad += int(bad_time.sum())
    frame = pd.DataFrame(
        {
            "soil_moisture": np.asarray(values, dtype=np.float64)[~bad_time],
            "flag": pd.array(np.asarray(flags, dtype=object)[~bad_time], dtype="str"),
            "orig_flag": pd.array(np.asarray(orig_flags, dtype=object)[~bad_time], dtype="str"),
        },
        index=pd.DatetimeIndex(index[~bad_time], name="date_time").tz_localize("UTC"),
    )
    return frame, n_bad, first_bad


def parse_sensor_bytes(
    raw: bytes, name: str, source: str | None = None, network: str | None = None
) -> pd.DataFrame:
    """Parse the content of one ISMN .stm file (``name`` is its file name, for metadata).

    ``network`` is the first folder of the file's path inside its archive: the `ismn` package
    names the network after it (also where an archive wraps its networks in one folder);
    without it the network is the one the file states."""
    source = source or name
    lines = _split_lines(raw)
    file_format = detect_format(lines, source)
    if file_format == "header_values":
        meta = _parse_station_block(lines[0].split(), source)
        records = [(number, line.split()) for number, line in enumerate(lines[1:], start=2)]
    else:
        tokens = lines[0].split()
        # nominal date, time, actual date, time, then the station block, then value flag orig
        meta = _parse_station_block(tokens[4:-3], source)
        records = []
        for number, line in enumerate(lines, start=1):
            fields = line.split()
            if len(fields) < 15:
                records.append((number, []))
                continue
            records.append((number, [fields[0], fields[1], *fields[-3:]]))
    frame, n_bad, first_bad = _parse_records(records, source)
    try:
        parts: FileNameParts | None = parse_file_name(name)
    except InputError:
        parts = None
    if parts is not None:
        # As the `ismn` package takes them: station and sensor from the file name (the header
        # may spell the station otherwise, e.g. 'CST_01' for 'CST-01', and has no sensor in
        # CEOP files); depths from the header line in Header+values files (where they may be
        # rounded: 0.05 for 0.0508 in the name), from the name in CEOP files.
        ismn_fields = PurePosixPath(name).name.split("_")
        disagreements = _header_disagreements(meta, ismn_fields[2], parts, file_format)
        meta["station"] = ismn_fields[2]
        meta["sensor"] = "_".join(ismn_fields[6:-2]) if len(ismn_fields) > 9 else ismn_fields[6]
        if file_format == "ceop_sep":
            meta["depth_from"], meta["depth_to"] = parts.depth_from, parts.depth_to
        variable = parts.variable
    else:
        variable = "sm"
        disagreements = []
    if disagreements:
        LOGGER.warning(
            "%s: header and file name disagree: %s; read as the ismn package reads it",
            source,
            ", ".join(disagreements),
        )
    if network is not None:
        if network != meta["network"]:
            LOGGER.info(
                "%s: network '%s' (the archive's top folder, as the ismn package names it), "
                "not '%s' as the file says",
                source,
                network,
                meta["network"],
            )
        meta["network"] = network
    column = VARIABLES.get(variable, variable)
    if column != "soil_moisture":
        frame = frame.rename(columns={"soil_moisture": column})
    if n_bad:
        LOGGER.warning(
            "%s: skipped %d malformed data line(s), first at line %d", source, n_bad, first_bad
        )
    frame = frame.sort_index(kind="stable")
    frame.attrs.update(
        {
            "network": meta["network"],
            "station": meta["station"],
            "latitude": meta["latitude"],
            "longitude": meta["longitude"],
            "elevation": meta["elevation"],
            "depth_from": meta["depth_from"],
            "depth_to": meta["depth_to"],
            "sensor": meta["sensor"],
            "cse": meta["cse"],
            "variable": column,
            "format": file_format,
            "path": source,
            "n_bad_lines": n_bad,
            "header_disagrees": disagreements,
        }
    )
    return frame


# Depths in a Header+values header are rounded (0.05 for 0.0508 in the name): only a larger
# difference is a disagreement worth a note.
DEPTH_TOLERANCE_M = 0.005


def _header_disagreements(
    meta: dict, station: str, parts: FileNameParts, file_format: str
) -> list[str]:
    """Where the file's header line and its name disagree (station, depths), in words. The
    ismn package takes the station from the name, and the depths from the header in
    Header+values files, from the name in CEOP files."""
    out = []
    if str(meta["station"]) != station:
        out.append(f"station '{meta['station']}' in the header, '{station}' in the name")
    for key in ("depth_from", "depth_to"):
        header_depth, name_depth = float(meta[key]), float(getattr(parts, key))
        if abs(header_depth - name_depth) > DEPTH_TOLERANCE_M:
            used = "header" if file_format == "header_values" else "name"
            out.append(
                f"{key} {header_depth:g} m in the header, {name_depth:g} m in the name "
                f"({used} used)"
            )
    return out


def read_sensor_file(path: str | Path) -> pd.DataFrame:
    """Read one ISMN sensor file (.stm) in either format. See the module docstring."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "ISMN file not found")
    return parse_sensor_bytes(path.read_bytes(), path.name, str(path))


def read_archive(
    path: str | Path, variable: str | None = "sm", skipped: Counter | None = None
) -> Iterator[pd.DataFrame]:
    """Frames of every sensor file in an ISMN archive folder or .zip, in path order.

    Folders are walked through links (clusters link data folders). ``variable`` keeps only files
    of that ISMN variable (``None``: all). Every file not read is counted in ``skipped``:
    ``ismn_files_other_variable``, ``ismn_files_not_data_name`` (``.stm`` files whose name is not
    an ISMN data file name, also logged) and ``ismn_files_not_data`` (metadata, readme, static
    variables), and broken links (``broken_links``).
    """
    skipped = skipped if skipped is not None else Counter()
    path = Path(path)
    if not path.exists():
        raise InputError(path, "ISMN archive not found", "a folder or a .zip downloaded from ISMN")
    if path.is_dir():
        members = []
        for member in walk_files(path, skipped):
            if member.suffix == ".stm":
                members.append(member)
            else:
                skipped["ismn_files_not_data"] += 1
        if not members:
            raise InputError(path, "no .stm files in ISMN archive folder")
        for member in sorted(members, key=lambda m: m.relative_to(path).as_posix()):
            if _wanted(member.name, variable, str(member), skipped):
                relative = member.relative_to(path).parts
                network = relative[0] if len(relative) > 1 else None
                yield parse_sensor_bytes(member.read_bytes(), member.name, str(member), network)
        return
    damage = zip_damage(path)
    if damage:
        raise InputError(path, f"ISMN archive is {damage}")
    if not zipfile.is_zipfile(path):
        raise InputError(path, "ISMN archive is neither a folder nor a zip file")
    with zipfile.ZipFile(path) as archive:
        names = sorted(n for n in archive.namelist() if n.endswith(".stm"))
        skipped["ismn_files_not_data"] += sum(
            1 for n in archive.namelist() if not n.endswith((".stm", "/"))
        )
        if not names:
            raise InputError(path, "no .stm files in ISMN zip archive")
        member_parts = {name: safe_member_parts(name, path) for name in names}
        for name in names:
            source = f"{path}!{name}"
            parts = member_parts[name]
            if _wanted(parts[-1], variable, source, skipped):
                network = parts[0] if len(parts) > 1 else None
                yield parse_sensor_bytes(
                    read_zip_member(archive, name, str(path)), parts[-1], source, network
                )


def _wanted(name: str, variable: str | None, source: str, skipped: Counter) -> bool:
    try:
        parts = parse_file_name(name)
    except InputError:
        LOGGER.warning("%s: skipped, not an ISMN data file name", source)
        skipped["ismn_files_not_data_name"] += 1
        return False
    if variable is not None and parts.variable != variable:
        skipped["ismn_files_other_variable"] += 1
        return False
    return True


def read_static_variables(path: str | Path) -> pd.DataFrame:
    """A station's ``*_static_variables.csv`` (';'-separated) as a DataFrame."""
    path = Path(path)
    try:
        frame = pd.read_csv(path, sep=";", index_col=False, encoding="latin-1")
    except (OSError, pd.errors.ParserError) as err:
        raise InputError(path, f"ISMN static variables file not readable: {err}") from err
    frame = frame.loc[:, ~frame.columns.str.startswith("Unnamed")]
    if "quantity_name" not in frame.columns:
        raise InputError(path, "ISMN static variables file has no 'quantity_name' column")
    return frame
