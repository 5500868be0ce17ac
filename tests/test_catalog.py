"""The movie catalog written into, and read back from, a SavedModel's assets.extra/."""

import numpy as np

from kiko.model import features as fk
from kiko.model.catalog import read_movie_catalog, write_movie_catalog


def test_movie_catalog_round_trips_through_the_saved_model_folder(tmp_path):
    catalog = {fk.MOVIE_ID: np.array([3, 12], np.int64),
               fk.TITLE: ["Misérables, Les (1995)", 'Odd\ttitle with "quotes"'],
               fk.GENRES: [("Drama", "Musical"), ()]}
    path = write_movie_catalog(catalog, str(tmp_path))
    assert path == str(tmp_path / fk.SAVED_MODEL_EXTRA_DIR / fk.MOVIE_CATALOG_FILE)
    with open(path, encoding="utf-8") as f:
        assert f.read().splitlines() == ["movie_id\ttitle\tgenres",
                                         "3\tMisérables, Les (1995)\tDrama|Musical",
                                         '12\tOdd title with "quotes"\t']
    assert read_movie_catalog(str(tmp_path)) == {
        3: ("Misérables, Les (1995)", ("Drama", "Musical")),
        12: ('Odd title with "quotes"', ())}
    assert read_movie_catalog(str(tmp_path / "elsewhere")) is None
