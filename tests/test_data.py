"""Reading ExampleGen's output into memory for the Trainer."""

import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx.types import artifact_utils

from kiko.components.movielens_example_gen.component import make_input_config
from kiko.data.movielens import Rating
from kiko.data.movielens.reading import read_ratings, read_side_records
from kiko.data.movielens.source import resolve_source
from kiko.model import data
from kiko.model import features as fk
from tests.conftest import SCHEMA_PATH, run_example_gen


def _split_files(examples, split):
    return [os.path.join(artifact_utils.get_split_uri([examples], split), "*")]


@pytest.fixture(scope="module")
def schema():
    return data.read_schema(SCHEMA_PATH)


def _write_examples(path, rows):
    """A gzip TFRecord file of tf.Examples; each row maps a feature to its list of values."""
    with tf.io.TFRecordWriter(str(path), options="GZIP") as writer:
        for row in rows:
            feature = {}
            for key, values in row.items():
                if values and isinstance(values[0], bytes):
                    feature[key] = tf.train.Feature(bytes_list=tf.train.BytesList(value=values))
                elif values and isinstance(values[0], float):
                    feature[key] = tf.train.Feature(float_list=tf.train.FloatList(value=values))
                else:
                    feature[key] = tf.train.Feature(int64_list=tf.train.Int64List(value=values))
            writer.write(tf.train.Example(
                features=tf.train.Features(feature=feature)).SerializeToString())


def _rating(user, movie, rating, timestamp=0, **side):
    return {fk.USER_ID: [user], fk.MOVIE_ID: [movie], fk.RATING: [float(rating)],
            fk.TIMESTAMP: [timestamp], **side}


def test_columns_hold_every_rating_and_side_tables_every_entity(small_movielens, small_examples,
                                                                 schema):
    splits = {split: data.load_examples(_split_files(small_examples, split), schema)
              for split in (fk.TRAIN_SPLIT, fk.EVAL_SPLIT)}
    source = resolve_source(small_movielens.out_dir)
    users, movies = read_side_records(source, "users"), read_side_records(source, "movies")
    expected = sorted(read_ratings(source))
    got = []
    for examples in splits.values():
        columns = examples.columns
        assert set(columns) == set(data.ROW_FEATURES)
        keys = list(zip(columns[fk.USER_ID], columns[fk.MOVIE_ID], columns[fk.TIMESTAMP]))
        assert keys == sorted(keys), "rows must not depend on ExampleGen's shuffled file order"
        assert columns[fk.RATING].dtype == np.float32
        got += [Rating(*row) for row in zip(
            columns[fk.USER_ID].tolist(), columns[fk.MOVIE_ID].tolist(),
            columns[fk.RATING].tolist(), columns[fk.TIMESTAMP].tolist())]
        # One row per user and per movie of the split, with the values of users/movies.dat.
        np.testing.assert_array_equal(examples.users.ids, np.unique(columns[fk.USER_ID]))
        np.testing.assert_array_equal(examples.movies.ids, np.unique(columns[fk.MOVIE_ID]))
        assert set(examples.users.features) == set(fk.USER_SIDE_FEATURES)
        for i, user_id in enumerate(examples.users.ids):
            user = users[int(user_id)]
            features = examples.users.features
            assert features[fk.GENDER].values_of(i) == (user.gender.encode(),)
            assert features[fk.AGE].values_of(i) == (user.age,)
            assert features[fk.OCCUPATION].values_of(i) == (user.occupation.encode(),)
        for i, movie_id in enumerate(examples.movies.ids):
            movie = movies[int(movie_id)]
            features = examples.movies.features
            assert features[fk.TITLE].values_of(i) == (movie.title.encode("utf-8"),)
            assert set(features[fk.GENRES].values_of(i)) == {g.encode() for g in movie.genres}
            assert features[fk.YEAR].values_of(i) == ((movie.year,) if movie.year else ())
    assert sorted(got) == expected


def test_bare_ratings_give_rows_and_no_side_features(small_movielens, tmp_path, schema):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    shutil.copy(small_movielens.ratings_path, data_dir / "train_ratings.dat")
    examples = run_example_gen(data_dir, tmp_path / "out", input_config=make_input_config(
        {"single_split": "train_ratings.dat"}))
    loaded = data.load_examples(_split_files(examples, fk.TRAIN_SPLIT)
                                + _split_files(examples, fk.EVAL_SPLIT), schema)
    assert set(loaded.columns) == set(data.ROW_FEATURES)
    assert len(loaded) == small_movielens.n_ratings
    assert not loaded.users.features and not loaded.movies.features
    assert data.movie_catalog(loaded) is None


def test_types_come_from_the_schema(tmp_path):
    # Occupation as a name (BYTES), as the data contract announces: change the schema, not code.
    schema = data.read_schema(SCHEMA_PATH)
    for feature in schema.feature:
        if feature.name == fk.OCCUPATION:
            feature.type = schema_pb2.BYTES
            feature.ClearField("int_domain")
    drama = {"genres": [b"Drama", b"War"]}
    _write_examples(tmp_path / "part.gz", [
        _rating(2, 10, 4.5, 7, occupation=[b"writer"], **drama),
        _rating(1, 10, 3.0, 5, occupation=[b"artist"], **drama),
        _rating(1, 11, 0.5, 6, occupation=[b"artist"], year=[1999]),
        _rating(3, 11, 5.0, 8, year=[1999]),  # a user without side features
    ])
    loaded = data.load_examples([str(tmp_path / "*.gz")], schema)
    np.testing.assert_array_equal(loaded.columns[fk.USER_ID], [1, 1, 2, 3])
    np.testing.assert_array_equal(loaded.columns[fk.RATING], np.float32([3.0, 0.5, 4.5, 5.0]))
    occupation = loaded.users.features[fk.OCCUPATION]
    assert list(occupation.vocabulary) == [b"artist", b"writer"]
    assert [occupation.values_of(i) for i in range(3)] == [(b"artist",), (b"writer",), ()]
    genres = loaded.movies.features[fk.GENRES]
    assert [genres.values_of(i) for i in range(2)] == [(b"Drama", b"War"), ()]
    assert [loaded.movies.features[fk.YEAR].values_of(i) for i in range(2)] == [(), (1999,)]


def test_an_example_without_a_rating_is_a_clear_error(tmp_path, schema):
    bad = _rating(1, 2, 3.0)
    del bad[fk.RATING]
    _write_examples(tmp_path / "part.gz", [_rating(1, 1, 4.0), bad])
    with pytest.raises(ValueError, match="0 values of 'rating'"):
        data.load_examples([str(tmp_path / "*.gz")], schema)


def test_no_files_is_a_clear_error(tmp_path, schema):
    with pytest.raises(FileNotFoundError, match="no example files"):
        data.load_examples([str(tmp_path / "Split-train" / "*")], schema)


def test_side_tables_align_to_other_ids_and_split_with_the_rows():
    examples = data.from_columns({
        fk.USER_ID: [3, 1, 3, 2], fk.MOVIE_ID: [7, 7, 8, 9], fk.RATING: [1.0, 2.0, 3.0, 4.0],
        fk.GENDER: [b"M", b"F", b"M", b"F"], fk.GENRES: [(b"A", b"B"), (b"A", b"B"), (), (b"C",)]})
    np.testing.assert_array_equal(examples.columns[fk.USER_ID], [1, 2, 3, 3])
    aligned = examples.users.aligned(np.array([0, 2, 3, 99]))
    assert [aligned.features[fk.GENDER].values_of(i) for i in range(4)] == [
        (), (b"F",), (b"M",), ()]
    movies = examples.movies.aligned(np.array([9, 8, 7]))
    assert [movies.features[fk.GENRES].values_of(i) for i in range(3)] == [
        (b"C",), (), (b"A", b"B")]
    fit, val = data.split_validation(examples, 0.5, seed=3)
    assert len(fit) + len(val) == 4
    assert sorted(fit.columns[fk.RATING].tolist() + val.columns[fk.RATING].tolist()) == [
        1.0, 2.0, 3.0, 4.0]
    assert fit.users is examples.users


def test_a_ratings_validation_side_does_not_depend_on_the_rest_of_the_data():
    rng = np.random.default_rng(0)
    n = 20000
    columns = {fk.USER_ID: rng.integers(1, 500, n), fk.MOVIE_ID: rng.integers(1, 900, n),
               fk.TIMESTAMP: rng.integers(0, 10**9, n), fk.RATING: rng.integers(1, 6, n)}
    mask = data.validation_mask(columns, 0.05, seed=42)
    assert 0.04 < mask.mean() < 0.06
    # The second half alone (a later window) puts each of its ratings on the same side.
    later = {k: v[n // 2:] for k, v in columns.items()}
    np.testing.assert_array_equal(data.validation_mask(later, 0.05, seed=42), mask[n // 2:])
    # Another seed draws another part.
    assert (data.validation_mask(columns, 0.05, seed=43) != mask).any()
