"""A copied home reads its own files: ML Metadata records absolute paths, and the tools resolve
those under the home they read (docs/operations.md), so `kiko predict --home copy` answers from
the copy's model, and never from the original's (slow: runs the pipeline once for the shared
home)."""

import json
import os
import shutil

import pytest

from kiko import ask_cli
from kiko.metadata.lineage import lineage
from kiko.metadata.models import pushed_model
from kiko.metadata.store import open_store
from kiko.pipeline import configs

pytestmark = pytest.mark.slow
ASK = ["--user", "1", "--movie", "1"]


@pytest.fixture()
def copy(pipeline_home, tmp_path):
    """`cp -r` of the shared home, under a name a shell needs quoted."""
    copied = tmp_path / "copy of home & co"
    shutil.copytree(pipeline_home, copied, symlinks=True)
    return str(copied)


def _predict(capsys, *argv):
    code = ask_cli.predict_main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_copy_answers_from_its_own_model_with_the_original_moved_away(pipeline_home, copy,
                                                                        capsys):
    serving = configs.Paths(pipeline_home).serving_dir
    away = serving + ".away"
    os.rename(serving, away)
    try:
        code, out, err = _predict(capsys, "--home", copy, "--json", *ASK)
        table_code, table, _ = _predict(capsys, "--home", copy, *ASK)
    finally:
        os.rename(away, serving)
    assert code == 0, err
    path = json.loads(out)["model"]["path"]
    assert path.startswith(configs.Paths(copy).serving_dir + os.sep) and os.path.isdir(path)
    assert table_code == 0 and f"({path})" in table.splitlines()[0]


def test_a_copy_never_serves_the_originals_model(pipeline_home, copy, capsys):
    """The original is still there; the copy lost its serving folder: the copy refuses,
    naming its own missing folder and the home its records were written in."""
    shutil.rmtree(configs.Paths(copy).serving_dir)
    code, out, err = _predict(capsys, "--home", copy, *ASK)
    assert code == 2 and not out
    assert configs.Paths(copy).serving_dir in err and pipeline_home in err


def test_inspect_and_report_records_of_a_copy_name_the_copys_files(pipeline_home, copy):
    store = open_store(configs.Paths(copy).metadata_path)
    assert store.written_in() == [pipeline_home]
    served = pushed_model(store)
    found = lineage(store)
    for path in (served["destination"], served["model_uri"], found["examples"]["uri"]):
        assert path.startswith(copy + os.sep) and os.path.exists(path)
