"""Beam arguments reach the Beam components only: --beam-arg, $KIKO_BEAM_ARGS, --dask-scheduler."""

import pytest

from kiko.pipeline import nodes
from kiko.pipeline import configs, local_runner

BEAM_NODES = {nodes.EXAMPLE_GEN_ID, nodes.STATISTICS_GEN_ID, nodes.EVALUATOR_ID}
DIRECT_DEFAULTS = ["--direct_running_mode=multi_processing", "--direct_num_workers=0",
                   configs.LOCAL_ENVIRONMENT_ARG]


def _beam_args(argv, monkeypatch, env=""):
    monkeypatch.setenv(configs.BEAM_ARGS_ENV, env)
    return local_runner.parse_args(argv).beam_pipeline_args


def test_default_is_the_multiprocessing_direct_runner(monkeypatch):
    assert _beam_args([], monkeypatch) == DIRECT_DEFAULTS
    assert _beam_args(["--workers", "3"], monkeypatch)[1] == "--direct_num_workers=3"


def test_named_runner_replaces_the_direct_runner_defaults(monkeypatch):
    args = _beam_args(["--beam-arg=--runner=FlinkRunner", "--beam-arg=--parallelism=4"],
                      monkeypatch, env="--runner=DataflowRunner '--labels=a=b c'")
    # The environment first, then the flags: Beam takes the last --runner.
    assert args == ["--runner=DataflowRunner", "--labels=a=b c", "--runner=FlinkRunner",
                    "--parallelism=4"]


def test_extra_direct_runner_options_keep_the_defaults(monkeypatch):
    assert _beam_args(["--beam-arg=--direct_runner_bundle_repeat=1"], monkeypatch) == (
        DIRECT_DEFAULTS + ["--direct_runner_bundle_repeat=1"])


def test_dask_scheduler_selects_kikos_dask_runner(monkeypatch):
    args = _beam_args(["--dask-scheduler", "tcp://127.0.0.1:8786",
                       "--beam-arg=--dask_npartitions=4"], monkeypatch)
    assert args == [f"--runner={configs.DASK_RUNNER}",
                    "--dask_client_address=tcp://127.0.0.1:8786", configs.LOCAL_ENVIRONMENT_ARG,
                    "--dask_npartitions=4"]
    # Beam imports the runner by this path.
    module, _, name = configs.DASK_RUNNER.rpartition(".")
    assert hasattr(__import__(module, fromlist=[name]), name)


def test_tfx_packages_itself_only_for_runners_kiko_did_not_set_up(monkeypatch):
    """TFX's Beam executors add a source package of TFX to the Beam arguments unless they
    name the workers' dependencies; kiko's own runners do, a named runner does not."""
    from tfx.utils import dependency_utils

    built = []
    monkeypatch.setattr(dependency_utils, "build_ephemeral_package",
                        lambda: built.append(1) or "/tmp/tfx_ephemeral.tar.gz")
    for args in (configs.beam_pipeline_args(),
                 configs.beam_pipeline_args(dask_scheduler="tcp://h:8786")):
        assert dependency_utils.make_beam_dependency_flags(args) == args
    assert not built
    flink = configs.beam_pipeline_args(extra=["--runner=FlinkRunner"])
    assert dependency_utils.make_beam_dependency_flags(flink) == (
        flink + ["--extra_package=/tmp/tfx_ephemeral.tar.gz"])
    assert built == [1]


def test_dask_scheduler_and_another_runner_is_an_error(monkeypatch, capsys):
    with pytest.raises(SystemExit):
        _beam_args(["--dask-scheduler", "tcp://h:8786"], monkeypatch,
                   env="--runner=FlinkRunner")
    assert "--runner=FlinkRunner" in capsys.readouterr().err


def test_beam_args_go_to_the_beam_components_only(small_movielens, monkeypatch, tmp_path):
    """Per component (TFX's with_beam_pipeline_args), never pipeline-wide: a pipeline-wide
    list would reach every container on Kubeflow."""
    monkeypatch.setenv(configs.BEAM_ARGS_ENV, "")
    args = local_runner.parse_args(["--data", small_movielens.out_dir, "--home", str(tmp_path),
                                    "--beam-arg=--runner=FlinkRunner"])
    pipeline = local_runner.build(args)
    assert pipeline.beam_pipeline_args == []
    with_args = {c.id: c.executor_spec.beam_pipeline_args for c in pipeline.components
                 if hasattr(c.executor_spec, "beam_pipeline_args")}
    assert set(with_args) == BEAM_NODES
    assert all(value == ["--runner=FlinkRunner"] for value in with_args.values())


@pytest.mark.parametrize("flag,env,origin,named", [
    ("--beam-arg=--direct_num_workrs=3", "", "--beam-arg", "--direct_num_workrs=3"),  # a typo
    ("--beam-arg=parallelism=4", "", "--beam-arg", "parallelism=4"),  # no dashes
    ("--beam-arg=--direct_num_workers=x", "", "--beam-arg", "--direct_num_workers"),  # a bad value
    ("--workers=2", "--no_such_option", f"${configs.BEAM_ARGS_ENV}", "--no_such_option")])
def test_an_argument_beam_cannot_parse_is_a_usage_error(flag, env, origin, named, monkeypatch,
                                                         capsys):
    """Beam itself would log and drop it; kiko refuses it, naming where it came from and the
    argument, in one line (not Beam's own usage text)."""
    with pytest.raises(SystemExit) as exited:
        _beam_args([flag], monkeypatch, env=env)
    assert exited.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1 and f"{origin}: " in errors[0] and named in errors[0]


def test_options_of_the_named_runner_are_known(monkeypatch):
    assert _beam_args(["--beam-arg=--runner=FlinkRunner", "--beam-arg=--flink_master=h:8081"],
                      monkeypatch)[-1] == "--flink_master=h:8081"
