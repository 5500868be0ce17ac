"""kiko: a TFX pipeline for MovieLens rating prediction.

The exact versions of the whole stack are pinned in constraints.txt; install with
`pip install -c constraints.txt -e .[test]` (the Makefile does this).
"""

from setuptools import find_packages, setup

setup(
    name="kiko",
    version="0.1.0",
    description="MovieLens rating prediction on TensorFlow Extended with a TFRS model.",
    python_requires=">=3.10,<3.11",
    packages=find_packages(include=["kiko_model*", "kiko_data*", "components*", "pipeline*"]),
    package_data={"pipeline": ["schema/*.pbtxt"]},
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
    },
    entry_points={"console_scripts": ["kiko=pipeline.cli:main"]},
)
