"""The one configuration module: defaults, and the only reader of the environment.

`create_pipeline` takes everything as arguments; the runners build those arguments here.
"""

import os
from dataclasses import dataclass
from typing import List

from kiko_data import synthetic

PIPELINE_NAME = "kiko"

# Every output (pipeline root, ML Metadata, serving folder, generated data) lives under home:
# --home, else $KIKO_HOME, else ./kiko_home.
HOME_ENV = "KIKO_HOME"
DEFAULT_HOME = "kiko_home"
# The tfx CLI runs the runner file without arguments: these stand in for --data and --hparam.
DATA_ENV = "KIKO_DATA"
HPARAMS_ENV = "KIKO_HPARAMS"  # comma-separated KEY=VALUE pairs

SCHEMA_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schema", "schema.pbtxt")

# The embedded default data set: generated in MovieLens-1M format at ML-1M's size.
EMBEDDED_DATA = synthetic.GeneratorConfig()

# Blessing: the Evaluator's RMSE upper bound on the eval split, and how much worse (absolute
# RMSE) than the latest blessed model a candidate may be. The bound is loose on purpose: the
# generated default data's noise floor is ~0.83 and real MovieLens models reach ~0.85-0.90.
RMSE_UPPER_BOUND = 1.0
MAX_RMSE_INCREASE = 0.01

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


def beam_pipeline_args(workers: int = 0) -> List[str]:
    """DirectRunner in multi-processing mode; 0 workers means one per CPU core."""
    return ["--direct_running_mode=multi_processing", f"--direct_num_workers={workers}"]
