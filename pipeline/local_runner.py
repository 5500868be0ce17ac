"""Runs the kiko pipeline locally: LocalDagRunner, Beam DirectRunner, SQLite ML Metadata.

    python pipeline/local_runner.py [--data ml-1m.zip|FOLDER|ratings.dat] [--home DIR] ...

Also the pipeline file for the tfx CLI:
    tfx pipeline create --engine local --pipeline_path pipeline/local_runner.py
    tfx run create --engine local --pipeline_name kiko
"""

import kiko_model  # noqa: F401  (first: selects Keras 2 before TensorFlow loads)

import argparse
import sys
from typing import List, Optional

from components.movielens_example_gen.options import (
    DEFAULT_MAX_REJECTED_FRACTION, MALFORMED_CHOICES, MALFORMED_FAIL, PARTITION_CHOICES,
    PARTITION_BY_RATING)
from kiko_data.movielens import AUTO, LAYOUT_CHOICES, LAYOUTS
from kiko_data import synthetic
from kiko_model.hparams import HParams
from pipeline import configs
from pipeline import run_guard


def _split_ratio(text: str):
    try:
        train, eval_ = (int(x) for x in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected TRAIN:EVAL integers, got {text!r}")
    if train < 1 or eval_ < 1:
        raise argparse.ArgumentTypeError(f"both parts must be >= 1, got {text!r}")
    return {"train": train, "eval": eval_}


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}")
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}")
    return value


def _hparam(text: str):
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value.strip()


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Run the kiko TFX pipeline locally (LocalDagRunner, Beam DirectRunner, "
                    "SQLite ML Metadata, caching on).")
    parser.add_argument(
        "--data", default="",
        help="a MovieLens release as zip or folder (ml-100k, ml-1m, ml-10m, ml-20m, ml-25m, "
             "ml-32m, ml-latest), or a ratings file with its side files beside it; local or on "
             "any filesystem TFX reads (gs://, s3://, hdfs://). Default: "
             f"${configs.DATA_ENV}, else the embedded synthetic MovieLens-1M-format data set, "
             "generated once under HOME/data.")
    parser.add_argument(
        "--layout", choices=LAYOUT_CHOICES, default=AUTO,
        help="file layout of the data (default: detected from the file names; "
             + "; ".join(f"{name}: {layout.releases}" for name, layout in LAYOUTS.items())
             + ")")
    parser.add_argument(
        "--home", default="",
        help=f"folder for every output (pipeline root, metadata DB, serving folder, generated "
             f"data). Default: ${configs.HOME_ENV}, else ./{configs.DEFAULT_HOME}.")
    parser.add_argument("--split-ratio", type=_split_ratio, default=configs.SPLIT_BUCKETS,
                        metavar="TRAIN:EVAL", help="hash-bucket split ratio (default 9:1)")
    parser.add_argument("--partition-by", choices=PARTITION_CHOICES,
                        default=PARTITION_BY_RATING,
                        help="hash each rating, or each user (all of a user's ratings in one "
                             "split); default: rating")
    parser.add_argument("--malformed-lines", choices=MALFORMED_CHOICES, default=MALFORMED_FAIL,
                        help="fail at the first malformed line (default), or skip, count and "
                             "write them to rejected_lines/ in the Examples artifact")
    parser.add_argument("--max-rejected-fraction", type=_fraction,
                        default=DEFAULT_MAX_REJECTED_FRACTION, metavar="FRACTION",
                        help="with --malformed-lines skip, fail when more than this share of "
                             "a file's lines is rejected (default "
                             f"{DEFAULT_MAX_REJECTED_FRACTION:g})")
    parser.add_argument("--hparam", action="append", default=[], metavar="KEY=VALUE",
                        help="override a model hyperparameter (repeatable), e.g. "
                             "--hparam embedding_dim=32 --hparam epochs=10; the names and "
                             "defaults are in kiko_model/hparams.py. Also read from "
                             f"${configs.HPARAMS_ENV} as KEY=VALUE,KEY=VALUE (flags win).")
    parser.add_argument("--rmse-upper-bound", type=float, default=configs.RMSE_UPPER_BOUND,
                        help="bless a model only if its eval RMSE is at most this "
                             f"(default {configs.RMSE_UPPER_BOUND})")
    parser.add_argument("--max-rmse-increase", type=float, default=configs.MAX_RMSE_INCREASE,
                        help="bless a model only if its eval RMSE is at most this much above "
                             "the latest blessed model's (default "
                             f"{configs.MAX_RMSE_INCREASE})")
    parser.add_argument("--validate-only", action="store_true",
                        help="stop after data validation (no training, evaluation or push)")
    parser.add_argument("--workers", type=int, default=0,
                        help="Beam DirectRunner worker processes (default 0: one per core)")
    parser.add_argument("--beam-arg", action="append", default=[], metavar="ARG",
                        help="a Beam argument for the Beam components (ExampleGen, "
                             "StatisticsGen, Evaluator), repeatable, e.g. "
                             "--beam-arg=--runner=FlinkRunner --beam-arg=--flink_master=HOST:8081;"
                             " also read from $" + configs.BEAM_ARGS_ENV + " (flags win). "
                             "Default: the DirectRunner in multi-processing mode")
    parser.add_argument("--dask-scheduler", default="", metavar="ADDRESS",
                        help="run the Beam components on this dask.distributed scheduler "
                             "(e.g. tcp://HOST:8786) with kiko's DaskRunner; its workers need "
                             "kiko installed and this pipeline home's filesystem")
    parser.add_argument("--no-cache", action="store_true", help="disable TFX caching")
    parser.add_argument("--lock-wait", type=float, default=0.0, metavar="SECONDS",
                        help="one run per home at a time: wait up to SECONDS for another run "
                             "in the same home to finish (default 0: refuse at once, exit "
                             f"status {run_guard.EXIT_BUSY})")
    args = parser.parse_args(argv)
    try:
        args.hparams = dict(_hparam(text) for text in configs.env_hparams() + args.hparam)
        HParams().with_overrides(args.hparams)
    except (argparse.ArgumentTypeError, ValueError) as error:
        parser.error(f"--hparam: {error}")
    try:
        args.beam_pipeline_args = configs.beam_pipeline_args(
            args.workers, configs.env_beam_args() + args.beam_arg, args.dask_scheduler)
    except ValueError as error:
        parser.error(f"--dask-scheduler: {error}")
    return args


def build(args: argparse.Namespace):
    """The pipeline for these arguments (generating the embedded data set if it is used)."""
    from components.movielens_example_gen.component import (
        locate_input, make_input_config, make_output_config)
    from kiko_data.movielens.source import resolve_source
    from pipeline.kiko_pipeline import create_pipeline

    paths = configs.Paths(configs.home_dir(args.home))
    data = configs.data_path(args.data)
    if not data:
        data = synthetic.ensure_generated(
            paths.embedded_data_dir, configs.EMBEDDED_DATA).out_dir
    source = resolve_source(data, args.layout)
    input_base, pattern = locate_input(source)
    return create_pipeline(
        pipeline_name=configs.PIPELINE_NAME,
        pipeline_root=paths.pipeline_root,
        input_base=input_base,
        input_config=make_input_config({"single_split": pattern}),
        output_config=make_output_config(args.split_ratio, args.partition_by),
        malformed_lines=args.malformed_lines,
        max_rejected_fraction=args.max_rejected_fraction,
        layout=args.layout,
        schema_path=configs.schema_path(source.users is not None, source.movies is not None),
        metadata_path=paths.metadata_path,
        serving_dir=paths.serving_dir,
        hparams=args.hparams,
        rmse_upper_bound=args.rmse_upper_bound,
        max_rmse_increase=args.max_rmse_increase,
        validate_only=args.validate_only,
        beam_pipeline_args=args.beam_pipeline_args,
        enable_cache=not args.no_cache,
    )


def main(argv: Optional[List[str]] = None) -> int:
    """Runs the pipeline, telling its story on the terminal (the full log goes to a file under
    the home); 0 when the run succeeded, 1 when it failed (the console names the component and
    the error), 2 for a problem of the machine or a path, 75 when another run holds the home."""
    args = parse_args(argv)
    from absl import logging as absl_logging

    from pipeline import run_console

    absl_logging.set_verbosity(absl_logging.INFO)
    paths = configs.Paths(configs.home_dir(args.home))
    failure = None
    try:
        run_guard.check_data(configs.data_path(args.data),
                             "--data" if args.data else f"${configs.DATA_ENV}")
        with run_guard.guarded_home(paths, args.lock_wait) as run_id:
            with run_console.story(paths.home) as console:
                runner = run_guard.local_dag_runner(run_id)
                try:
                    runner.run(build(args))
                except Exception as error:  # noqa: BLE001  (told on the console; log: traceback)
                    if run_guard.describe_failure(error, paths.home) is not None:
                        raise  # a problem of the machine: one line below
                    failure = console.failed(error)
                finally:
                    # The tfx CLI's `pipeline create` only compiles this file: then nothing ran.
                    if runner.started:
                        run_console.finish(paths.home, console, run_id, failure)
    except run_guard.EnvironmentProblem as problem:
        print(f"kiko: {problem}", file=sys.stderr)
        return problem.exit_code
    except Exception as error:
        message = run_guard.describe_failure(error, paths.home)
        if message is None:
            raise
        print(f"kiko: {message}", file=sys.stderr)
        return run_guard.EXIT_ENVIRONMENT
    return 1 if failure else 0


if __name__ == "__main__":
    sys.exit(main())
