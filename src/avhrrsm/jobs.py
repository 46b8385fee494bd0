"""What every rule's entry point does around its science: logging and provenance.

    with run_job(snakemake, seed=...) as job:
        build_year_stack(..., global_attrs=job.attrs)

On entry: logging to the rule's log file, stale sidecars of the outputs removed, the provenance
record computed (inputs hashed). On success: a ``{output}.prov.json`` sidecar for every output.
A failed job writes no sidecar, and Snakemake removes its outputs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from avhrrsm.logs import configure_logging
from avhrrsm.provenance import (
    now,
    provenance_record,
    record_to_attrs,
    sidecar_path,
    write_sidecar,
)


class SnakemakeJob(Protocol):
    """The parts of Snakemake's ``snakemake`` script object an entry point uses."""

    rule: str
    input: Any
    output: Any
    params: Any
    wildcards: Any
    log: Any
    threads: int


@dataclass(frozen=True)
class Job:
    """A running job's provenance record; ``attrs`` is the same as NetCDF/Zarr attributes."""

    record: dict[str, Any]

    @property
    def attrs(self) -> dict[str, str]:
        return record_to_attrs(self.record)


def _named(items: Any) -> dict[str, Any]:
    try:
        return dict(items.items())
    except AttributeError:
        return dict(items)


@contextmanager
def run_job(
    snakemake: SnakemakeJob,
    *,
    seed: int | None = None,
    device: str | None = None,
) -> Iterator[Job]:
    """Set up one job (logging, provenance) and write the outputs' sidecars when it succeeds."""
    configure_logging(snakemake.log[0] if len(snakemake.log) else None)
    outputs = [Path(p) for p in snakemake.output]
    for output in outputs:
        sidecar_path(output).unlink(missing_ok=True)
    wildcards = _named(snakemake.wildcards)
    params = _named(snakemake.params)
    started = now()
    record = provenance_record(
        snakemake.rule,
        params,
        _named(snakemake.input),
        wildcards=wildcards,
        seed=seed,
        device=device,
        threads=int(snakemake.threads),
    )
    yield Job(record)
    finished = now()
    for output in outputs:
        write_sidecar(output, record, started, finished)
