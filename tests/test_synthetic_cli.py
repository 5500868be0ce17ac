"""Tests of `kiko generate` (kiko.data.synthetic.cli): summary, flag errors, --size."""

import pytest

from kiko.data import synthetic
from kiko.data.synthetic import cli


def test_cli_prints_summary_with_noise_floor(tmp_path, capsys):
    code = cli.main(["--out", str(tmp_path), "--users", "50", "--movies", "40",
                     "--ratings", "2000", "--seed", "3"])
    assert code == 0
    out = capsys.readouterr().out
    assert "Noise floor" in out and "2,000 ratings" in out
    assert synthetic.load_report(tmp_path).config.seed == 3
    with pytest.raises(SystemExit) as error:
        cli.main(["--out", str(tmp_path), "--users", "50", "--ratings", "100"])
    assert error.value.code == 2


def test_cli_size_flag(tmp_path, capsys):
    assert cli.main(["--out", str(tmp_path / "x"), "--size", "ml-latest-small",
                     "--ratings", "20000", "--users", "100"]) == 0
    report = synthetic.load_report(tmp_path / "x")
    assert (report.n_users, report.n_movies, report.n_ratings) == (100, 9742, 20_000)
    assert report.config.layout == "ml-csv" and "ml-csv layout" in capsys.readouterr().out
