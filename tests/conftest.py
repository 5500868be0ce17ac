"""Shared fixtures. pytest imports this file before any test module, and its kiko imports come
before TFX's: importing the kiko package selects Keras 2 before TensorFlow loads."""

from kiko.components.movielens_example_gen.component import MovieLensExampleGen
from kiko.components.movielens_example_gen.executor import Executor
from kiko.components.movielens_example_gen.options import Options
from kiko.data import synthetic
from kiko.pipeline import configs

import os
import subprocess

import pytest
from tfx.types import standard_artifacts, standard_component_specs

# The curated schema of data with users and movies files (the generated default's).
SCHEMA_PATH = configs.schema_path(has_users=True, has_movies=True)


@pytest.fixture(scope="session")
def small_movielens(tmp_path_factory):
    """A small generated data set in exact ML-1M format (ratings, users, movies)."""
    out = tmp_path_factory.mktemp("small_movielens")
    return synthetic.generate(str(out), synthetic.GeneratorConfig(
        n_users=150, n_movies=200, n_ratings=9_000, seed=7))


def run_example_gen(input_base, output_dir, input_config=None, output_config=None,
                    beam_pipeline_args=(), **options):
    """Runs the executor like the orchestrator would and returns the Examples artifact.

    `options` are the fields of MovieLensExampleGen's Options (malformed_lines, ...).
    """
    component = MovieLensExampleGen(input_base=str(input_base), input_config=input_config,
                                    output_config=output_config, options=Options(**options))
    exec_properties = dict(component.exec_properties)
    examples = standard_artifacts.Examples()
    examples.uri = str(output_dir)
    Executor(Executor.Context(beam_pipeline_args=list(beam_pipeline_args))).Do(
        {}, {standard_component_specs.EXAMPLES_KEY: [examples]}, exec_properties)
    return examples


@pytest.fixture(scope="session")
def small_examples(small_movielens, tmp_path_factory):
    """ExampleGen's output (train/eval splits) for the small generated data set."""
    return run_example_gen(small_movielens.out_dir, tmp_path_factory.mktemp("small_examples"))


# Hyperparameters that train in seconds on the small data set (tests check wiring, not quality).
FAST_HPARAMS = {"epochs": 3, "autorec_epochs": 2, "embedding_dim": 8, "autorec_units": 16}


def run_local_pipeline(data_dir, home, *extra_args):
    """Runs the whole pipeline as `python pipeline/local_runner.py` would, in this process."""
    from tfx import v1 as tfx

    from kiko.pipeline import local_runner

    argv = ["--data", str(data_dir), "--home", str(home), "--workers", "1"]
    for key, value in FAST_HPARAMS.items():
        argv += ["--hparam", f"{key}={value}"]
    args = local_runner.parse_args(argv + list(extra_args))
    tfx.orchestration.LocalDagRunner().run(local_runner.build(args))
    return args


@pytest.fixture(scope="session")
def pipeline_home(small_movielens, tmp_path_factory):
    """A pipeline home after one full run on the small data set (loose RMSE bound: blessed)."""
    home = tmp_path_factory.mktemp("pipeline_home")
    run_local_pipeline(small_movielens.out_dir, home, "--rmse-upper-bound", "2.0")
    return str(home)


@pytest.fixture(scope="session")
def unblessed_home(small_movielens, tmp_path_factory):
    """A home whose only model failed the RMSE bound: evaluated, not blessed, nothing pushed."""
    home = tmp_path_factory.mktemp("unblessed_home")
    run_local_pipeline(small_movielens.out_dir, home, "--rmse-upper-bound", "0.01")
    return str(home)


@pytest.fixture(scope="session")
def anomalous_home(small_movielens, tmp_path_factory):
    """A home whose run the anomalies gate stopped (a rating of 7 in the data)."""
    import shutil

    from kiko.components.anomalies_gate.component import DataAnomaliesError
    from kiko.data.movielens import ml1m

    data = tmp_path_factory.mktemp("anomalous_data")
    shutil.copytree(small_movielens.out_dir, data, dirs_exist_ok=True)
    with open(data / ml1m.RATINGS_FILE, "a", encoding=ml1m.ENCODING) as f:
        f.write("1::99999::7::978300760\n")  # a new pair: not a duplicate
    home = tmp_path_factory.mktemp("anomalous_home")
    with pytest.raises(DataAnomaliesError):
        run_local_pipeline(data, home)
    return str(home)


def _mount_tmpfs(path, size):
    """Mounts a tmpfs of `size` at `path`; fails (never skips) where this machine cannot."""
    os.makedirs(path, exist_ok=True)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(f"this test needs to mount a tmpfs at {path} (root with CAP_SYS_ADMIN, as "
                    f"in CI) to simulate a read-only or full disk: {result.stderr.strip()}")


@pytest.fixture()
def tmpfs(tmp_path):
    """mount(size, read_only=False, prepare=None) -> a fresh tmpfs folder, unmounted afterwards;
    `prepare(folder)` runs before a read-only remount. Read-only and full disks for the tests
    of the runner's environment messages."""
    mounted = []

    def mount(size="1m", read_only=False, prepare=None):
        path = tmp_path / f"tmpfs{len(mounted)}"
        _mount_tmpfs(path, size)
        mounted.append(path)
        if prepare is not None:
            prepare(path)
        if read_only:
            subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True)
        return path

    yield mount
    for path in reversed(mounted):
        subprocess.run(["umount", str(path)], check=True)
