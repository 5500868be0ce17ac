"""MovieLensExampleGen's executor on generated data, run in-process without an orchestrator."""

import glob
import os
import random
import shutil
import zipfile

import pytest
import tensorflow as tf
from tfx.types import artifact_utils

from components.movielens_example_gen import spec
from components.movielens_example_gen.component import (
    MovieLensExampleGen, make_input_config, make_output_config)
from components.movielens_example_gen.options import MALFORMED_SKIP, PARTITION_BY_USER
from components.movielens_example_gen.example_encoder import RatingEncoder
from kiko_model import features as fk
from kiko_data import movielens
from kiko_data.movielens import Movie, Rating, User
from tests.conftest import run_example_gen as run_executor


def read_split(examples, split):
    files = glob.glob(os.path.join(artifact_utils.get_split_uri([examples], split), "*.gz"))
    assert files, f"no files for split {split}"
    return [bytes(r.numpy()) for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]


def values(example: tf.train.Example, key: str):
    feature = example.features.feature[key]
    return list(getattr(feature, feature.WhichOneof("kind")).value)


@pytest.fixture(scope="module")
def default_run(small_examples):
    return small_examples


def test_default_split_is_nine_to_one_and_loses_nothing(small_movielens, default_run):
    assert artifact_utils.decode_split_names(default_run.split_names) == ["train", "eval"]
    train, eval_ = read_split(default_run, "train"), read_split(default_run, "eval")
    assert len(train) + len(eval_) == small_movielens.n_ratings
    assert len(eval_) / small_movielens.n_ratings == pytest.approx(0.1, abs=0.015)
    assert default_run.get_int_custom_property(spec.REJECTED_LINES_PROPERTY) == 0


def test_split_membership_is_identical_across_runs(small_movielens, default_run, tmp_path):
    again = run_executor(small_movielens.out_dir, tmp_path / "again")
    for split in ("train", "eval"):
        assert sorted(read_split(again, split)) == sorted(read_split(default_run, split))


def test_side_features_are_joined(small_movielens, default_run):
    users = movielens.read_users(movielens.FileRef(small_movielens.users_path))
    movies = movielens.read_movies(movielens.FileRef(small_movielens.movies_path))
    checked = 0
    for serialized in read_split(default_run, "eval")[:200]:
        example = tf.train.Example.FromString(serialized)
        user = users[values(example, fk.USER_ID)[0]]
        movie = movies[values(example, fk.MOVIE_ID)[0]]
        assert values(example, fk.GENDER) == [user.gender.encode()]
        assert values(example, fk.AGE) == [user.age]
        assert values(example, fk.OCCUPATION) == [user.occupation]
        assert values(example, fk.ZIP_PREFIX) == [user.zip_code[:fk.ZIP_PREFIX_LENGTH].encode()]
        assert values(example, fk.TITLE) == [movie.title.encode("utf-8")]
        assert values(example, fk.GENRES) == [g.encode() for g in movie.genres]
        assert values(example, fk.YEAR) == ([movie.year] if movie.year else [])
        assert 1.0 <= values(example, fk.RATING)[0] <= 5.0
        checked += 1
    assert checked == 200


def test_examples_match_the_ratings_file(small_movielens, default_run):
    with open(small_movielens.ratings_path, encoding=fk.ML1M_ENCODING) as f:
        expected = sorted(movielens.iter_ratings(f, small_movielens.ratings_path))
    got = []
    for split in ("train", "eval"):
        for serialized in read_split(default_run, split):
            example = tf.train.Example.FromString(serialized)
            got.append(Rating(*(values(example, k)[0] for k in
                                (fk.USER_ID, fk.MOVIE_ID, fk.RATING, fk.TIMESTAMP))))
    assert sorted(got) == expected


def test_partition_by_user_keeps_each_user_in_one_split(small_movielens, tmp_path):
    examples = run_executor(small_movielens.out_dir, tmp_path,
                            output_config=make_output_config(
                                {"train": 4, "eval": 1}, partition_by=PARTITION_BY_USER))
    users = {}
    for split in ("train", "eval"):
        for serialized in read_split(examples, split):
            user = values(tf.train.Example.FromString(serialized), fk.USER_ID)[0]
            users.setdefault(user, set()).add(split)
    assert all(len(splits) == 1 for splits in users.values())
    eval_users = sum(1 for s in users.values() if s == {"eval"})
    assert 0.1 < eval_users / len(users) < 0.3


def test_predefined_split_files_and_bare_ratings(small_movielens, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    with open(small_movielens.ratings_path, encoding=fk.ML1M_ENCODING) as f:
        lines = f.readlines()
    (data / "train_ratings.dat").write_text("".join(lines[:7000]), encoding=fk.ML1M_ENCODING)
    (data / "eval_ratings.dat").write_text("".join(lines[7000:]), encoding=fk.ML1M_ENCODING)
    examples = run_executor(data, tmp_path / "out", input_config=make_input_config(
        {"train": "train_ratings.dat", "eval": "eval_ratings.dat"}))
    train, eval_ = read_split(examples, "train"), read_split(examples, "eval")
    assert (len(train), len(eval_)) == (7000, len(lines) - 7000)
    # No users.dat / movies.dat beside the files: ids, rating and timestamp only.
    keys = set(tf.train.Example.FromString(train[0]).features.feature)
    assert keys == {fk.USER_ID, fk.MOVIE_ID, fk.RATING, fk.TIMESTAMP}


def test_reads_ml1m_zip(small_movielens, tmp_path):
    archive = tmp_path / "ml-1m.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in (small_movielens.ratings_path, small_movielens.users_path,
                     small_movielens.movies_path):
            zf.write(path, f"ml-1m/{os.path.basename(path)}")
    examples = run_executor(tmp_path, tmp_path / "out",
                            input_config=make_input_config({"single_split": "ml-1m.zip"}))
    total = len(read_split(examples, "train")) + len(read_split(examples, "eval"))
    assert total == small_movielens.n_ratings
    example = tf.train.Example.FromString(read_split(examples, "eval")[0])
    assert fk.GENRES in example.features.feature and fk.GENDER in example.features.feature


def _with_bad_line(small_movielens, folder, line_index, bad_line):
    folder.mkdir()
    for path in (small_movielens.users_path, small_movielens.movies_path):
        shutil.copy(path, folder)
    with open(small_movielens.ratings_path, encoding=fk.ML1M_ENCODING) as f:
        lines = f.readlines()
    lines.insert(line_index, bad_line + "\n")
    (folder / fk.RATINGS_FILE).write_text("".join(lines), encoding=fk.ML1M_ENCODING)
    return len(lines)


def test_malformed_line_fails_with_file_line_and_reason(small_movielens, tmp_path):
    _with_bad_line(small_movielens, tmp_path / "data", 4321, "12::34::five::978300760")
    with pytest.raises(Exception, match=r"ratings\.dat:4322: rating 'five' is not a number"):
        run_executor(tmp_path / "data", tmp_path / "out")


def test_skip_mode_quarantines_and_counts_malformed_lines(small_movielens, tmp_path):
    n_lines = _with_bad_line(small_movielens, tmp_path / "data", 10, "12::34::5")
    examples = run_executor(tmp_path / "data", tmp_path / "out",
                            malformed_lines=MALFORMED_SKIP)
    assert examples.get_int_custom_property(spec.REJECTED_LINES_PROPERTY) == 1
    rejected = glob.glob(os.path.join(examples.uri, spec.REJECTED_DIR, "*.txt"))
    assert len(rejected) == 1
    with open(rejected[0]) as f:
        lines = f.read().splitlines()
    assert len(lines) == 1 and "ratings.dat:11: expected 4 fields" in lines[0]
    total = len(read_split(examples, "train")) + len(read_split(examples, "eval"))
    assert total == n_lines - 1


def test_component_rejects_bad_options():
    with pytest.raises(ValueError, match="malformed_lines"):
        MovieLensExampleGen(input_base="/data", malformed_lines="ignore")
    with pytest.raises(ValueError, match="partition_by"):
        make_output_config(partition_by="movie")
    with pytest.raises(ValueError, match="positive"):
        make_output_config({"train": 9, "eval": 0})


def test_encoder_writes_deterministic_serialization():
    rng = random.Random(3)
    users = {u: User(u, rng.choice("MF"), rng.choice([1, 18, 56]), rng.randrange(21),
                     f"{rng.randrange(100000):05d}") for u in range(1, 50)}
    movies = {m: Movie(m, f"Misérables, Les (Part {m}) (19{m % 90 + 10})",
                       None if m % 5 == 0 else 1900 + m, ("Drama", "Children's")[: 1 + m % 2])
              for m in range(1, 60)}
    encoder = RatingEncoder(users, movies)
    for _ in range(500):
        rating = Rating(rng.randrange(1, 60), rng.randrange(1, 70),
                        rng.choice([1.0, 3.5, 5.0, 7.0]), rng.randrange(0, 2 ** 40))
        serialized = encoder.encode(rating)
        example = tf.train.Example.FromString(serialized)
        assert example.SerializeToString(deterministic=True) == serialized
        assert values(example, fk.USER_ID) == [rating.user_id]
        assert values(example, fk.RATING) == [rating.rating]
        # Unknown users (movies) get no side features rather than wrong ones.
        assert (fk.GENDER in example.features.feature) == (rating.user_id in users)
        assert (fk.GENRES in example.features.feature) == (rating.movie_id in movies)
