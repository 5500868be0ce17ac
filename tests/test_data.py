"""Reading ExampleGen's output into memory for the Trainer."""

import os
import shutil

import numpy as np
import pytest
from tfx.types import artifact_utils

from components.movielens_example_gen.component import make_input_config
from kiko_model import data
from kiko_model import features as fk
from kiko_data.movielens import Rating
from kiko_data.movielens.reading import read_ratings, read_side_records
from kiko_data.movielens.source import resolve_source
from tests.conftest import run_example_gen


def _split_files(examples, split):
    return [os.path.join(artifact_utils.get_split_uri([examples], split), "*")]


def test_columns_hold_every_rating_and_its_side_features(small_movielens, small_examples):
    columns = {split: data.load_examples(_split_files(small_examples, split))
               for split in (fk.TRAIN_SPLIT, fk.EVAL_SPLIT)}
    source = resolve_source(small_movielens.out_dir)
    users, movies = read_side_records(source, "users"), read_side_records(source, "movies")
    expected = sorted(read_ratings(source))
    got = []
    for split_columns in columns.values():
        keys = list(zip(split_columns[fk.USER_ID], split_columns[fk.MOVIE_ID],
                        split_columns[fk.TIMESTAMP]))
        assert keys == sorted(keys), "rows must not depend on ExampleGen's shuffled file order"
        assert split_columns[fk.RATING].dtype == np.float32
        for i in range(len(split_columns[fk.RATING])):
            user = users[int(split_columns[fk.USER_ID][i])]
            movie = movies[int(split_columns[fk.MOVIE_ID][i])]
            assert split_columns[fk.GENDER][i] == user.gender.encode()
            assert split_columns[fk.AGE][i] == user.age
            assert split_columns[fk.GENRES][i] == tuple(g.encode() for g in movie.genres)
            assert split_columns[fk.TITLE][i] == movie.title.encode("utf-8")
            got.append(Rating(int(split_columns[fk.USER_ID][i]),
                                        int(split_columns[fk.MOVIE_ID][i]),
                                        float(split_columns[fk.RATING][i]),
                                        int(split_columns[fk.TIMESTAMP][i])))
    assert sorted(got) == expected


def test_bare_ratings_give_id_columns_only(small_movielens, tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    shutil.copy(small_movielens.ratings_path, data_dir / "train_ratings.dat")
    examples = run_example_gen(data_dir, tmp_path / "out", input_config=make_input_config(
        {"single_split": "train_ratings.dat"}))
    columns = data.load_examples(_split_files(examples, fk.TRAIN_SPLIT)
                                 + _split_files(examples, fk.EVAL_SPLIT))
    assert set(columns) == {fk.USER_ID, fk.MOVIE_ID, fk.RATING, fk.TIMESTAMP}
    assert len(columns[fk.RATING]) == small_movielens.n_ratings


def test_no_files_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no example files"):
        data.load_examples([str(tmp_path / "Split-train" / "*")])
