"""Compiles the kiko pipeline for Kubeflow Pipelines v2 / Vertex AI Pipelines (a KFP v2 JSON).

    python pipeline/kubeflow_v2_runner.py --image REGISTRY/kiko:TAG \\
        --pipeline-root gs://BUCKET/kiko --data gs://BUCKET/ml-1m.zip [--output FILE]

The same `create_pipeline` as the local runner, compiled by TFX's KubeflowV2DagRunner, with
what differs on Kubeflow: every component runs in the image built by the Dockerfile (so the
curated schema is read from kiko's folder in the image), the orchestrator brings its own ML
Metadata (no SQLite setting), the baseline model is resolved by TFX's
LatestBlessedModelStrategy (the only model resolver the compiler accepts: it compiles neither
custom strategies nor TFX's resolver functions) and the data is a URI the containers can read.
"""

import kiko_model  # noqa: F401  (first: selects Keras 2 before TensorFlow loads)

import argparse
import os
import posixpath
from typing import Any, Dict, List, Optional, Tuple

from kiko_data.movielens import AUTO, LAYOUT_CHOICES, get_layout, layout_of_name
from kiko_model.hparams import HParams
from pipeline import configs

# The container command: TFX's executor entry point, after kiko_model (Keras 2 must be chosen
# before TensorFlow loads, and TFX's entry point loads it before the Trainer's module).
CONTAINER_COMMAND = (
    "python", "-c",
    "import kiko_model, runpy; runpy.run_module("
    "'tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor', "
    "run_name='__main__', alter_sys=True)")


def input_location(data_uri: str) -> Tuple[str, str]:
    """(input_base, split pattern) of the input: the URI of a release's zip or a ratings file.

    The containers read it; the compiling machine may not see it, so it is not opened here.
    """
    base, name = posixpath.split(data_uri)
    if not base or not name:
        raise ValueError(f"--data must be the URI of a MovieLens zip or of a ratings file (e.g. "
                         f"gs://BUCKET/ml-25m.zip), got {data_uri!r}")
    return base, name


def data_layout(data_uri: str, layout: str) -> str:
    """The layout the data is in: `layout`, else what its name tells (ml-25m.zip, u.data)."""
    if layout != AUTO:
        return layout
    named = layout_of_name(data_uri)
    if named is None:
        raise ValueError(f"cannot tell the layout of {data_uri} from its name (it is not "
                         "opened here): pass --layout")
    return named


def _hparam(text: str) -> Tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value.strip()


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Compile the kiko pipeline into a Kubeflow Pipelines v2 / Vertex AI "
                    "Pipelines JSON (TFX's KubeflowV2DagRunner); nothing runs here.")
    parser.add_argument("--output", default=configs.KFP_OUTPUT,
                        help=f"the pipeline JSON to write (default ./{configs.KFP_OUTPUT})")
    parser.add_argument("--image", default="",
                        help="the container image every component runs in, built from this "
                             f"checkout's Dockerfile. Default: ${configs.KFP_IMAGE_ENV}")
    parser.add_argument("--pipeline-root", default="",
                        help="where the runs write their artifacts, a URI the containers can "
                             f"write (e.g. gs://BUCKET/kiko). Default: "
                             f"${configs.KFP_PIPELINE_ROOT_ENV}")
    parser.add_argument("--data", default="",
                        help="URI of a MovieLens release's zip (ml-100k.zip .. ml-32m.zip) or of "
                             "a ratings file, readable from the containers (its layout's side "
                             f"files beside it are joined). Default: ${configs.DATA_ENV}")
    parser.add_argument("--layout", choices=LAYOUT_CHOICES, default=AUTO,
                        help="file layout of the data (default: told by its name, e.g. "
                             "ml-25m.zip or u.data); it also picks the curated schema, which "
                             "expects the layout's side files")
    parser.add_argument("--serving-dir", default="",
                        help="where blessed models are pushed (default "
                             "PIPELINE_ROOT/serving_model)")
    parser.add_argument("--hparam", action="append", default=[], metavar="KEY=VALUE",
                        help="override a model hyperparameter (repeatable); also read from "
                             f"${configs.HPARAMS_ENV} as KEY=VALUE,KEY=VALUE (flags win)")
    parser.add_argument("--rmse-upper-bound", type=float, default=configs.RMSE_UPPER_BOUND,
                        help="bless a model only if its eval RMSE is at most this "
                             f"(default {configs.RMSE_UPPER_BOUND})")
    parser.add_argument("--max-rmse-increase", type=float, default=configs.MAX_RMSE_INCREASE,
                        help="bless a model only if its eval RMSE is at most this much above "
                             "the latest blessed model's, itself included: on Kubeflow an "
                             "identical re-run evaluates and pushes its cached model again "
                             f"(default {configs.MAX_RMSE_INCREASE})")
    parser.add_argument("--beam-arg", action="append", default=[], metavar="ARG",
                        help="a Beam argument for the Beam components only (ExampleGen, "
                             "StatisticsGen, Evaluator), repeatable, e.g. "
                             "--beam-arg=--runner=DataflowRunner; also read from "
                             f"${configs.BEAM_ARGS_ENV} (flags win). Default: the "
                             "DirectRunner in multi-processing mode inside each container")
    parser.add_argument("--no-cache", action="store_true", help="disable Kubeflow caching")
    args = parser.parse_args(argv)

    args.image = configs.kfp_image(args.image)
    args.pipeline_root = configs.kfp_pipeline_root(args.pipeline_root)
    args.data = configs.data_path(args.data)
    for flag, value in (("--image", args.image), ("--pipeline-root", args.pipeline_root),
                        ("--data", args.data)):
        if not value:
            parser.error(f"{flag} is required (no flag and no environment variable given)")
    try:
        args.input_base, args.pattern = input_location(args.data)
        args.layout = data_layout(args.data, args.layout)
    except ValueError as error:
        parser.error(str(error))
    args.serving_dir = args.serving_dir or posixpath.join(args.pipeline_root, "serving_model")
    try:
        args.hparams = dict(_hparam(text) for text in configs.env_hparams() + args.hparam)
        HParams().with_overrides(args.hparams)
    except (argparse.ArgumentTypeError, ValueError) as error:
        parser.error(f"--hparam: {error}")
    args.beam_pipeline_args = configs.beam_pipeline_args(
        0, configs.env_beam_args() + args.beam_arg)
    return args


def build(args: argparse.Namespace):
    """The pipeline for these arguments, as Kubeflow runs it."""
    from components.movielens_example_gen.component import make_input_config
    from pipeline.kiko_pipeline import BASELINE_LATEST_BLESSED, create_pipeline

    layout = get_layout(args.layout)
    return create_pipeline(
        pipeline_name=configs.PIPELINE_NAME,
        pipeline_root=args.pipeline_root,
        input_base=args.input_base,
        input_config=make_input_config({"single_split": args.pattern}),
        layout=args.layout,
        schema_path=configs.image_schema_path(layout.users_file is not None,
                                              layout.movies_file is not None),
        metadata_path=None,
        serving_dir=args.serving_dir,
        hparams=args.hparams,
        rmse_upper_bound=args.rmse_upper_bound,
        max_rmse_increase=args.max_rmse_increase,
        beam_pipeline_args=args.beam_pipeline_args,
        enable_cache=not args.no_cache,
        baseline=BASELINE_LATEST_BLESSED,
    )


def compile_pipeline(pipeline, image: str, output: str) -> Dict[str, Any]:
    """Writes the KFP v2 PipelineJob JSON of `pipeline` to `output` and returns it."""
    from tfx import v1 as tfx

    if pipeline.metadata_connection_config is not None:
        raise ValueError("Kubeflow and Vertex bring their own ML Metadata: a pipeline with a "
                         "metadata connection setting would lose it in the compiled JSON")
    output = os.path.abspath(output)
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
            default_image=image, default_commands=list(CONTAINER_COMMAND)),
        output_dir=os.path.dirname(output), output_filename=os.path.basename(output))
    return runner.run(pipeline)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    job = compile_pipeline(build(args), args.image, args.output)
    tasks = job["pipelineSpec"]["root"]["dag"]["tasks"]
    print(f"wrote {os.path.abspath(args.output)}: {len(tasks)} tasks, image {args.image}, "
          f"pipeline root {args.pipeline_root}")


if __name__ == "__main__":
    main()
