"""Saving figures: PNG, written atomically, without the creation metadata that would make two
identical runs give different bytes."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from avhrrsm.atomic import atomic_path  # noqa: E402


def save_png(figure: plt.Figure, path: str | Path, dpi: int = 100) -> None:
    with atomic_path(Path(path)) as tmp:
        figure.savefig(tmp, format="png", dpi=dpi, metadata={"Software": None})
    plt.close(figure)


def png_bytes(figure: plt.Figure, dpi: int = 100) -> bytes:
    """The figure as PNG bytes (for a page that embeds it), without the creation metadata."""
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    plt.close(figure)
    return buffer.getvalue()
