"""Where the workflow's own files lie: the folder with the Snakefile, ``workflow/`` and
``profiles/``. Functions take these paths as arguments; only the command line looks for them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class CheckoutNotFound(FileNotFoundError):
    """No avhrrsm workflow folder where one was looked for."""


@dataclass(frozen=True)
class Checkout:
    """A copy of the avhrrsm workflow (a git clone, an unpacked release)."""

    root: Path

    @property
    def snakefile(self) -> Path:
        return self.root / "Snakefile"

    @property
    def rules_dir(self) -> Path:
        return self.root / "workflow" / "rules"

    def config(self, name: str) -> Path:
        """A shipped configuration, e.g. ``global`` -> workflow/configs/global.yaml."""
        return self.root / "workflow" / "configs" / f"{name}.yaml"

    def profile(self, name: str) -> Path:
        """A shipped Snakemake profile's config file, e.g. ``slurm``."""
        return self.root / "profiles" / name / "config.yaml"


def is_checkout(folder: Path) -> bool:
    return (folder / "Snakefile").is_file() and (folder / "workflow" / "rules").is_dir()


def find_checkout(start: str | Path | None = None) -> Checkout:
    """The workflow folder ``start`` (default: the current folder) or the nearest one above it.

    Raises :class:`CheckoutNotFound` naming where it looked and how to say where it is.
    """
    here = Path(start if start is not None else Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if is_checkout(folder):
            return Checkout(folder)
    raise CheckoutNotFound(
        f"{here}: no avhrrsm workflow (a Snakefile beside workflow/rules/) here or in a folder "
        "above; run from the workflow's folder or give it with --workflow DIR"
    )


def checkout_at(folder: str | Path) -> Checkout:
    """The workflow at ``folder`` exactly (the --workflow option), checked."""
    path = Path(folder).resolve()
    if not is_checkout(path):
        raise CheckoutNotFound(
            f"{path}: not an avhrrsm workflow folder (no Snakefile beside workflow/rules/)"
        )
    return Checkout(path)
