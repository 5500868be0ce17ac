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

import argparse
import os
import posixpath
from typing import Any, Dict, List, Optional, Tuple

from kiko.data.movielens import AUTO, get_layout, layout_of_name
from kiko.data.movielens.spans import has_placeholders, split_pattern
from kiko.pipeline import configs, flags

# The container command: TFX's executor entry point, after importing kiko (Keras 2 must be
# chosen before TensorFlow loads, and TFX's entry point loads it before the Trainer's module).
CONTAINER_COMMAND = (
    "python", "-c",
    "import kiko, runpy; runpy.run_module("
    "'tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor', "
    "run_name='__main__', alter_sys=True)")


def input_location(data_uri: str) -> Tuple[str, str]:
    """(input_base, split pattern) of the input: the URI of a release's zip or a ratings file,
    or a pattern of spans (`gs://BUCKET/ratings/span-{SPAN}.zip`; ExampleGen ingests the newest).

    The containers read it; the compiling machine may not see it, so it is not opened here.
    """
    if has_placeholders(data_uri):
        return split_pattern(data_uri)
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
    flags.add_data_flags(
        parser,
        data_help="URI of a MovieLens release's zip (ml-100k.zip .. ml-32m.zip) or of a ratings "
                  "file, readable from the containers (its layout's side files beside it are "
                  "joined), or a pattern of spans with {SPAN} (e.g. gs://BUCKET/ml/span-{SPAN}.zip"
                  ", then pass --layout; each run ingests the newest span or --span N). Default: "
                  f"${configs.DATA_ENV}",
        layout_help="file layout of the data (default: told by its name, e.g. ml-25m.zip or "
                    "u.data); it also picks the curated schema, which expects the layout's "
                    "side files")
    parser.add_argument("--serving-dir", default="",
                        help="where blessed models are pushed (default "
                             "PIPELINE_ROOT/serving_model)")
    flags.add_model_flags(
        parser,
        hparam_help=f"override a model hyperparameter (repeatable); also {flags.HPARAMS_FROM_ENV}",
        baseline_note=", itself included: on Kubeflow an identical re-run evaluates and pushes "
                      "its cached model again")
    flags.add_beam_flag(
        parser,
        "a Beam argument for the Beam components only (ExampleGen, StatisticsGen, Evaluator), "
        "repeatable, e.g. --beam-arg=--runner=DataflowRunner; also "
        f"{flags.BEAM_ARGS_FROM_ENV}. Default: the DirectRunner in multi-processing mode inside "
        "each container")
    flags.add_span_flags(parser, history=False)
    flags.add_cache_flag(parser, "Kubeflow")
    args = parser.parse_args(argv)
    flags.resolve(parser, args)

    args.image = configs.kfp_image(args.image)
    args.pipeline_root = configs.kfp_pipeline_root(args.pipeline_root)
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
    return args


def build(args: argparse.Namespace):
    """The pipeline for these arguments, as Kubeflow runs it."""
    from kiko.components.movielens_example_gen.component import make_input_config
    from kiko.components.movielens_example_gen.options import Options
    from kiko.pipeline.kiko_pipeline import BASELINE_LATEST_BLESSED, create_pipeline

    layout = get_layout(args.layout)
    return create_pipeline(
        pipeline_name=configs.PIPELINE_NAME,
        pipeline_root=args.pipeline_root,
        input_base=args.input_base,
        input_config=make_input_config({"single_split": args.pattern}),
        example_gen_options=Options(layout=args.layout),
        schema_path=configs.image_schema_path(layout.users_file is not None,
                                              layout.movies_file is not None),
        metadata_path=None,
        serving_dir=args.serving_dir,
        **flags.pipeline_settings(args),
        baseline=BASELINE_LATEST_BLESSED,
        # The Kubeflow v2 compiler takes no custom resolver: no span window, no drift baseline,
        # no base model (the Trainer trains from scratch every run).
        span_history=False,
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
