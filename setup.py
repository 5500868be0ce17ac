"""kiko: a TFX pipeline for MovieLens rating prediction.

The exact versions of the whole stack are pinned in constraints.txt; install with
`pip install -c constraints.txt -e .[test]` (the Makefile does this).
"""

import os

from setuptools import find_packages, setup

# One installed name, `kiko`: the repository's folders are its subpackages (`pipeline/` is
# `kiko.pipeline`, ...), so no generic top-level `pipeline` or `components` lands in
# site-packages, and importing any kiko module first runs kiko/__init__.py (Keras 2).
_FOLDERS = {"kiko": "kiko", "kiko.pipeline": "pipeline", "kiko.components": "components",
            "kiko.model": "kiko_model", "kiko.data": "kiko_data"}
# Only the folders present: the Docker image installs the pinned dependencies from setup.py
# alone, before the code is copied in.
_PRESENT = {name: folder for name, folder in _FOLDERS.items() if os.path.isdir(folder)}
_PACKAGES = [f"{name}.{sub}" if sub else name for name, folder in _PRESENT.items()
             for sub in [""] + find_packages(folder)]

setup(
    name="kiko",
    version="0.1.0",
    description="MovieLens rating prediction on TensorFlow Extended with a TFRS model.",
    python_requires=">=3.10,<3.11",
    packages=_PACKAGES,
    package_dir=_PRESENT,
    package_data={"kiko.pipeline": ["schema/*.pbtxt"]} if "kiko.pipeline" in _PRESENT else {},
    install_requires=[
        "tfx==1.16.0",
        "tensorflow>=2.16,<2.17",
        # TFRS refuses Keras 3; tf-keras is the Keras 2 that TF_USE_LEGACY_KERAS=1 selects.
        "tf-keras>=2.16,<2.17",
        "tensorflow-recommenders>=0.7.3,<0.8",
        # apache-beam 2.7x no longer pulls dill, which tfx_bsl and TFT import.
        "dill",
        # `kiko report` draws its charts; `kiko inspect` and the report format tables.
        "matplotlib>=3.10,<3.11",
        "tabulate",
    ],
    extras_require={
        "test": ["pytest"],
        # Kubeflow Pipelines v2 / Vertex compile (pipeline/kubeflow_v2_runner.py). kfp > 2.5
        # needs protobuf >= 4, which this TFX stack cannot take; kfp 2.5 needs urllib3 < 2 and
        # google-cloud-storage < 3 (pinned in constraints.txt).
        "kfp": ["kfp>=2.5,<2.6", "kfp-pipeline-spec>=0.2.2,<0.3"],
        # Beam on a dask.distributed cluster (pipeline/dask_runner.py): Beam's own extra.
        "dask": ["apache-beam[dask]"],
        # benchmarks/versus_svd.py's reference model, a tuned Surprise SVD. An sdist compiled
        # against the installed numpy; it adds no other package to the pinned stack.
        "bench": ["scikit-surprise==1.1.4"],
    },
    entry_points={"console_scripts": ["kiko=kiko.cli:main"]},
)
