"""Walking input folders the way clusters lay them out: through linked folders.

Data folders on clusters are often symbolic links into project or scratch space. ``os.walk`` and
``Path.rglob`` do not descend into linked folders (before Python 3.13), so a linked network
folder of an ISMN archive, a linked MERIT tar folder or a linked year of NSIDC files would be
dropped without a word. :func:`walk_files` follows them, visits a folder reached twice (a link
back up the tree) once, and reports broken links instead of dropping them.
"""

from __future__ import annotations

import logging
import os
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from avhrrsm.io.errors import InputError

LOGGER = logging.getLogger(__name__)


def walk_files(folder: str | Path, skipped: Counter | None = None) -> Iterator[Path]:
    """Every file under ``folder``, depth first in name order, through linked folders.

    A link whose target does not exist is logged and counted under ``broken_links`` in
    ``skipped``; a folder reached a second time through a link (a loop) under ``linked_loops``.
    """
    seen: set[str] = set()

    def visit(directory: Path) -> Iterator[Path]:
        real = os.path.realpath(directory)
        if real in seen:
            LOGGER.warning("%s: a link back to %s, not walked twice", directory, real)
            if skipped is not None:
                skipped["linked_loops"] += 1
            return
        seen.add(real)
        with os.scandir(directory) as entries:
            ordered = sorted(entries, key=lambda entry: entry.name)
        for entry in ordered:
            path = Path(entry.path)
            if entry.is_dir(follow_symlinks=True):
                yield from visit(path)
            elif entry.is_file(follow_symlinks=True):
                yield path
            else:
                LOGGER.warning("%s: broken link or special file, not read", path)
                if skipped is not None:
                    skipped["broken_links"] += 1

    yield from visit(Path(folder))


ZIP_MAGIC = b"PK\x03\x04"


def zip_damage(path: str | Path) -> str | None:
    """Why a file that starts like a zip cannot be opened as one (cut off before its central
    directory, as an interrupted download leaves it), or None where it opens or is no zip."""
    path = Path(path)
    with open(path, "rb") as handle:
        if handle.read(4) != ZIP_MAGIC:
            return None
    try:
        with zipfile.ZipFile(path):
            return None
    except zipfile.BadZipFile as err:
        return f"a damaged or truncated zip file ({err}): download it again"


def read_zip_member(archive: zipfile.ZipFile, name: str, source: str) -> bytes:
    """The bytes of one member of a zip, or an InputError naming the archive and the member
    where it is damaged (bad CRC, cut deflate stream)."""
    try:
        return archive.read(name)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as err:
        raise InputError(
            source,
            f"member {name} of the zip is damaged ({type(err).__name__}: {err})",
            "download the archive again",
        ) from err


def safe_member_parts(name: str, source: str | Path) -> tuple[str, ...]:
    """The folder parts and file name of an archive member, or an InputError naming the archive
    and the member where the name is absolute (``/x``, ``C:x``) or climbs out of the archive
    (a ``..`` part): such a name would read as a network called ``/`` or ``..`` (and merge
    every network so named). Backslashes, which some Windows tools write, count as separators.
    """
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if not parts:
        raise InputError(source, f"archive member with an empty name {name!r}")
    if parts[0] == "/" or (len(parts[0]) >= 2 and parts[0][1] == ":") or ".." in parts:
        raise InputError(
            source,
            f"archive member {name!r} has an absolute name or one that climbs out of the archive",
            "an archive from the data portal names its members relative to its top; "
            "repack or download it again",
        )
    return tuple(part for part in parts if part != ".")
