"""The command line the runners share: the data, model, Beam and cache flags, the types that parse
flag values, and `resolve`, which applies the environment variables that stand in for flags (the
tfx CLI runs a runner file without arguments) and validates the result.

Each runner adds its own flags next to these; the help of a shared flag says what it means on
that runner where the runners differ.
"""

import argparse
from typing import Any, Dict, Tuple

from kiko.data.movielens import AUTO, LAYOUT_CHOICES
from kiko.model.hparams import HParams
from kiko.pipeline import configs

# How the environment stands in for a repeatable flag, for the flags' help.
HPARAMS_FROM_ENV = f"read from ${configs.HPARAMS_ENV} as KEY=VALUE,KEY=VALUE (flags win)"
BEAM_ARGS_FROM_ENV = f"read from ${configs.BEAM_ARGS_ENV} (flags win)"


def split_ratio(text: str) -> Dict[str, int]:
    """TRAIN:EVAL hash buckets, e.g. "9:1"."""
    try:
        train, eval_ = (int(x) for x in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected TRAIN:EVAL integers, got {text!r}")
    if train < 1 or eval_ < 1:
        raise argparse.ArgumentTypeError(f"both parts must be >= 1, got {text!r}")
    return {"train": train, "eval": eval_}


def fraction(text: str) -> float:
    """A number in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}")
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}")
    return value


def hparam(text: str) -> Tuple[str, str]:
    """One KEY=VALUE hyperparameter override."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value.strip()


def add_data_flags(parser: argparse.ArgumentParser, data_help: str, layout_help: str) -> None:
    """--data (default $KIKO_DATA, applied by `resolve`) and --layout."""
    parser.add_argument("--data", default="", help=data_help)
    parser.add_argument("--layout", choices=LAYOUT_CHOICES, default=AUTO, help=layout_help)


def add_model_flags(parser: argparse.ArgumentParser, hparam_help: str,
                    baseline_note: str = "") -> None:
    """--hparam (repeatable, after $KIKO_HPARAMS) and the blessing thresholds;
    `baseline_note` tells how the runner's baseline model is chosen."""
    parser.add_argument("--hparam", action="append", default=[], metavar="KEY=VALUE",
                        help=hparam_help)
    parser.add_argument("--rmse-upper-bound", type=float, default=configs.RMSE_UPPER_BOUND,
                        help="bless a model only if its eval RMSE is at most this "
                             f"(default {configs.RMSE_UPPER_BOUND})")
    parser.add_argument("--max-rmse-increase", type=float, default=configs.MAX_RMSE_INCREASE,
                        help="bless a model only if its eval RMSE is at most this much above "
                             f"the latest blessed model's{baseline_note} (default "
                             f"{configs.MAX_RMSE_INCREASE})")


def add_beam_flag(parser: argparse.ArgumentParser, help_text: str) -> None:
    """--beam-arg (repeatable, after $KIKO_BEAM_ARGS)."""
    parser.add_argument("--beam-arg", action="append", default=[], metavar="ARG",
                        help=help_text)


def add_cache_flag(parser: argparse.ArgumentParser, orchestrator: str) -> None:
    """--no-cache: turns off `orchestrator`'s caching of executions."""
    parser.add_argument("--no-cache", action="store_true",
                        help=f"disable {orchestrator} caching")


def resolve(parser: argparse.ArgumentParser, args: argparse.Namespace, workers: int = 0,
            dask_scheduler: str = "") -> None:
    """Completes the shared flags from the environment and validates them (a bad value is a
    usage error naming its flag). Sets `args.data` (the flag, else $KIKO_DATA, else "") and
    `args.data_origin` (which of the two named it), `args.hparams` (validated overrides) and
    `args.beam_pipeline_args` (configs.beam_pipeline_args for `workers`/`dask_scheduler`)."""
    args.data_origin = "--data" if args.data else f"${configs.DATA_ENV}"
    args.data = configs.data_path(args.data)
    try:
        args.hparams = dict(hparam(text) for text in configs.env_hparams() + args.hparam)
        HParams().with_overrides(args.hparams)
    except (argparse.ArgumentTypeError, ValueError) as error:
        parser.error(f"--hparam: {error}")
    try:
        args.beam_pipeline_args = configs.beam_pipeline_args(
            workers, configs.env_beam_args() + args.beam_arg, dask_scheduler)
    except ValueError as error:
        parser.error(f"--dask-scheduler: {error}")


def pipeline_settings(args: argparse.Namespace) -> Dict[str, Any]:
    """The create_pipeline arguments both runners take straight from the shared flags."""
    return {"hparams": args.hparams, "rmse_upper_bound": args.rmse_upper_bound,
            "max_rmse_increase": args.max_rmse_increase,
            "beam_pipeline_args": args.beam_pipeline_args, "enable_cache": not args.no_cache}
