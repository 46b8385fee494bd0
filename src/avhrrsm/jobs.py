"""What every rule's entry point does around its science: logging and provenance.

    with run_job(snakemake, seed=...) as job:
        build_year_stack(..., global_attrs=job.attrs)

On entry: logging to the rule's log file, stale sidecars of the outputs removed, the provenance
record computed (inputs hashed). On success: a ``{output}.prov.json`` sidecar for every output.
A failed job writes no sidecar, and Snakemake removes its outputs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
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


@dataclass
class Job:
    record: dict[str, Any]
    attrs: dict[str, str] = field(default_factory=dict)


def _named(items: Any) -> dict[str, Any]:
    try:
        return dict(items.items())
    except AttributeError:
        return dict(items)


def job_outputs(outputs: Any) -> list[Path]:
    return [Path(p) for p in outputs]


@contextmanager
def run_job(
    snakemake: SnakemakeJob,
    *,
    seed: int | None = None,
    device: str | None = None,
    extra_params: Mapping[str, Any] | None = None,
) -> Iterator[Job]:
    """Set up one job (logging, provenance) and write the outputs' sidecars when it succeeds."""
    configure_logging(snakemake.log[0] if len(snakemake.log) else None)
    outputs = job_outputs(snakemake.output)
    for output in outputs:
        sidecar_path(output).unlink(missing_ok=True)
    wildcards = _named(snakemake.wildcards)
    params = {**_named(snakemake.params), **dict(extra_params or {})}
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
    yield Job(record=record, attrs=record_to_attrs(record))
    finished = now()
    for output in outputs:
        write_sidecar(output, record, started, finished)
