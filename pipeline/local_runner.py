"""Runs the kiko pipeline locally: LocalDagRunner, Beam DirectRunner, SQLite ML Metadata.

    python pipeline/local_runner.py [--data ml-1m.zip|FOLDER|ratings.dat] [--home DIR] ...

Also the pipeline file for the tfx CLI:
    tfx pipeline create --engine local --pipeline_path pipeline/local_runner.py
    tfx run create --engine local --pipeline_name kiko
"""

import argparse
import signal
import sys
import traceback
from typing import List, Optional

from absl import logging as absl_logging

from kiko.components.movielens_example_gen.options import (
    DEFAULT_MAX_REJECTED_FRACTION, MALFORMED_CHOICES, MALFORMED_FAIL, PARTITION_CHOICES,
    PARTITION_BY_RATING, Options)
from kiko.data.movielens import LAYOUTS
from kiko.data import synthetic
from kiko.pipeline import (
    configs, environment, flags, recovery, run_console, run_guard)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Run the kiko TFX pipeline locally (LocalDagRunner, Beam DirectRunner, "
                    "SQLite ML Metadata, caching on).")
    flags.add_data_flags(
        parser,
        data_help="a MovieLens release as zip or folder (ml-100k, ml-1m, ml-10m, ml-20m, "
                  "ml-25m, ml-32m, ml-latest), or a ratings file with its side files beside it; "
                  "or spans: a folder of span-1/, span-2/, ... (or span-N.zip; `kiko spans` cuts "
                  "a release into them), or a pattern with {SPAN} such as "
                  "'DIR/span-{SPAN}/ratings.csv' (each run ingests the newest span); "
                  "local or on any filesystem TFX reads (gs://, s3://, hdfs://). Default: "
                  f"${configs.DATA_ENV}, else the embedded synthetic MovieLens-1M-format data "
                  "set, generated once under HOME/data.",
        layout_help="file layout of the data (default: detected from the file names; "
                    + "; ".join(f"{name}: {layout.releases}" for name, layout in LAYOUTS.items())
                    + ")")
    parser.add_argument(
        "--home", default="",
        help=f"folder for every output (pipeline root, metadata DB, serving folder, generated "
             f"data). Default: ${configs.HOME_ENV}, else ./{configs.DEFAULT_HOME}.")
    parser.add_argument("--split-ratio", type=flags.split_ratio, default=configs.SPLIT_BUCKETS,
                        metavar="TRAIN:EVAL", help="hash-bucket split ratio (default 9:1)")
    parser.add_argument("--partition-by", choices=PARTITION_CHOICES,
                        default=PARTITION_BY_RATING,
                        help="hash each rating, or each user (all of a user's ratings in one "
                             "split); default: rating")
    parser.add_argument("--malformed-lines", choices=MALFORMED_CHOICES, default=MALFORMED_FAIL,
                        help="fail at the first malformed line (default), or skip, count and "
                             "write them to rejected_lines/ in the Examples artifact")
    parser.add_argument("--max-rejected-fraction", type=flags.fraction,
                        default=DEFAULT_MAX_REJECTED_FRACTION, metavar="FRACTION",
                        help="with --malformed-lines skip, fail when more than this share of "
                             "a file's lines is rejected (default "
                             f"{DEFAULT_MAX_REJECTED_FRACTION:g})")
    flags.add_model_flags(
        parser,
        hparam_help="override a model hyperparameter (repeatable), e.g. --hparam "
                    "embedding_dim=32 --hparam epochs=10; the names and defaults are in "
                    f"kiko_model/hparams.py. Also {flags.HPARAMS_FROM_ENV}.")
    flags.add_span_flags(parser)
    parser.add_argument("--validate-only", action="store_true",
                        help="stop after data validation (no training, evaluation or push)")
    parser.add_argument("--workers", type=int, default=0,
                        help="Beam DirectRunner worker processes (default 0: one per core)")
    flags.add_beam_flag(
        parser,
        "a Beam argument for the Beam components (ExampleGen, StatisticsGen, Evaluator), "
        "repeatable, e.g. --beam-arg=--runner=FlinkRunner --beam-arg=--flink_master=HOST:8081;"
        f" also {flags.BEAM_ARGS_FROM_ENV}. Default: the DirectRunner in multi-processing mode")
    parser.add_argument("--dask-scheduler", default="", metavar="ADDRESS",
                        help="run the Beam components on this dask.distributed scheduler "
                             "(e.g. tcp://HOST:8786) with kiko's DaskRunner; its workers need "
                             "kiko installed and this pipeline home's filesystem")
    flags.add_cache_flag(parser, "TFX")
    parser.add_argument("--lock-wait", type=float, default=0.0, metavar="SECONDS",
                        help="one run per home at a time: wait up to SECONDS for another run "
                             "in the same home to finish (default 0: refuse at once, exit "
                             f"status {environment.EXIT_BUSY})")
    args = parser.parse_args(argv)
    flags.resolve(parser, args, args.workers, args.dask_scheduler)
    return args


def build(args: argparse.Namespace):
    """The pipeline for these arguments (generating the embedded data set if it is used)."""
    from kiko.components.movielens_example_gen.component import (
        locate_data, make_input_config, make_output_config)
    from kiko.pipeline.kiko_pipeline import create_pipeline

    paths = configs.Paths(configs.home_dir(args.home))
    data = args.data or synthetic.ensure_generated(
        paths.embedded_data_dir, configs.EMBEDDED_DATA).out_dir
    location = locate_data(data, args.layout, args.span)
    source = location.latest_source
    return create_pipeline(
        pipeline_name=configs.PIPELINE_NAME,
        pipeline_root=paths.pipeline_root,
        input_base=location.input_base,
        input_config=make_input_config({"single_split": location.pattern}),
        output_config=make_output_config(args.split_ratio, args.partition_by),
        example_gen_options=Options(malformed_lines=args.malformed_lines,
                                    max_rejected_fraction=args.max_rejected_fraction,
                                    layout=args.layout),
        schema_path=configs.schema_path(source.users is not None, source.movies is not None),
        metadata_path=paths.metadata_path,
        serving_dir=paths.serving_dir,
        validate_only=args.validate_only,
        **flags.pipeline_settings(args),
    )


def tell_outcome(paths: configs.Paths, console, run_id: str, failure: Optional[str]) -> None:
    """The end of a run on the console: its summary (`failure` is what the runner caught, for a
    failure ML Metadata has no message for), then the HTML report written for it."""
    from kiko import report
    from kiko.metadata.runs import run_summary
    from kiko.metadata.store import open_store

    store = open_store(paths.metadata_path)
    summary = run_summary(store, run_id)
    if failure and not summary["failure"]:
        summary["failure"] = failure
    console.tell_summary(summary)
    try:
        console.say(f"  report: {report.write_report(store, paths.report_path, summary['run_id'])}")
    except Exception as error:  # noqa: BLE001  (the run's own outcome is already told above)
        traceback.print_exc()
        console.say(f"  report: not written ({type(error).__name__}: {error})")


def main(argv: Optional[List[str]] = None) -> int:
    """Runs the pipeline, telling its story on the terminal (the full log goes to a file under
    the home); 0 when the run succeeded, 1 when it failed (the console names the component and
    the error), 2 for a problem of the machine or a path, 75 when another run holds the home,
    130 (SIGINT) or 143 (SIGTERM) when a signal stopped it (its unfinished steps are marked
    CANCELED; the re-run resumes from the cache)."""
    run_console.hold_warnings()  # the libraries' import-time notices: for the run's log
    try:
        return _run(parse_args(argv))
    finally:
        run_console.drop_held_warnings()


def _run(args: argparse.Namespace) -> int:
    """main's work, while warnings are held."""
    paths = configs.Paths(configs.home_dir(args.home))
    failure = None
    try:
        with run_guard.stop_on_signals() as stop:
            environment.check_data(args.data, args.data_origin)
            # The story begins before the clean-up of killed runs loads TFX: from there on
            # the libraries' warnings and INFO lines go to the run's log, not the terminal.
            with run_guard.guarded_story(paths, args.lock_wait, run_console.story) as (
                    run_id, console):
                absl_logging.set_verbosity(absl_logging.INFO)
                stop.on_signal = console.hush
                # TFX loads TensorFlow: only now, so that the refusals above stay instant.
                from kiko.pipeline.dag_runner import OwnRunIdLocalDagRunner

                runner = OwnRunIdLocalDagRunner(run_id)
                try:
                    runner.run(build(args))
                except BaseException as error:  # noqa: BLE001  (told on the console)
                    if stop.signum is None and not isinstance(error, Exception):
                        raise
                    if stop.signum is None and \
                            environment.describe_failure(error, paths.home) is not None:
                        raise  # a problem of the machine: one line below
                    if stop.signum is not None:
                        told = console.interrupted(stop.signum, run_guard.stop_workers())
                        recovery.cancel_run(paths.metadata_path, paths.pipeline_root, run_id,
                                            signal.Signals(stop.signum).name, told)
                    else:
                        failure = console.failed(error)
                        recovery.record_failure(paths.metadata_path, run_id, failure)
                finally:
                    # The tfx CLI's `pipeline create` only compiles this file: then nothing ran.
                    if runner.started:
                        tell_outcome(paths, console, run_id, failure)
    except run_guard.Interrupted as interrupted:  # before the run began: nothing to undo
        print(f"kiko: interrupted ({interrupted}) before the run began", file=sys.stderr)
        return interrupted.exit_code
    except environment.EnvironmentProblem as problem:
        print(f"kiko: {problem}", file=sys.stderr)
        return problem.exit_code
    except Exception as error:
        message = environment.describe_failure(error, paths.home)
        if message is None:
            raise
        print(f"kiko: {message}", file=sys.stderr)
        return environment.EXIT_ENVIRONMENT
    if stop.signum is not None:
        return stop.exit_code
    return 1 if failure else 0


if __name__ == "__main__":
    sys.exit(main())
