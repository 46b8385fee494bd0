"""Small helpers to write NetCDF4 files exactly as the real products are laid out.

The writers go through netCDF4-python directly (not xarray) so that integer packing,
fill values and attribute order are under control and thousands of small daily files are
written quickly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import netCDF4
import numpy as np


@dataclass
class NcVar:
    """One variable to write: ``data`` is written as is (already packed for packed variables)."""

    dims: Sequence[str]
    data: Any
    dtype: Any = None
    attrs: Mapping[str, Any] = field(default_factory=dict)
    fill_value: Any = None
    compress: bool = True


def write_netcdf(
    path: str | Path,
    dims: Mapping[str, int | None],
    variables: Mapping[str, NcVar],
    global_attrs: Mapping[str, Any] | None = None,
    complevel: int = 1,
) -> None:
    """Write a NetCDF4 file; integer data are stored raw with their scale/offset attributes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with netCDF4.Dataset(path, "w", format="NETCDF4") as dataset:
        dataset.set_auto_maskandscale(False)
        for name, size in dims.items():
            dataset.createDimension(name, size)
        for name, var in variables.items():
            data = np.asarray(var.data)
            dtype = var.dtype if var.dtype is not None else data.dtype
            if data.dtype.kind in "UO":
                dtype = str
            kwargs: dict[str, Any] = {}
            if var.compress and data.ndim >= 1 and dtype is not str:
                kwargs.update(zlib=True, complevel=complevel, shuffle=True)
            handle = dataset.createVariable(
                name, dtype, tuple(var.dims), fill_value=var.fill_value, **kwargs
            )
            handle.set_auto_maskandscale(False)
            for key, value in var.attrs.items():
                handle.setncattr(key, value)
            if data.ndim == 0:
                handle.assignValue(data)
            else:
                handle[...] = data
        for key, value in (global_attrs or {}).items():
            dataset.setncattr(key, value)


def pack(values: np.ndarray, scale: float, offset: float, fill: int, dtype: Any) -> np.ndarray:
    """Pack floats into integers (NaN -> fill), clipping into the dtype's valid range."""
    info = np.iinfo(dtype)
    lo, hi = int(info.min), int(info.max)
    if fill == lo:
        lo += 1
    elif fill == hi:
        hi -= 1
    packed = np.round((np.asarray(values, dtype=np.float64) - offset) / scale)
    packed = np.clip(np.nan_to_num(packed, nan=fill), lo, hi)
    packed = np.where(np.isnan(values), fill, packed)
    return packed.astype(dtype)
