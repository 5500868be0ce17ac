"""Names of what MovieLensExampleGen writes besides the Split-* folders of its Examples artifact.

Inside the artifact folder: the quarantined lines, the dropped duplicates, the data-quality
report, the distinct ids of the data (IDS_DIR, read with `read_ids`), and two working folders
removed before the execution ends. Custom properties of the artifact in ML Metadata: the report
as JSON and its main counts (span, version and input_fingerprint are TFX's own).
"""

from typing import Iterable

import numpy as np
from tfx.dsl.io import fileio

from kiko.data.movielens.files import join, parent
from kiko.model import features as fk

REJECTED_DIR = "rejected_lines"  # one text file per input split: `file:line: reason: 'line'`
DUPLICATES_DIR = "duplicates"  # one text file per input split: the dropped duplicate lines
QUALITY_DIR = "data_quality"  # the report (JSON) and the per-split statistics it is built from
QUALITY_FILE = "data_quality.json"
# The distinct user and movie ids of the examples (every split), ascending, one per line:
# `ids/user_id.txt`, `ids/movie_id.txt`.
IDS_DIR = "ids"
ID_FEATURES = (fk.USER_ID, fk.MOVIE_ID)

# Working folders: a decompressed copy of a zipped ratings file and the duplicate search's key
# files; the workers' progress marks (see progress.py).
STAGING_DIR = "_staging"
PROGRESS_DIR = "_progress"

# Custom properties of the Examples artifact.
DATA_QUALITY_PROPERTY = "data_quality"  # the whole report, JSON text
REJECTED_LINES_PROPERTY = "rejected_lines"
LINES_READ_PROPERTY = "lines_read"
DUPLICATES_EXACT_PROPERTY = "duplicates_exact"
DUPLICATES_CONFLICTING_PROPERTY = "duplicates_conflicting"
WITHOUT_USER_PROPERTY = "ratings_without_user"
WITHOUT_MOVIE_PROPERTY = "ratings_without_movie"
LAYOUT_PROPERTY = "layout"


def ids_path(examples_uri: str, feature: str) -> str:
    """The ids file of `feature` (one of ID_FEATURES) in an Examples artifact."""
    if feature not in ID_FEATURES:
        raise ValueError(f"ids are written for {', '.join(ID_FEATURES)}, not {feature!r}")
    return join(join(examples_uri, IDS_DIR), f"{feature}.txt")


def write_ids(path: str, ids: Iterable[int]) -> None:
    """Writes sorted unique ids, one per line."""
    values = np.unique(np.fromiter(ids, dtype=np.int64))
    fileio.makedirs(parent(path))
    with fileio.open(path, "w") as f:
        f.write("".join(f"{value}\n" for value in values.tolist()))


def read_ids_file(path: str) -> np.ndarray:
    """The ids of an ids file: sorted unique int64."""
    with fileio.open(path, "r") as f:
        text = f.read()
    try:
        return np.unique(np.asarray(text.split(), dtype=np.int64))
    except ValueError:
        raise ValueError(f"{path} holds something other than integer ids") from None


def read_ids(examples_uri: str, feature: str) -> np.ndarray:
    """The distinct ids of `feature` (user_id, movie_id) in an Examples artifact, over all its
    splits: sorted unique int64."""
    path = ids_path(examples_uri, feature)
    if not fileio.exists(path):
        raise FileNotFoundError(f"no {feature} ids in the Examples artifact at {examples_uri} "
                                f"({path} is absent: written by an older MovieLensExampleGen?)")
    return read_ids_file(path)
