"""Every MovieLens layout behind one entry: `source.resolve_source(path)` finds the files and
detects the layout; `LAYOUTS` maps a layout's name to how its files are read.

Layouts (one module each): ML-100K (`u.data`), ML-1M (`ratings.dat` + `users.dat`), ML-10M
(`ratings.dat` + `tags.dat`, UTF-8, half stars), ML-20M and later (`ratings.csv`, UTF-8, half
stars). Parsing is pure: no Beam, no TensorFlow. This module imports no filesystem code, so
command-line parsers can list the layouts cheaply.
"""

from __future__ import annotations

from kiko.data.movielens import ml100k, ml10m, ml1m, mlcsv
from kiko.data.movielens.layout import Layout
from kiko.data.movielens.records import (
    LineError, Movie, MovieLensFormatError, Rating, User)

__all__ = ["AUTO", "LAYOUTS", "LAYOUT_CHOICES", "Layout", "LineError", "Movie",
           "MovieLensFormatError", "RELEASE_LAYOUTS", "Rating", "User", "get_layout",
           "layout_of_name"]

import re
from typing import Optional

AUTO = "auto"
LAYOUTS = {layout.name: layout for layout in
           (ml100k.LAYOUT, ml1m.LAYOUT, ml10m.LAYOUT, mlcsv.LAYOUT)}
LAYOUT_CHOICES = (AUTO,) + tuple(LAYOUTS)
# GroupLens' releases (as their zips and folders are named) and the layout of each.
RELEASE_LAYOUTS = {"ml-100k": ml100k.LAYOUT.name, "ml-1m": ml1m.LAYOUT.name,
                   "ml-10m": ml10m.LAYOUT.name, "ml-20m": mlcsv.LAYOUT.name,
                   "ml-25m": mlcsv.LAYOUT.name, "ml-32m": mlcsv.LAYOUT.name,
                   "ml-latest-small": mlcsv.LAYOUT.name, "ml-latest": mlcsv.LAYOUT.name}
RELEASE_NAME = re.compile(r"ml-(100k|1m|10m|20m|25m|32m|latest-small|latest)", re.IGNORECASE)


def layout_of_name(name: str) -> Optional[str]:
    """The layout a file or folder name tells without opening it (`ml-25m.zip`, `u.data`,
    `ratings.csv`), else None."""
    base = name.rstrip("/").rsplit("/", 1)[-1]
    by_file = {layout.ratings_file: layout.name for layout in LAYOUTS.values()
               if not layout.marker_file}
    if base in by_file:
        return by_file[base]
    if base.lower().endswith(".csv"):
        return mlcsv.LAYOUT.name
    match = RELEASE_NAME.search(base)
    return RELEASE_LAYOUTS[match.group(0).lower()] if match else None


def get_layout(name: str) -> Layout:
    """The layout called `name` (ValueError listing the known ones otherwise)."""
    try:
        return LAYOUTS[name]
    except KeyError:
        raise ValueError(f"unknown MovieLens layout {name!r}; known: "
                         f"{', '.join(LAYOUTS)}") from None
