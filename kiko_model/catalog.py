"""The movie catalog that travels inside an exported SavedModel (`assets.extra/`).

A served model is then self-contained for CLIs: the movies seen in training with their titles
and genres, as UTF-8 TSV with a header (`features.CATALOG_COLUMNS`), one movie per line.
"""

from __future__ import annotations

import os
from typing import Mapping, Optional, Sequence

import tensorflow as tf

from kiko.model import features as fk


def _catalog_field(text: str) -> str:
    return " ".join(text.replace("\t", " ").splitlines())


def write_movie_catalog(catalog: Mapping[str, Sequence], export_dir: str) -> str:
    """Write `features.MOVIE_CATALOG_FILE` into the SavedModel's `assets.extra/`.

    ``catalog`` maps `features.CATALOG_COLUMNS` to parallel sequences: movie ids, titles (str)
    and genre tuples (of str). Returns the file's path.
    """
    folder = os.path.join(export_dir, fk.SAVED_MODEL_EXTRA_DIR)
    tf.io.gfile.makedirs(folder)
    path = os.path.join(folder, fk.MOVIE_CATALOG_FILE)
    lines = ["\t".join(fk.CATALOG_COLUMNS)]
    for movie_id, title, genres in zip(*(catalog[c] for c in fk.CATALOG_COLUMNS)):
        lines.append(f"{int(movie_id)}\t{_catalog_field(title)}\t"
                     + fk.CATALOG_GENRE_SEPARATOR.join(_catalog_field(g) for g in genres))
    with tf.io.gfile.GFile(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def read_movie_catalog(saved_model_dir: str) -> Optional[dict]:
    """movie id -> (title, genre tuple) from a SavedModel's catalog; None when it has none."""
    path = os.path.join(saved_model_dir, fk.SAVED_MODEL_EXTRA_DIR, fk.MOVIE_CATALOG_FILE)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path, "r") as f:
        header, *rows = f.read().splitlines()
    if tuple(header.split("\t")) != fk.CATALOG_COLUMNS:
        raise ValueError(f"{path}:1: expected the header {chr(9).join(fk.CATALOG_COLUMNS)!r}, "
                         f"got {header!r}")
    catalog = {}
    for line_number, row in enumerate(rows, start=2):
        fields = row.split("\t")
        if len(fields) != len(fk.CATALOG_COLUMNS) or not fields[0].isdigit():
            raise ValueError(f"{path}:{line_number}: expected movie_id, title and genres "
                             f"separated by tabs, got {row!r}")
        genres = tuple(fields[2].split(fk.CATALOG_GENRE_SEPARATOR)) if fields[2] else ()
        catalog[int(fields[0])] = (fields[1], genres)
    return catalog
