"""Writing gridded outputs as CF-described Zarr stores, tile by tile, atomically.

A store is created empty (lazily, with its final shape, chunks and attributes), then each tile
is written into its region, so memory is bounded by one tile. Writers wrap a store in
:func:`avhrrsm.atomic.atomic_path`: written under a temporary name, renamed when complete.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr
import zarr
from pyproj import CRS

from avhrrsm.grid import Window
from avhrrsm.io.chunks import checksum_codecs

CONVENTIONS = "CF-1.8"


def crs_variable() -> xr.DataArray:
    """The CF grid-mapping variable of the geographic 0.05 degree grid (WGS 84)."""
    return xr.DataArray(
        np.int32(0),
        attrs={
            "grid_mapping_name": "latitude_longitude",
            "longitude_of_prime_meridian": 0.0,
            "semi_major_axis": 6378137.0,
            "inverse_flattening": 298.257223563,
            "crs_wkt": CRS.from_epsg(4326).to_wkt(),
        },
    )


def lat_lon_coords(window: Window) -> dict[str, xr.DataArray]:
    return {
        "lat": xr.DataArray(
            window.lat(),
            dims="lat",
            attrs={
                "standard_name": "latitude",
                "long_name": "latitude",
                "units": "degrees_north",
                "axis": "Y",
            },
        ),
        "lon": xr.DataArray(
            window.lon(),
            dims="lon",
            attrs={
                "standard_name": "longitude",
                "long_name": "longitude",
                "units": "degrees_east",
                "axis": "X",
            },
        ),
    }


def create_store(
    path: Path,
    window: Window,
    variables: Mapping[str, tuple[tuple[str, ...], Any, Mapping[str, Any]]],
    chunks: Mapping[str, int],
    global_attrs: Mapping[str, Any],
    extra_coords: Mapping[str, xr.DataArray] | None = None,
) -> None:
    """An empty store with the final layout: ``variables`` maps name -> (dims, dtype, attrs)."""
    coords = {**lat_lon_coords(window), **(extra_coords or {})}
    sizes = {name: coord.size for name, coord in coords.items()}
    data_vars = {}
    encoding = {}
    for name, (dims, dtype, attrs) in variables.items():
        shape = tuple(sizes[d] for d in dims)
        chunk_shape = tuple(min(chunks.get(d, sizes[d]), sizes[d]) for d in dims)
        fill = (
            np.nan
            if np.dtype(dtype).kind == "f"
            else np.iinfo(dtype).min
            if np.dtype(dtype).kind == "i"
            else 0
        )
        data_vars[name] = xr.DataArray(
            da.full(shape, fill, dtype=dtype, chunks=chunk_shape),
            dims=dims,
            attrs={**attrs, "grid_mapping": "crs"},
        )
        encoding[name] = {"chunks": chunk_shape, "compressors": checksum_codecs()}
        if np.dtype(dtype).kind != "f":
            encoding[name]["_FillValue"] = None
    dataset = xr.Dataset(data_vars, coords=coords)
    dataset["crs"] = crs_variable()
    dataset.attrs = {"Conventions": CONVENTIONS, **global_attrs}
    dataset.to_zarr(path, mode="w", compute=False, encoding=encoding, consolidated=True)


def write_region(
    path: Path,
    window: Window,
    tile: Window,
    arrays: Mapping[str, np.ndarray],
    dims: Mapping[str, tuple[str, ...]],
    starts: Mapping[str, int] | None = None,
) -> None:
    """Write the arrays of one tile (a sub-window of ``window``) into the store.

    Other dimensions (time) start at ``starts[dim]`` (default 0) and run the arrays' length.
    """
    rows, cols = tile.within(window)
    data_vars = {name: (dims[name], values) for name, values in arrays.items()}
    region = {"lat": rows, "lon": cols}
    for name in arrays:
        for dim in dims[name]:
            if dim not in region:
                start = (starts or {}).get(dim, 0)
                region[dim] = slice(start, start + arrays[name].shape[dims[name].index(dim)])
    # the metadata stays as create_store wrote it: regions of one store may be written by
    # several processes at once, and re-consolidating would rewrite the root's zarr.json
    xr.Dataset(data_vars).to_zarr(path, region=region, consolidated=False)


def store_arrays(path: Path, names: tuple[str, ...]) -> dict[str, Any]:
    """The arrays ``names`` of a store made by :func:`create_store`, opened once for writing
    blocks into (a block over the whole extent of the other dimensions; blocks that hold whole
    chunks may be written from several threads at once)."""
    group = zarr.open_group(str(path), mode="r+")
    return {name: group[name] for name in names}
