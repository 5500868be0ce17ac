"""What `pip install` puts in site-packages: one package, `kiko`, whose subpackages are the
repository's folders; and setup.py alone (the Docker image's dependency layer) still builds."""

import os
import shutil
import subprocess
import sys
import zipfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _wheel(source: str, out: str) -> zipfile.ZipFile:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "--wheel-dir", out, source],
                   check=True, capture_output=True, text=True)
    (name,) = [n for n in os.listdir(out) if n.endswith(".whl")]
    return zipfile.ZipFile(os.path.join(out, name))


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory):
    source = tmp_path_factory.mktemp("src")
    for name in ("setup.py", "kiko", "pipeline", "components", "kiko_model", "kiko_data"):
        path = os.path.join(REPO, name)
        copy = shutil.copytree if os.path.isdir(path) else shutil.copy
        copy(path, source / name, **({"ignore": shutil.ignore_patterns("__pycache__")}
                                     if os.path.isdir(path) else {}))
    with _wheel(str(source), str(tmp_path_factory.mktemp("wheel"))) as wheel:
        return wheel.namelist()


def test_only_kiko_is_installed_at_the_top(wheel_names):
    top = {name.split("/")[0] for name in wheel_names if not name.split("/")[0].endswith(
        ".dist-info")}
    assert top == {"kiko"}


def test_every_folder_is_a_kiko_subpackage_with_its_data(wheel_names):
    for module in ("kiko/cli.py", "kiko/pipeline/local_runner.py",
                   "kiko/components/movielens_example_gen/executor.py",
                   "kiko/model/trainer.py", "kiko/data/synthetic/__init__.py",
                   "kiko/metadata/runs.py"):
        assert module in wheel_names
    schemas = [n for n in wheel_names if n.startswith("kiko/pipeline/schema/")]
    assert schemas and all(n.endswith(".pbtxt") for n in schemas)


def test_setup_py_alone_builds_for_the_image_dependency_layer(tmp_path):
    shutil.copy(os.path.join(REPO, "setup.py"), tmp_path / "setup.py")
    with _wheel(str(tmp_path), str(tmp_path / "wheel")) as wheel:
        assert all(n.split("/")[0].endswith(".dist-info") for n in wheel.namelist())
