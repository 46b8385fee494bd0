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
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

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
