"""Writing GLASS-style HDF4 files: global SDS on the 0.05 degree CMG grid of which only the
region's part is written.

The SDS are chunked and deflate-compressed, so chunks that are never written are not stored
and read back as the fill value: a global 7200 x 3600 band whose region is 4 x 4 degrees takes
a few kilobytes. ``pyhdf`` exposes no chunking call, so ``SDsetchunk`` of the HDF4 library
that its wheel bundles is called through ctypes (the C API's documented HDF_CHUNK_DEF).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from avhrrsm.grid import Window

CHUNK = (200, 200)
COMP_CODE_DEFLATE = 4
HDF_CHUNK_AND_COMP = 0x3  # HDF_CHUNK | HDF_COMP
GLOBAL_SHAPE = (3600, 7200)


class _ChunkDef(ctypes.Structure):
    # HDF_CHUNK_DEF's `comp` member: chunk_lengths[H4_MAX_VAR_DIMS], comp_type, model_type,
    # comp_info (a union whose deflate member is one intn), model_info; padded generously.
    _fields_ = [
        ("chunk_lengths", ctypes.c_int32 * 32),
        ("comp_type", ctypes.c_int32),
        ("model_type", ctypes.c_int32),
        ("deflate_level", ctypes.c_int),
        ("padding", ctypes.c_int32 * 32),
    ]


@functools.cache
def _mfhdf() -> ctypes.CDLL:
    import pyhdf
    from pyhdf import _hdfext  # noqa: F401  (loads the bundled HDF4 libraries first)

    libs = Path(pyhdf.__file__).parent.parent / "pyhdf.libs"
    candidates = sorted(libs.glob("libmfhdf*.so*"))
    if candidates:
        return ctypes.CDLL(str(candidates[0]))
    return ctypes.CDLL(_hdfext.__file__)  # a pyhdf built against a system HDF4


@dataclass
class Sds:
    """One SDS: the region's stored integers, their dtype, fill value and attributes."""

    data: np.ndarray
    fill_value: int
    attrs: Mapping[str, Any] = field(default_factory=dict)


def struct_metadata(grid: str, fields: Mapping[str, str]) -> str:
    """HDF-EOS2 ``StructMetadata.0`` of one geographic grid: the 0.05 degree CMG (corners in
    GCTP's packed DDDMMMSSS.SS degrees), ``fields`` mapping data field -> HDF-EOS type."""
    objects = "".join(
        f"\t\t\tOBJECT=DataField_{k}\n"
        f'\t\t\t\tDataFieldName="{name}"\n'
        f"\t\t\t\tDataType={dtype}\n"
        '\t\t\t\tDimList=("YDim","XDim")\n'
        f"\t\t\tEND_OBJECT=DataField_{k}\n"
        for k, (name, dtype) in enumerate(fields.items(), 1)
    )
    return (
        "GROUP=SwathStructure\nEND_GROUP=SwathStructure\nGROUP=GridStructure\n"
        f'\tGROUP=GRID_1\n\t\tGridName="{grid}"\n'
        f"\t\tXDim={GLOBAL_SHAPE[1]}\n\t\tYDim={GLOBAL_SHAPE[0]}\n"
        "\t\tUpperLeftPointMtrs=(-180000000.000000,90000000.000000)\n"
        "\t\tLowerRightMtrs=(180000000.000000,-90000000.000000)\n"
        "\t\tProjection=GCTP_GEO\n\t\tGridOrigin=HDFE_GD_UL\n"
        "\t\tGROUP=Dimension\n\t\tEND_GROUP=Dimension\n"
        f"\t\tGROUP=DataField\n{objects}\t\tEND_GROUP=DataField\n"
        "\t\tGROUP=MergedFields\n\t\tEND_GROUP=MergedFields\n"
        "\tEND_GROUP=GRID_1\nEND_GROUP=GridStructure\n"
        "GROUP=PointStructure\nEND_GROUP=PointStructure\nEND\n"
    )


def write_glass_hdf4(
    path: str | Path,
    region: Window,
    datasets: Mapping[str, Sds],
    global_attrs: Mapping[str, str] | None = None,
    grid: str = "GLASS",
) -> Path:
    """Write an HDF-EOS2 grid file: global 3600 x 7200 SDS holding ``datasets`` at
    ``region``'s rows and columns, ``StructMetadata.0`` and the grid's Vgroups (``grid``
    class GRID holding "Data Fields" and "Grid Attributes"), as GLASS distributes them; GDAL
    opens the fields as ``HDF4_EOS:EOS_GRID:"file":grid:field``, georeferenced."""
    from pyhdf.SD import SD, SDC

    types = {
        np.dtype(np.int16): SDC.INT16,
        np.dtype(np.uint16): SDC.UINT16,
        np.dtype(np.uint8): SDC.UINT8,
        np.dtype(np.int8): SDC.INT8,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _in_folder(path.parent):
        refs = _write(path.name, region, datasets, global_attrs or {}, types, SD, SDC, grid)
        _attach_to_grid(path.name, grid, refs)
    return path


def _attach_to_grid(name: str, grid: str, refs: list[int]) -> None:
    """The HDF-EOS2 Vgroups: grid (class GRID) -> "Data Fields" (the SDS), "Grid Attributes"."""
    import pyhdf.V  # noqa: F401  (HDF.vgstart needs the V interface loaded)
    from pyhdf.HDF import HC, HDF

    hdf = HDF(name, HC.WRITE)
    vgroups = hdf.vgstart()
    try:
        top = vgroups.create(grid)
        top._class = "GRID"
        fields = vgroups.create("Data Fields")
        fields._class = "GRID Vgroup"
        attributes = vgroups.create("Grid Attributes")
        attributes._class = "GRID Vgroup"
        for ref in refs:
            fields.add(HC.DFTAG_NDG, ref)
        top.insert(fields)
        top.insert(attributes)
        for group in (fields, attributes, top):
            group.detach()
    finally:
        vgroups.end()
        hdf.close()


@contextlib.contextmanager
def _in_folder(folder: Path) -> Iterator[None]:
    """HDF4 stores the name a file was created with inside it: creating it by its base name
    from its own folder keeps the bytes independent of where (which temporary folder) it is
    written. Changes the working directory of the process for the duration (the synthetic
    world's writers run one per process)."""
    previous = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(previous)


def _write(
    name: str,
    region: Window,
    datasets: Mapping[str, Sds],
    global_attrs: Mapping[str, str],
    types: Mapping[np.dtype, int],
    SD: Any,  # noqa: N803  (pyhdf's classes, imported lazily)
    SDC: Any,  # noqa: N803
    grid: str,
) -> list[int]:
    """The SDS (dimensions named as HDF-EOS names them) and StructMetadata.0; their refs."""
    path = name
    eos_types = {
        SDC.INT16: "DFNT_INT16",
        SDC.UINT16: "DFNT_UINT16",
        SDC.UINT8: "DFNT_UINT8",
        SDC.INT8: "DFNT_INT8",
    }
    refs, fields = [], {}
    hdf = SD(name, SDC.WRITE | SDC.CREATE | SDC.TRUNC)
    try:
        for key, value in global_attrs.items():
            setattr(hdf, key, value)
        for field_name, sds_spec in datasets.items():
            data = np.ascontiguousarray(sds_spec.data)
            sds = hdf.create(field_name, types[data.dtype], GLOBAL_SHAPE)
            fields[field_name] = eos_types[types[data.dtype]]
            try:
                sds.dim(0).setname(f"YDim:{grid}")
                sds.dim(1).setname(f"XDim:{grid}")
                sds.setfillvalue(data.dtype.type(sds_spec.fill_value).item())
                chunk = _ChunkDef()
                chunk.chunk_lengths[0], chunk.chunk_lengths[1] = CHUNK
                chunk.comp_type = COMP_CODE_DEFLATE
                chunk.deflate_level = 6
                status = _mfhdf().SDsetchunk(
                    ctypes.c_int32(sds._id), chunk, ctypes.c_int32(HDF_CHUNK_AND_COMP)
                )
                if status != 0:
                    raise OSError(f"{path}: SDsetchunk failed for {field_name}")
                for key, value in sds_spec.attrs.items():
                    setattr(sds, key, value)
                sds[region.row_start : region.row_stop, region.col_start : region.col_stop] = data
                refs.append(sds.ref())
            finally:
                sds.endaccess()
        hdf.attr("StructMetadata.0").set(SDC.CHAR8, struct_metadata(grid, fields))
    finally:
        hdf.end()
    return refs
