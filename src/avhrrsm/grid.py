"""The one target grid: global 0.05 degree geographic, 7200 x 3600 pixel centres.

Longitudes run -179.975 ... 179.975 (west to east), latitudes 89.975 ... -89.975 (north to
south), as GLASS-AVHRR is distributed. A region is a bounding box on this grid, never a new grid.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

STEP_DEG = 0.05
N_LON = 7200
N_LAT = 3600


@dataclass(frozen=True)
class Window:
    """A rectangular block of the global grid: rows (north to south) and columns (west to east)."""

    row_start: int
    row_stop: int
    col_start: int
    col_stop: int

    @property
    def shape(self) -> tuple[int, int]:
        return (self.row_stop - self.row_start, self.col_stop - self.col_start)

    def lat(self) -> np.ndarray:
        """Pixel-centre latitudes (degrees north), descending."""
        rows = np.arange(self.row_start, self.row_stop)
        return np.round(90.0 - STEP_DEG * (rows + 0.5), 6)

    def lon(self) -> np.ndarray:
        """Pixel-centre longitudes (degrees east), ascending."""
        cols = np.arange(self.col_start, self.col_stop)
        return np.round(-180.0 + STEP_DEG * (cols + 0.5), 6)

    def within(self, outer: Window) -> tuple[slice, slice]:
        """(rows, cols) of this window as slices of the arrays of ``outer``, which holds it."""
        return (
            slice(self.row_start - outer.row_start, self.row_stop - outer.row_start),
            slice(self.col_start - outer.col_start, self.col_stop - outer.col_start),
        )

    def bounds(self) -> tuple[float, float, float, float]:
        """(lon_min, lat_min, lon_max, lat_max) of the pixel edges."""
        return (
            -180.0 + STEP_DEG * self.col_start,
            90.0 - STEP_DEG * self.row_stop,
            -180.0 + STEP_DEG * self.col_stop,
            90.0 - STEP_DEG * self.row_start,
        )


def window_for_bounds(lon_min: float, lat_min: float, lon_max: float, lat_max: float) -> Window:
    """The grid window whose pixel edges are the given bounds (snapped to the 0.05 grid)."""
    col_start = int(round((lon_min + 180.0) / STEP_DEG))
    col_stop = int(round((lon_max + 180.0) / STEP_DEG))
    row_start = int(round((90.0 - lat_max) / STEP_DEG))
    row_stop = int(round((90.0 - lat_min) / STEP_DEG))
    if not (0 <= col_start < col_stop <= N_LON and 0 <= row_start < row_stop <= N_LAT):
        raise ValueError(
            f"bounds lon {lon_min}..{lon_max}, lat {lat_min}..{lat_max} do not lie on the global grid"
        )
    return Window(row_start, row_stop, col_start, col_stop)


def region_window(region: Mapping[str, float], margin_deg: float = 0.0) -> Window:
    """The window of a config region, optionally widened by ``margin_deg`` (clipped to the globe)."""
    return window_for_bounds(
        max(-180.0, region["lon_min"] - margin_deg),
        max(-90.0, region["lat_min"] - margin_deg),
        min(180.0, region["lon_max"] + margin_deg),
        min(90.0, region["lat_max"] + margin_deg),
    )


def tiles(window: Window, tile_deg: float) -> list[tuple[str, Window]]:
    """The tiles of the global tiling (``tile_deg`` degrees) that meet ``window``, clipped to it.

    Tile ids are ``h{column:02d}v{row:02d}`` counted from the north-west corner of the globe,
    so a tile has the same id whatever the region.
    """
    size = int(round(tile_deg / STEP_DEG))
    if size * STEP_DEG - tile_deg > 1e-9 or N_LAT % size:
        raise ValueError(f"tile size {tile_deg} degrees does not divide the 180 degree grid")
    out = []
    for v in range(window.row_start // size, (window.row_stop - 1) // size + 1):
        for h in range(window.col_start // size, (window.col_stop - 1) // size + 1):
            tile = Window(
                max(window.row_start, v * size),
                min(window.row_stop, (v + 1) * size),
                max(window.col_start, h * size),
                min(window.col_stop, (h + 1) * size),
            )
            out.append((f"h{h:02d}v{v:02d}", tile))
    return out


def chunk_groups(
    window: Window, tile_list: list[tuple[str, Window]], chunk_px: int
) -> list[list[tuple[str, Window]]]:
    """``tile_list`` in groups that share no chunk of a store over ``window`` chunked by
    ``chunk_px`` pixels from its corner (at most the window's size, as the stores are): the
    pieces that may be written in parallel. Tiles of a region that starts off the tiling share
    chunks with their neighbours and go in one group, in the order of ``tile_list``."""
    chunk_rows = max(1, min(chunk_px, window.shape[0]))
    chunk_cols = max(1, min(chunk_px, window.shape[1]))
    parent = list(range(len(tile_list)))

    def root(index: int) -> int:
        while parent[index] != index:
            parent[index] = parent[parent[index]]
            index = parent[index]
        return index

    owner: dict[tuple[int, int], int] = {}
    for index, (_, tile) in enumerate(tile_list):
        rows = range(
            (tile.row_start - window.row_start) // chunk_rows,
            (tile.row_stop - 1 - window.row_start) // chunk_rows + 1,
        )
        cols = range(
            (tile.col_start - window.col_start) // chunk_cols,
            (tile.col_stop - 1 - window.col_start) // chunk_cols + 1,
        )
        for chunk in ((r, c) for r in rows for c in cols):
            if chunk in owner:
                first, second = root(owner[chunk]), root(index)
                parent[max(first, second)] = min(first, second)
            else:
                owner[chunk] = index
    groups: dict[int, list[tuple[str, Window]]] = {}
    for index, item in enumerate(tile_list):
        groups.setdefault(root(index), []).append(item)
    return list(groups.values())


# EASE-Grid 2.0 global grids (EPSG:6933): 36, 9 and 3 km, the grids of the SMAP Level-2/3
# products and of the reference pixels of the SMAP core validation sites. Cell sizes and the
# upper-left corner from NSIDC's EASE-Grid 2.0 definitions (M36: 964 x 406, M09: 3856 x 1624,
# M03: 11568 x 4872 cells).
EASE2_CELL_M = {36: 36032.220840584, 9: 9008.055210146, 3: 3002.6850700487}
EASE2_X0 = -17367530.44516138
EASE2_Y0 = 7314540.830638


def ease2_bounds(row: int, col: int, grid_km: int = 9) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) in metres (EPSG:6933) of a cell of the EASE-Grid 2.0 global grid."""
    size = EASE2_CELL_M[grid_km]
    x0 = EASE2_X0 + col * size
    y1 = EASE2_Y0 - row * size
    return x0, y1 - size, x0 + size, y1


def ease2_cell(
    lat: float, lon: float, grid_km: int = 9
) -> tuple[int, int, tuple[float, float, float, float]]:
    """(row, col, bounds in metres) of the EASE-Grid 2.0 global cell holding a point."""
    from pyproj import Transformer

    size = EASE2_CELL_M[grid_km]
    x, y = Transformer.from_crs("EPSG:4326", "EPSG:6933", always_xy=True).transform(lon, lat)
    col = int((x - EASE2_X0) // size)
    row = int((EASE2_Y0 - y) // size)
    return row, col, ease2_bounds(row, col, grid_km)
