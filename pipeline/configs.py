"""The one configuration module: defaults, and the only reader of the environment.

`create_pipeline` takes everything as arguments; the runners build those arguments here.
"""

import os
import posixpath
import shlex
from dataclasses import dataclass
from typing import List, Sequence

from kiko.data import synthetic

PIPELINE_NAME = "kiko"

# Every output (pipeline root, ML Metadata, serving folder, generated data) lives under home:
# --home, else $KIKO_HOME, else ./kiko_home.
HOME_ENV = "KIKO_HOME"
DEFAULT_HOME = "kiko_home"
# The tfx CLI runs the runner file without arguments: these stand in for --data and --hparam.
DATA_ENV = "KIKO_DATA"
HPARAMS_ENV = "KIKO_HPARAMS"  # comma-separated KEY=VALUE pairs
# Extra Beam arguments for the Beam components (ExampleGen, StatisticsGen, Evaluator), split
# like a shell command line, e.g. "--runner=FlinkRunner --flink_master=host:8081".
BEAM_ARGS_ENV = "KIKO_BEAM_ARGS"

SCHEMA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schema")

# Kubeflow Pipelines v2 / Vertex AI (pipeline/kubeflow_v2_runner.py): the image every component
# runs in and the pipeline root (a URI the containers can write, e.g. gs://bucket/kiko).
KFP_IMAGE_ENV = "KIKO_KFP_IMAGE"
KFP_PIPELINE_ROOT_ENV = "KIKO_KFP_PIPELINE_ROOT"
KFP_OUTPUT = "kiko_pipeline.json"
# Where the Dockerfile installs kiko in the image; the curated schemas are read from there.
IMAGE_KIKO_DIR = "/opt/kiko"

# The embedded default data set: generated in MovieLens-1M format at ML-1M's size.
EMBEDDED_DATA = synthetic.GeneratorConfig()

# Blessing: the Evaluator's RMSE upper bound on the eval split, and how much worse (absolute
# RMSE) than the latest blessed model a candidate may be. The bound is loose on purpose: above
# the generated default data's noise floor and what models reach on real MovieLens releases
# (benchmarks/model_quality.py measures both).
RMSE_UPPER_BOUND = 1.0
MAX_RMSE_INCREASE = 0.01

# Drift of a new span against the previous validated span (components/anomalies_gate/drift.py),
# set above what consecutive spans of real MovieLens-100K reach (benchmarks/README.md gives the
# measurements): the rating distribution's Jensen-Shannon divergence; the share of distinct
# users and movies new to the data (MovieLens users rate in bursts when they join, so most
# users of a natural span are new); the example count against the previous span's.
DRIFT_THRESHOLDS = dict(rating_jsd=0.05, unseen_users=0.85, unseen_movies=0.5,
                        min_count_ratio=0.2, max_count_ratio=5.0)
# The Trainer's window: the last N validated spans; 0 takes every span.
WINDOW_SPANS = 0

def schema_path(has_users: bool, has_movies: bool) -> str:
    """The curated schema for data with (or without) a users file and a movies file."""
    name = "ratings" + ("_users" if has_users else "") + ("_movies" if has_movies else "")
    return os.path.join(SCHEMA_DIR, f"{name}.pbtxt")


def image_schema_path(has_users: bool, has_movies: bool) -> str:
    """schema_path as the containers of the Kubeflow image see it."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    relative = os.path.relpath(schema_path(has_users, has_movies), repo)
    return posixpath.join(IMAGE_KIKO_DIR, *relative.split(os.sep))


# Default train : eval hash buckets.
SPLIT_BUCKETS = {"train": 9, "eval": 1}


@dataclass(frozen=True)
class Paths:
    """Where a pipeline home keeps things."""

    home: str

    @property
    def pipeline_root(self) -> str:
        return os.path.join(self.home, "pipeline_root")

    @property
    def metadata_path(self) -> str:
        return os.path.join(self.home, "metadata.sqlite")

    @property
    def serving_dir(self) -> str:
        return os.path.join(self.home, "serving_model")

    @property
    def log_dir(self) -> str:
        """Full logs of the local runner's runs, one file per run."""
        return os.path.join(self.home, "logs")

    @property
    def report_path(self) -> str:
        """The HTML report the runner writes at the end of each run (`kiko report`)."""
        return os.path.join(self.home, "report.html")

    @property
    def lock_path(self) -> str:
        """Held (flock) by the one runner using this home; names its pid, host and run."""
        return os.path.join(self.home, "run.lock")

    @property
    def embedded_data_dir(self) -> str:
        return os.path.join(self.home, "data", "synthetic-ml1m")


def home_dir(flag_value: str = "") -> str:
    """The pipeline home: the flag, else $KIKO_HOME, else ./kiko_home (absolute)."""
    return os.path.abspath(flag_value or os.environ.get(HOME_ENV) or DEFAULT_HOME)


def data_path(flag_value: str = "") -> str:
    """The input data: the flag, else $KIKO_DATA, else "" (the embedded generated data set)."""
    return flag_value or os.environ.get(DATA_ENV, "")


def env_hparams() -> List[str]:
    """KEY=VALUE hyperparameter overrides from $KIKO_HPARAMS (applied before --hparam flags)."""
    text = os.environ.get(HPARAMS_ENV, "")
    return [item.strip() for item in text.split(",") if item.strip()]


def kfp_image(flag_value: str = "") -> str:
    """The image of the Kubeflow components: the flag, else $KIKO_KFP_IMAGE, else ""."""
    return flag_value or os.environ.get(KFP_IMAGE_ENV, "")


def kfp_pipeline_root(flag_value: str = "") -> str:
    """The Kubeflow pipeline root: the flag, else $KIKO_KFP_PIPELINE_ROOT, else ""."""
    return flag_value or os.environ.get(KFP_PIPELINE_ROOT_ENV, "")


def env_beam_args() -> List[str]:
    """Beam arguments from $KIKO_BEAM_ARGS (applied before --beam-arg flags)."""
    return shlex.split(os.environ.get(BEAM_ARGS_ENV, ""))


# Beam's DaskRunner with kiko's fixes (pipeline/dask_runner.py), by the path Beam imports.
DASK_RUNNER = "kiko.pipeline.dask_runner.DaskRunner"
# TFX packages itself for remote Beam workers in every Beam component unless the Beam
# arguments already name the workers' dependencies (tfx.utils.dependency_utils.
# make_beam_dependency_flags): a copy of the installed TFX in a temporary folder that is never
# removed, and a `setup.py sdist` of it, per Beam component and run. The
# runners kiko sets up stage nothing: the DirectRunner's workers are subprocesses of this
# interpreter and kiko's DaskRunner runs on workers installed with kiko's stack. So kiko names
# the workers' environment for them with this flag, which neither runner reads. A runner named
# with --beam-arg/$KIKO_BEAM_ARGS (Flink, Spark, Dataflow) gets TFX's package as before.
LOCAL_ENVIRONMENT_ARG = "--sdk_container_image=kiko-installed-environment"


def beam_pipeline_args(workers: int = 0, extra: Sequence[str] = (),
                       dask_scheduler: str = "") -> List[str]:
    """Arguments of the Beam components: `extra` (later ones win), after kiko's DaskRunner on
    `dask_scheduler` when given; without a runner named, the DirectRunner in multi-processing
    mode with `workers` processes (0: one per CPU core). Both of kiko's runners get
    LOCAL_ENVIRONMENT_ARG; a runner named in `extra` gets `extra` alone."""
    args = list(extra)
    named = [a for a in args if a == "--runner" or a.startswith("--runner=")]
    if dask_scheduler:
        if named:
            raise ValueError(f"a Dask scheduler and another runner ({named[-1]}) were both given")
        return [f"--runner={DASK_RUNNER}", f"--dask_client_address={dask_scheduler}",
                LOCAL_ENVIRONMENT_ARG] + args
    if named:
        return args
    return ["--direct_running_mode=multi_processing", f"--direct_num_workers={workers}",
            LOCAL_ENVIRONMENT_ARG] + args
