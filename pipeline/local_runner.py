"""Runs the kiko pipeline locally: LocalDagRunner, Beam DirectRunner, SQLite ML Metadata.

    python pipeline/local_runner.py [--data ml-1m.zip|FOLDER|ratings.dat] [--home DIR] ...

Also the pipeline file for the tfx CLI:
    tfx pipeline create --engine local --pipeline_path pipeline/local_runner.py
    tfx run create --engine local --pipeline_name kiko
"""

import kiko_model  # noqa: F401  (first: selects Keras 2 before TensorFlow loads)

import argparse
import os
import sys
from typing import List, Optional

from components.movielens_example_gen.options import (
    MALFORMED_CHOICES, MALFORMED_FAIL, PARTITION_CHOICES, PARTITION_BY_RATING)
from kiko_data import synthetic
from kiko_model.hparams import HParams
from pipeline import configs


def _split_ratio(text: str):
    try:
        train, eval_ = (int(x) for x in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected TRAIN:EVAL integers, got {text!r}")
    if train < 1 or eval_ < 1:
        raise argparse.ArgumentTypeError(f"both parts must be >= 1, got {text!r}")
    return {"train": train, "eval": eval_}


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
        help="ml-1m.zip, a folder holding ratings.dat (and users.dat/movies.dat), or a "
             f"ratings file. Default: ${configs.DATA_ENV}, else the embedded synthetic "
             "MovieLens-1M-format data set, generated once under HOME/data.")
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
    parser.add_argument("--no-cache", action="store_true", help="disable TFX caching")
    args = parser.parse_args(argv)
    try:
        args.hparams = dict(_hparam(text) for text in configs.env_hparams() + args.hparam)
        HParams().with_overrides(args.hparams)
    except (argparse.ArgumentTypeError, ValueError) as error:
        parser.error(f"--hparam: {error}")
    return args


def build(args: argparse.Namespace):
    """The pipeline for these arguments (generating the embedded data set if it is used)."""
    from components.movielens_example_gen.component import (
        locate_input, make_input_config, make_output_config)
    from pipeline.kiko_pipeline import create_pipeline

    paths = configs.Paths(configs.home_dir(args.home))
    data = configs.data_path(args.data)
    if not data:
        data = synthetic.ensure_generated(
            paths.embedded_data_dir, configs.EMBEDDED_DATA).out_dir
    input_base, pattern = locate_input(data)
    return create_pipeline(
        pipeline_name=configs.PIPELINE_NAME,
        pipeline_root=paths.pipeline_root,
        input_base=input_base,
        input_config=make_input_config({"single_split": pattern}),
        output_config=make_output_config(args.split_ratio, args.partition_by),
        malformed_lines=args.malformed_lines,
        schema_path=configs.SCHEMA_PATH,
        metadata_path=paths.metadata_path,
        serving_dir=paths.serving_dir,
        hparams=args.hparams,
        rmse_upper_bound=args.rmse_upper_bound,
        max_rmse_increase=args.max_rmse_increase,
        validate_only=args.validate_only,
        beam_pipeline_args=configs.beam_pipeline_args(args.workers),
        enable_cache=not args.no_cache,
    )


def _run_count(metadata_path: str) -> int:
    from pipeline import metadata_reader

    if not os.path.exists(metadata_path):
        return 0
    return len(metadata_reader.open_store(metadata_path).runs())


def main(argv: Optional[List[str]] = None) -> int:
    """Runs the pipeline, telling its story on the terminal (the full log goes to a file under
    the home); 1 if the run failed."""
    args = parse_args(argv)
    from pipeline import run_console

    home = configs.home_dir(args.home)
    with run_console.story(home) as console:
        from absl import logging as absl_logging
        from tfx import v1 as tfx

        absl_logging.set_verbosity(absl_logging.INFO)
        metadata_path = configs.Paths(home).metadata_path
        runs_before = _run_count(metadata_path)
        failure = None
        try:
            tfx.orchestration.LocalDagRunner().run(build(args))
        except Exception as error:  # noqa: BLE001  (told on the console, traceback in the log)
            failure = console.failed(error)
        # The tfx CLI's `pipeline create` only compiles this file: then no run was added.
        if _run_count(metadata_path) > runs_before:
            run_console.finish(home, console, failure=failure)
    return 1 if failure else 0


if __name__ == "__main__":
    sys.exit(main())
