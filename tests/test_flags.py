"""The runners' shared flags (pipeline.flags): value types, environment fallbacks, usage errors."""

import argparse

import pytest

from kiko.pipeline import configs, flags


def _parser():
    parser = argparse.ArgumentParser()
    flags.add_data_flags(parser, data_help="data", layout_help="layout")
    flags.add_model_flags(parser, hparam_help="hparam")
    flags.add_beam_flag(parser, "beam")
    flags.add_cache_flag(parser, "TFX")
    return parser


def _resolved(argv, **resolve):
    parser = _parser()
    args = parser.parse_args(argv)
    flags.resolve(parser, args, **resolve)
    return args


@pytest.fixture(autouse=True)
def no_kiko_environment(monkeypatch):
    for name in (configs.DATA_ENV, configs.HPARAMS_ENV, configs.BEAM_ARGS_ENV):
        monkeypatch.delenv(name, raising=False)


def test_value_types_parse_and_refuse_with_the_value():
    assert flags.split_ratio("4:1") == {"train": 4, "eval": 1}
    assert flags.fraction("0.25") == 0.25
    assert flags.hparam(" epochs = 3 ") == ("epochs", "3")
    for parse, bad in ((flags.split_ratio, "9"), (flags.split_ratio, "0:1"),
                       (flags.fraction, "1.5"), (flags.fraction, "x"), (flags.hparam, "=3"),
                       (flags.hparam, "epochs")):
        with pytest.raises(argparse.ArgumentTypeError, match=repr(bad)):
            parse(bad)


def test_flags_win_over_the_environment(monkeypatch):
    monkeypatch.setenv(configs.DATA_ENV, "env.zip")
    monkeypatch.setenv(configs.HPARAMS_ENV, "epochs=2, embedding_dim=16")
    args = _resolved(["--hparam", "epochs=5"])
    assert (args.data, args.data_origin) == ("env.zip", f"${configs.DATA_ENV}")
    assert args.hparams == {"epochs": "5", "embedding_dim": "16"}
    args = _resolved(["--data", "flag.zip"])
    assert (args.data, args.data_origin) == ("flag.zip", "--data")


def test_bad_hyperparameters_are_usage_errors_naming_the_flag(capsys):
    for argv in (["--hparam", "epochs"], ["--hparam", "no_such_hparam=1"]):
        with pytest.raises(SystemExit) as exit_:
            _resolved(argv)
        assert exit_.value.code == 2
        assert "--hparam: " in capsys.readouterr().err


def test_beam_arguments_follow_the_runner_settings(monkeypatch):
    monkeypatch.setenv(configs.BEAM_ARGS_ENV, "--job_name=a")
    args = _resolved(["--beam-arg=--direct_runner_bundle_repeat=2"], workers=3)
    assert args.beam_pipeline_args == configs.beam_pipeline_args(
        3, ["--job_name=a", "--direct_runner_bundle_repeat=2"])


def _span_parser(history):
    parser = _parser()
    flags.add_span_flags(parser, history=history)
    return parser


def test_warm_start_flags_reach_the_pipeline_settings():
    from kiko.model.warm_start import WarmStartOptions

    parser = _span_parser(history=True)
    args = parser.parse_args([])
    flags.resolve(parser, args)
    assert flags.pipeline_settings(args)["warm_start"] == WarmStartOptions()
    args = parser.parse_args(["--cold", "--cold-every", "4"])
    flags.resolve(parser, args)
    assert flags.pipeline_settings(args)["warm_start"] == WarmStartOptions(cold=True,
                                                                           cold_every=4)
    help_text = " ".join(parser.format_help().split())
    assert "after N-1 warm starts in a row (1: every time; default 0: never)" in help_text


def test_bad_cold_every_is_a_usage_error_and_runners_without_history_have_no_warm_start(
        capsys):
    for bad, problem in (("-1", "a whole number is >= 0"), ("x", "expected a whole number"),
                         ("2.5", "expected a whole number")):
        with pytest.raises(SystemExit) as exit_:
            _span_parser(history=True).parse_args(["--cold-every", bad])
        assert exit_.value.code == 2
        assert f"--cold-every: {problem}, got {bad!r}" in capsys.readouterr().err
    parser = _span_parser(history=False)
    with pytest.raises(SystemExit):
        parser.parse_args(["--cold"])
    args = parser.parse_args([])
    flags.resolve(parser, args)
    assert "warm_start" not in flags.pipeline_settings(args)
