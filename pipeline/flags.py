"""The command line the runners share: the data, model, Beam and cache flags, the types that parse
flag values, and `resolve`, which applies the environment variables that stand in for flags (the
tfx CLI runs a runner file without arguments) and validates the result.

Each runner adds its own flags next to these; the help of a shared flag says what it means on
that runner where the runners differ.
"""

import argparse
from typing import Any, Dict, Optional, Sequence, Tuple

from kiko.components.anomalies_gate.thresholds import ON_DRIFT_CHOICES, ON_DRIFT_STOP, DriftThresholds
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


def _non_negative(what: str):
    """An argparse type: a whole number >= 0, called ``what`` in its errors."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        if value < 0:
            raise argparse.ArgumentTypeError(f"{what} is >= 0, got {text!r}")
        return value
    return parse


span_number = _non_negative("a span number")
count = _non_negative("a whole number")


def add_span_flags(parser: argparse.ArgumentParser, history: bool = True) -> None:
    """--span; where the runner resolves earlier spans and models (`history`), also
    --window-spans, --drift, --drift-threshold and the warm start flags, --cold and
    --cold-every."""
    parser.add_argument("--span", type=span_number, default=None, metavar="N",
                        help="ingest span N of a folder of spans or a {SPAN} pattern (default: "
                             "the newest span); an old span whose files changed is ingested "
                             "again as a new version, an unchanged one is served from cache")
    if not history:
        return
    parser.add_argument("--window-spans", type=span_number, default=configs.WINDOW_SPANS,
                        metavar="N",
                        help="train on the last N validated spans (default 0: every span)")
    parser.add_argument("--drift", choices=ON_DRIFT_CHOICES, default=ON_DRIFT_STOP,
                        help="what a new span that drifted from the previous validated span "
                             "does: stop the run before training (default) or warn and go on")
    names = ", ".join(f"{k} (default {v:g})" for k, v in configs.DRIFT_THRESHOLDS.items())
    parser.add_argument("--drift-threshold", action="append", default=[], metavar="NAME=VALUE",
                        help=f"override a drift threshold (repeatable): {names}")
    parser.add_argument("--cold", action="store_true",
                        help="train this run's model from scratch instead of warm starting it "
                             "from the latest blessed model (a change of the Trainer's "
                             "settings: it trains again even when no span is new)")
    parser.add_argument("--cold-every", type=count, default=0, metavar="N",
                        help="train from scratch after N-1 warm starts in a row (1: every "
                             "time; default 0: never). Training is also cold when there is no "
                             "blessed model yet, the hyperparameters or the model code "
                             "changed, the base model cannot be read, or the window keeps "
                             "less than half of its users or movies")


def drift_thresholds(parser: argparse.ArgumentParser, texts) -> DriftThresholds:
    """configs.DRIFT_THRESHOLDS with the --drift-threshold overrides (a usage error if bad)."""
    values = dict(configs.DRIFT_THRESHOLDS)
    for text in texts:
        key, value = hparam(text)
        if key not in values:
            parser.error(f"--drift-threshold: unknown name {key!r}; one of {', '.join(values)}")
        try:
            values[key] = float(value)
        except ValueError:
            parser.error(f"--drift-threshold: {key} needs a number, got {value!r}")
    try:
        return DriftThresholds(**values)
    except ValueError as error:
        parser.error(f"--drift-threshold: {error}")


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
    `args.beam_pipeline_args` (configs.beam_pipeline_args for `workers`/`dask_scheduler`; an
    argument Beam's option parser refuses or does not know is a usage error)."""
    args.data_origin = "--data" if args.data else f"${configs.DATA_ENV}"
    args.data = configs.data_path(args.data)
    try:
        args.hparams = dict(hparam(text) for text in configs.env_hparams() + args.hparam)
        HParams().with_overrides(args.hparams)
    except (argparse.ArgumentTypeError, ValueError) as error:
        parser.error(f"--hparam: {error}")
    if hasattr(args, "drift_threshold"):
        args.drift_thresholds = drift_thresholds(parser, args.drift_threshold)
    given = configs.env_beam_args()
    try:
        args.beam_pipeline_args = configs.beam_pipeline_args(
            workers, given + args.beam_arg, dask_scheduler)
    except ValueError as error:
        parser.error(f"--dask-scheduler: {error}")
    # The environment's arguments alone first, so the error names where the bad one came from.
    for origin, checked in ((f"${configs.BEAM_ARGS_ENV}", given),
                            ("--beam-arg", given + args.beam_arg)):
        problem = beam_args_problem(checked, args.beam_pipeline_args)
        if problem:
            parser.error(f"{origin}: {problem}")


class _Refused(Exception):
    """Beam's option parser refused an argument (its argparse error, without the usage)."""


def _runner_options(pipeline_args: Sequence[str]) -> str:
    """The runner `pipeline_args` name (Beam's default otherwise), its module imported so that
    its options (DaskOptions...) are known to Beam's parser; "" when it cannot be loaded."""
    from apache_beam.runners import runner

    name = "DirectRunner"
    for at, arg in enumerate(pipeline_args):  # Beam takes the last --runner
        if arg.startswith("--runner="):
            name = arg.split("=", 1)[1]
        elif arg == "--runner" and at + 1 < len(pipeline_args):
            name = pipeline_args[at + 1]
    try:
        runner.create_runner(name)
    except (ImportError, AttributeError, ValueError, TypeError, RuntimeError):
        return ""
    return name


def beam_args_problem(checked: Sequence[str], pipeline_args: Sequence[str]) -> Optional[str]:
    """Why Beam's own option parser (PipelineOptions, with the options of the runner that
    `pipeline_args` name) refuses an argument of `checked`, None if it takes them all. Beam logs
    and drops an argument it does not know; kiko refuses it instead."""
    from apache_beam.options.pipeline_options import PipelineOptions

    runner = _runner_options(pipeline_args)
    parsers = []

    def capture(parser):
        parsers.append(parser)
        raise _Refused()  # before Beam parses (and logs "Discarding unparseable args")

    try:
        PipelineOptions(list(checked)).get_all_options(add_extra_args_fn=capture)
    except _Refused:
        pass

    def refuse(message):
        raise _Refused(message)

    parser = parsers[0]
    parser.error = refuse  # argparse would print Beam's whole usage and exit
    try:
        unknown = parser.parse_known_args(list(checked))[1]
    except _Refused as refused:
        return f"Beam's option parser refuses it ({refused})"
    if unknown and runner:  # options of a runner that cannot be loaded here are not known
        return (f"Beam does not know {unknown[0]!r} (no such option of Beam or of the "
                f"{runner.rsplit('.', 1)[-1]}; write options as --name=value)")
    return None


def pipeline_settings(args: argparse.Namespace) -> Dict[str, Any]:
    """The create_pipeline arguments both runners take straight from the shared flags."""
    # Imported here: they bring TFX, which the parsers do not need.
    from kiko.components.movielens_example_gen.inputs import span_range_config
    from kiko.model.warm_start import WarmStartOptions

    history = {"window_spans": args.window_spans, "on_drift": args.drift,
               "drift_thresholds": args.drift_thresholds,
               "warm_start": WarmStartOptions(cold=args.cold, cold_every=args.cold_every)
               } if hasattr(args, "window_spans") else {}

    return {"range_config": span_range_config(args.span), **history,
            "hparams": args.hparams, "rmse_upper_bound": args.rmse_upper_bound,
            "max_rmse_increase": args.max_rmse_increase,
            "beam_pipeline_args": args.beam_pipeline_args, "enable_cache": not args.no_cache}
