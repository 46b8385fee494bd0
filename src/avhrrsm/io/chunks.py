"""Damaged chunks of the workflow's own Zarr stores, found and named.

The stores carry a ``crc32c`` checksum per chunk (Zarr v3's checksum codec, after ``zstd``), so
a chunk whose bytes changed fails to decode instead of giving other numbers. A chunk damaged in
a way no checksum sees (a store written without one, a bug upstream) is caught by the readers'
range check: every value read from a stack, a sample set or an inference tile must lie in the
data dictionary's valid range for its variable (:data:`avhrrsm.variables.VALID_RANGES`), so an
LST of 2.6e38 K stops the job that reads it instead of flowing into the samples. Either way the
error names the store, the variable and the chunk (``{store}/{variable}/c/{i}/{j}/...``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from avhrrsm.io.errors import InputError
from avhrrsm.variables import VALID_RANGES

CHECKSUM_HINT = "the store is damaged: delete it and rerun the job that wrote it"


def checksum_codecs() -> tuple[object, ...]:
    """The bytes-to-bytes codecs of every array the workflow writes: zstd (Zarr's default),
    then a crc32c checksum of the compressed chunk."""
    from zarr.codecs import Crc32cCodec, ZstdCodec

    return (ZstdCodec(level=0), Crc32cCodec())


def checksummed(encoding: dict[str, dict[str, object]], names: Iterable[str]) -> dict:
    """``encoding`` with the checksum codecs for every array of ``names``."""
    out = {name: dict(encoding.get(name, {})) for name in names}
    for entry in out.values():
        entry["compressors"] = checksum_codecs()
    return out


def outside_range(values: np.ndarray, bounds: tuple[float, float]) -> np.ndarray:
    """Where ``values`` lie outside ``bounds`` by more than float32 rounding (NaN: inside)."""
    low, high = bounds
    tolerance = 1e-6 * max(1.0, abs(low), abs(high))
    return (values < low - tolerance) | (values > high + tolerance)


def _chunk_key(store: Path, name: str, index: tuple[int, ...]) -> str:
    return f"{store}/{name}/c/" + "/".join(str(i) for i in index)


def damaged_chunks(
    store: str | Path, names: Iterable[str] | None = None, limit: int = 3
) -> list[str]:
    """The first chunks (at most ``limit``) of the arrays ``names`` of ``store`` (all arrays
    where None) that do not decode or hold values outside the variable's valid range, each
    with what is wrong. Reads the arrays chunk by chunk: for the message of a failed read."""
    import zarr

    store = Path(store)
    try:
        group = zarr.open_group(str(store), mode="r")
        arrays = dict(group.arrays())
    except Exception:  # noqa: BLE001 - any failure here means the metadata is gone too
        return []
    found: list[str] = []
    for name in sorted(arrays if names is None else set(names) & set(arrays)):
        array = arrays[name]
        bounds = VALID_RANGES.get(name)
        for index in np.ndindex(*array.cdata_shape):
            try:
                block = np.asarray(array.blocks[index])
            except Exception as err:  # noqa: BLE001 - a codec's own error: the chunk is bad
                found.append(f"{_chunk_key(store, name, index)} ({type(err).__name__}: {err})")
            else:
                if bounds is not None and block.dtype.kind == "f":
                    outside = outside_range(block, bounds)
                    if outside.any():
                        found.append(
                            f"{_chunk_key(store, name, index)} ({int(outside.sum())} value(s) "
                            f"outside {bounds[0]:g}..{bounds[1]:g}, e.g. "
                            f"{block[outside].flat[0]:.4g})"
                        )
            if len(found) >= limit:
                return found
    return found


def check_range(values: np.ndarray, name: str, store: str | Path, array: str | None = None) -> None:
    """An InputError naming ``store``, the variable and its first damaged chunks where values
    of ``name`` read from it lie outside the variable's valid range (NaN is a gap, not out of
    range); nothing for a variable the data dictionary gives no range. ``array``: the store's
    array the values come from where it holds several variables (a sample set's ``dynamic``)."""
    bounds = VALID_RANGES.get(name)
    if bounds is None:
        return
    low, high = bounds
    if values.size and low <= values.min() and values.max() <= high:
        return  # two reductions, no temporaries (NaN anywhere takes the full test below)
    outside = outside_range(values, bounds)
    if not outside.any():
        return
    example = float(values[outside].flat[0])
    chunks = damaged_chunks(store, [array or name])
    where = f"; damaged chunk(s): {', '.join(chunks)}" if chunks else ""
    raise InputError(
        store,
        f"{name} holds {int(outside.sum())} value(s) outside its valid range {low:g}..{high:g} "
        f"(e.g. {example:.4g}){where}",
        CHECKSUM_HINT,
    )
