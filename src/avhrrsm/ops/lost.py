"""Outputs of a finished run that have gone, which Snakemake would not make again by itself.

An intermediate output lost to a fault (an inference tile whose forced rerun was terminated
after Snakemake removed the old one, a stack deleted by hand) leaves the outputs made from it
newer than everything they read, so the next run says "Nothing to be done"; a folder output
that lost one of its files (a day of a product year) still exists, so it is not made again
either. The manifest of the run's last complete pass (``MANIFEST.json``) lists every output
and, for folders of files, every file: compared with the disk at parse time, the missing
outputs become targets of the default run (made again, and what depends on them after them),
and a folder that misses files stops the run, named, until it is made again with
``--forcerun``. Only what the current config still makes counts (a year dropped from the
config is not brought back). Standard library only: the Snakefile imports it at parse time.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

MANIFEST_NAME = "MANIFEST.json"


@dataclass
class LostOutputs:
    """``missing``: outputs gone, as the workflow names them; ``incomplete``: folder outputs
    with the files the manifest lists that they no longer hold."""

    missing: list[str] = field(default_factory=list)
    incomplete: dict[str, list[str]] = field(default_factory=dict)
    rules: dict[str, str] = field(default_factory=dict)  # the rule that made each output

    def not_forced(self, forced: Iterable[str], force_all: bool = False) -> dict[str, list[str]]:
        """The incomplete folders that ``--forcerun`` (paths or rule names) or ``--forceall``
        do not make again."""
        if force_all:
            return {}
        names = {str(Path(name)) for name in forced} | set(forced)
        return {
            path: gone
            for path, gone in self.incomplete.items()
            if str(Path(path)) not in names and self.rules.get(path) not in names
        }


def find_lost_outputs(run_dir: str | Path, expected: Iterable[str]) -> LostOutputs:
    """The outputs of ``expected`` (paths as the workflow names them, under ``run_dir``) that
    the run's manifest lists and that are gone or miss files; nothing without a manifest."""
    run_dir = Path(run_dir)
    try:
        manifest = json.loads((run_dir / MANIFEST_NAME).read_text(encoding="utf-8"))
        listed = manifest["outputs"]
    except (OSError, ValueError, KeyError, TypeError):
        return LostOutputs()
    lost = LostOutputs()
    for path in sorted(set(expected)):
        try:
            relative = Path(path).relative_to(run_dir).as_posix()
        except ValueError:
            continue
        entry = listed.get(relative)
        if not isinstance(entry, dict):
            continue
        output = Path(path)
        lost.rules[path] = str(entry.get("rule", ""))
        if not output.exists():
            lost.missing.append(path)
            continue
        members = entry.get("members") if entry.get("kind") == "folder" else None
        if isinstance(members, dict):
            gone = _gone_members(output, members)
            if gone:
                lost.incomplete[path] = gone
    return lost


def _gone_members(folder: Path, members: Iterable[str]) -> list[str]:
    """The listed files no longer in ``folder``: one listing of the folder for the files at
    its top (a year of daily files), a stat for each deeper one."""
    try:
        top = {entry.name for entry in os.scandir(folder) if entry.is_file()}
    except OSError:
        top = set()
    return sorted(
        name
        for name in members
        if not (name in top if "/" not in name else (folder / name).is_file())
    )


def incomplete_message(incomplete: dict[str, list[str]]) -> str:
    """What stops the run where folder outputs lost files, and the command that remakes them."""
    lines = [
        f"{path}: {len(gone)} file(s) that the run's {MANIFEST_NAME} lists are gone "
        f"({', '.join(gone[:3])}{' ...' if len(gone) > 3 else ''})"
        for path, gone in sorted(incomplete.items())
    ]
    return (
        "avhrrsm: output folders lost files after their jobs wrote them, and Snakemake would not "
        "make them again:\n  "
        + "\n  ".join(lines)
        + "\nmake them (and what depends on them) again: add --forcerun "
        + " ".join(sorted(incomplete))
    )
