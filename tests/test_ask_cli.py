"""`kiko predict` / `kiko recommend` without a pipeline: ids and -k checked before TensorFlow
sees them, titles printed safe for a terminal (exact in JSON), and a corrupt pushed model
reported in one line naming its file."""

import json

import pytest

from kiko import ask, ask_cli
from kiko.data.movielens.records import MAX_INT64

HOSTILE = "Evil \x1b[2J\x1b]0;pwned\x07 (2000)"
MODEL = {"model_id": 3, "version": "1", "path": "/serving/1"}


@pytest.fixture
def asked(monkeypatch):
    """Fake predict/recommend answering with a hostile title; records what they were asked."""
    calls = []

    def fake_predict(home, user, movies):
        calls.append((user, list(movies)))
        return {"model": MODEL, "has_titles": True, "predictions": [
            {"user_id": user, "movie_id": m, "title": HOSTILE if i == 0 else "Fête (1999)",
             "genres": ["Drama\x08", "War"], "rating": 3.5 + i, "user_known": True,
             "movie_known": True} for i, m in enumerate(movies)]}

    def fake_recommend(home, user, k):
        calls.append((user, k))
        return {"model": MODEL, "has_titles": True, "user_id": user, "user_known": True,
                "k": k, "recommendations": [
                    {"rank": 1, "movie_id": 12345, "title": HOSTILE, "genres": ["Drama"],
                     "rating": 4.5},
                    {"rank": 2, "movie_id": 7, "title": "Fête (1999)", "genres": ["Comedy"],
                     "rating": 4.25}]}

    monkeypatch.setattr(ask_cli, "predict", fake_predict)
    monkeypatch.setattr(ask_cli, "recommend", fake_recommend)
    return calls


@pytest.mark.parametrize("main, argv", [
    (ask_cli.predict_main, ["--user", str(MAX_INT64 + 1), "--movie", "1"]),
    (ask_cli.predict_main, ["--user", "1", "--movie", str(2 ** 64)]),
    (ask_cli.predict_main, ["--user", "1_000", "--movie", "1"]),
    (ask_cli.predict_main, ["--user", "١٢", "--movie", "1"]),
    (ask_cli.predict_main, ["--user", " 5", "--movie", "1"]),
    (ask_cli.predict_main, ["--user", "-1", "--movie", "1"]),
    (ask_cli.recommend_main, ["--user", "1", "-k", str(2 ** 31)]),
    (ask_cli.recommend_main, ["--user", "1", "-k", "0"]),
    (ask_cli.recommend_main, ["--user", "1", "-k", "1_0"]),
])
def test_out_of_range_ids_and_k_are_argparse_errors(main, argv, asked, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and not asked
    prog = "kiko predict" if main is ask_cli.predict_main else "kiko recommend"
    assert err.splitlines()[-1].startswith(f"{prog}: error: argument ")
    assert "Traceback" not in err


def test_largest_id_and_k_are_accepted(asked, capsys):
    assert ask_cli.predict_main(["--user", str(MAX_INT64), "--movie", "0", "--json"]) == 0
    assert ask_cli.recommend_main(["--user", "007", "-k", str(ask_cli.MAX_K), "--json"]) == 0
    assert asked == [(MAX_INT64, [0]), (7, ask_cli.MAX_K)]


@pytest.mark.parametrize("main, argv, header", [
    (ask_cli.predict_main, ["--movie", "12345", "--movie", "7"], "USER"),
    (ask_cli.recommend_main, ["-k", "2"], "RANK"),
])
def test_titles_are_escaped_and_columns_line_up(main, argv, header, asked, capsys):
    assert main(["--user", "1"] + argv) == 0
    out = capsys.readouterr().out
    assert not any(c in out for c in "\x1b\x07\x08")
    assert "\\x1b[2J\\x1b]0;pwned\\x07" in out and "Fête (1999)" in out
    lines = out.splitlines()
    top = next(i for i, line in enumerate(lines) if line.startswith(header))
    head, rows = lines[top], lines[top + 1:top + 3]
    for column in ("MOVIE", "TITLE", "GENRES", "PREDICTED RATING"):
        start = head.index(column)
        assert all(row[start - 1] == " " and row[start] != " " for row in rows), column


def test_json_keeps_titles_exact(asked, capsys):
    assert ask_cli.recommend_main(["--user", "1", "-k", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["recommendations"][0]["title"] == HOSTILE


@pytest.mark.parametrize("content", [b"", b"\x08\x01\x12\xff\xff\x0f", b"\xff" * 64])
def test_a_corrupt_pushed_model_is_one_line_naming_the_file(content, tmp_path, monkeypatch,
                                                             capsys):
    serving = tmp_path / "serving" / "1"
    serving.mkdir(parents=True)
    (serving / "saved_model.pb").write_bytes(content)
    monkeypatch.setattr(ask, "pushed_model_dir", lambda home: {
        "model_id": 3, "version": "1", "destination": str(serving)})
    with pytest.raises(ask.AskError, match="saved_model.pb"):
        ask.recommend(str(tmp_path), 1, 3)
    assert ask_cli.predict_main(["--home", str(tmp_path), "--user", "1", "--movie", "1"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.splitlines()) == 1
    assert str(serving / "saved_model.pb") in captured.err
    assert captured.err.startswith("kiko predict: the pushed model ")
