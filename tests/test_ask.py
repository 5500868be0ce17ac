"""`kiko predict` and `kiko recommend` on the pushed model of a real home (slow: runs the
pipeline once for the shared home)."""


import glob
import json
import os

import numpy as np
import pytest

from kiko.data.movielens import ml1m
from kiko.model import data
from kiko.model import features as fk
from kiko import ask, ask_cli
from kiko.pipeline import configs
from kiko.metadata.lineage import lineage
from kiko.metadata.models import pushed_model
from kiko.metadata.store import open_store
from tests.conftest import SCHEMA_PATH

pytestmark = pytest.mark.slow
UNKNOWN_ID = 987654


@pytest.fixture(scope="module")
def train(pipeline_home):
    """The train split the pushed model learned from (its Examples, through ML Metadata)."""
    store = open_store(configs.Paths(pipeline_home).metadata_path)
    examples = lineage(store)["examples"]["uri"]
    return data.load_examples(glob.glob(os.path.join(examples, f"Split-{fk.TRAIN_SPLIT}", "*")),
                              data.read_schema(SCHEMA_PATH)).columns


@pytest.fixture(scope="module")
def movies(small_movielens):
    path = os.path.join(small_movielens.out_dir, ml1m.MOVIES_FILE)
    with open(path, encoding=ml1m.ENCODING) as f:
        return {m.movie_id: m for m in map(ml1m.parse_movie_line, f.read().splitlines())}


def _cli(main, capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_predict_shows_ratings_titles_and_what_the_model_knew(pipeline_home, train, movies,
                                                               capsys):
    user = int(train[fk.USER_ID][0])
    rated = [int(m) for m in train[fk.MOVIE_ID][train[fk.USER_ID] == user][:2]]
    code, out, _ = _cli(ask_cli.predict_main, capsys, "--home", pipeline_home, "--json",
                        "--user", str(user), *sum((["--movie", str(m)] for m in rated), []),
                        "--movie", str(UNKNOWN_ID))
    assert code == 0
    result = json.loads(out)
    rows = result["predictions"]
    assert [r["movie_id"] for r in rows] == rated + [UNKNOWN_ID]
    assert all(1.0 <= r["rating"] <= 5.0 for r in rows)
    assert [r["user_known"] for r in rows] == [True] * 3
    assert [r["movie_known"] for r in rows] == [True, True, False]
    assert result["has_titles"]
    for row in rows[:2]:
        assert row["title"] == movies[row["movie_id"]].title
        assert row["genres"] == list(movies[row["movie_id"]].genres)
    assert rows[2]["title"] is None
    assert result["model"]["path"] == pushed_model(open_store(
        configs.Paths(pipeline_home).metadata_path))["destination"]

    code, out, _ = _cli(ask_cli.predict_main, capsys, "--home", pipeline_home,
                        "--user", str(UNKNOWN_ID), "--movie", str(rated[0]))
    assert code == 0
    lines = out.splitlines()
    assert lines[1].split()[:3] == ["USER", "MOVIE", "TITLE"]
    assert lines[2].split()[:2] == [str(UNKNOWN_ID), str(rated[0])]
    assert movies[rated[0]].title in lines[2]
    assert lines[-1].startswith(f"note: user {UNKNOWN_ID} is not in the training data")


def test_recommend_ranks_unrated_movies_like_predict(pipeline_home, train, capsys):
    user = int(train[fk.USER_ID][0])
    code, out, _ = _cli(ask_cli.recommend_main, capsys, "--home", pipeline_home, "--json",
                        "--user", str(user), "-k", "5")
    assert code == 0
    result = json.loads(out)
    rows = result["recommendations"]
    assert result["user_known"] is True and [r["rank"] for r in rows] == [1, 2, 3, 4, 5]
    assert not set(r["movie_id"] for r in rows) & set(
        train[fk.MOVIE_ID][train[fk.USER_ID] == user].tolist())
    ratings = [r["rating"] for r in rows]
    assert ratings == sorted(ratings, reverse=True)
    predicted = ask.predict(pipeline_home, user, [r["movie_id"] for r in rows])
    np.testing.assert_allclose([p["rating"] for p in predicted["predictions"]], ratings,
                               atol=1e-5)
    assert all(r["title"] for r in rows)

    code, out, _ = _cli(ask_cli.recommend_main, capsys, "--home", pipeline_home,
                        "--user", str(UNKNOWN_ID), "-k", "3")
    assert code == 0
    lines = out.splitlines()
    assert [line.split()[0] for line in lines[2:5]] == ["1", "2", "3"]
    assert lines[-1] == (f"note: user {UNKNOWN_ID} is not in the training data: these are the "
                         "popular, well-rated movies the model recommends to any new user")
    other = ask.recommend(pipeline_home, UNKNOWN_ID + 1, 3)["recommendations"]
    assert [r["movie_id"] for r in other] == [int(line.split()[1]) for line in lines[2:5]]


def test_without_a_pushed_model_the_error_says_how_to_get_one(unblessed_home, tmp_path, capsys):
    code, out, err = _cli(ask_cli.predict_main, capsys, "--home", unblessed_home,
                          "--user", "1", "--movie", "1")
    assert code == 2 and out == ""
    assert "no model has been pushed" in err and "was not blessed" in err
    assert f"kiko run --home {unblessed_home}" in err

    empty = str(tmp_path / "empty")
    code, _, err = _cli(ask_cli.recommend_main, capsys, "--home", empty, "--user", "1")
    assert code == 2 and "no pipeline has run" in err and not os.path.exists(empty)

    with pytest.raises(SystemExit) as exit_info:
        ask_cli.recommend_main(["--home", empty, "--user", "1", "-k", "0"])
    assert exit_info.value.code == 2
