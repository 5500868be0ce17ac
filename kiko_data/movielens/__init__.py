"""Every MovieLens layout behind one entry: `source.resolve_source(path)` finds the files and
detects the layout; `LAYOUTS` maps a layout's name to how its files are read.

Layouts (one module each): ML-100K (`u.data`), ML-1M (`ratings.dat` + `users.dat`), ML-10M
(`ratings.dat` + `tags.dat`, UTF-8, half stars), ML-20M and later (`ratings.csv`, UTF-8, half
stars). Parsing is pure: no Beam, no TensorFlow. This module imports no filesystem code, so
command-line parsers can list the layouts cheaply.
"""

from __future__ import annotations

from kiko_data.movielens import ml100k, ml10m, ml1m, ml20m
from kiko_data.movielens.layout import Layout
from kiko_data.movielens.records import (
    LineError, Movie, MovieLensFormatError, Rating, User)

__all__ = ["AUTO", "LAYOUTS", "LAYOUT_CHOICES", "Layout", "LineError", "Movie",
           "MovieLensFormatError", "Rating", "User", "get_layout"]

AUTO = "auto"
LAYOUTS = {layout.name: layout for layout in
           (ml100k.LAYOUT, ml1m.LAYOUT, ml10m.LAYOUT, ml20m.LAYOUT)}
LAYOUT_CHOICES = (AUTO,) + tuple(LAYOUTS)


def get_layout(name: str) -> Layout:
    """The layout called `name` (ValueError listing the known ones otherwise)."""
    try:
        return LAYOUTS[name]
    except KeyError:
        raise ValueError(f"unknown MovieLens layout {name!r}; known: "
                         f"{', '.join(LAYOUTS)}") from None
