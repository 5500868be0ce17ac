"""Wiring of the kiko pipeline: every path, threshold and option comes in as an argument."""

import dataclasses
import hashlib
import os
from typing import Any, Dict, List, Optional

import tensorflow_data_validation as tfdv
from tfx import v1 as tfx
from tfx.proto import example_gen_pb2, range_config_pb2

from kiko import data as kiko_data
from kiko import model as kiko_model
from kiko.components import movielens_example_gen
from kiko.components.anomalies_gate.component import AnomaliesGate, SpanVerdict
from kiko.components.anomalies_gate.thresholds import ON_DRIFT_STOP, DriftThresholds
from kiko.components.baseline_resolver.strategy import (
    CANDIDATE_KEY, CURRENT_EXAMPLES_KEY, MODEL_BLESSING_KEY, MODEL_KEY, BaseModelStrategy,
    PreviousBlessedModelStrategy)
from kiko.components.movielens_example_gen.component import MovieLensExampleGen
from kiko.components.movielens_example_gen.options import Options
from kiko.components.span_resolver import strategy as span_strategy
from kiko.model import eval_config
from kiko.model import features as fk
from kiko.pipeline import configs, nodes
from kiko.model.hparams import TRAINER_HPARAMS_KEY
from kiko.model.warm_start import MODEL_CODE_KEY, WARM_START_KEY, WarmStartOptions

RUN_FN = "kiko.model.trainer.run_fn"

# How the Evaluator's baseline is resolved: the latest blessed model other than the candidate
# (kiko's PreviousBlessedModelStrategy), or TFX's LatestBlessedModelStrategy, the only one the
# Kubeflow v2 compiler accepts: there an identical re-run compares the cached candidate with
# itself, so the Evaluator and the Pusher run again.
BASELINE_PREVIOUS_BLESSED = "previous_blessed"
BASELINE_LATEST_BLESSED = "latest_blessed"
BASELINE_CHOICES = (BASELINE_PREVIOUS_BLESSED, BASELINE_LATEST_BLESSED)


def code_fingerprint(*packages) -> str:
    """Hash of the Python sources of `packages` (modules), subpackages included.

    TFX caches an execution by its inputs and configuration, not by the code that runs it:
    the Trainer's `run_fn` is referenced by name and ExampleGen's parsing lives in kiko_data,
    so a code change must show up in their configuration to invalidate the cache.
    """
    digest = hashlib.sha256()
    for package in packages:
        root = os.path.dirname(os.path.abspath(package.__file__))
        for folder, subfolders, names in os.walk(root):
            subfolders[:] = sorted(d for d in subfolders if d != "__pycache__")
            for name in sorted(n for n in names if n.endswith(".py")):
                path = os.path.join(folder, name)
                with open(path, "rb") as f:
                    digest.update(os.path.relpath(path, root).encode() + b"\0" + f.read())
    return digest.hexdigest()[:16]


def create_pipeline(
    *,
    pipeline_name: str,
    pipeline_root: str,
    input_base: str,
    schema_path: str,
    metadata_path: Optional[str],
    serving_dir: str = "",
    input_config: Optional[example_gen_pb2.Input] = None,
    output_config: Optional[example_gen_pb2.Output] = None,
    example_gen_options: Options = Options(),
    range_config: Optional[range_config_pb2.RangeConfig] = None,
    window_spans: int = configs.WINDOW_SPANS,
    drift_thresholds: Optional[DriftThresholds] = None,
    on_drift: str = ON_DRIFT_STOP,
    span_history: bool = True,
    hparams: Optional[Dict[str, Any]] = None,
    rmse_upper_bound: Optional[float] = None,
    max_rmse_increase: Optional[float] = None,
    beam_pipeline_args: Optional[List[str]] = None,
    enable_cache: bool = True,
    validate_only: bool = False,
    baseline: str = BASELINE_PREVIOUS_BLESSED,
    warm_start: Optional[WarmStartOptions] = None,
) -> tfx.dsl.Pipeline:
    """ExampleGen (one span) -> StatisticsGen -> ImportSchemaGen -> ExampleValidator ->
    AnomaliesGate (schema, and drift against the previous validated span) -> Trainer (on the
    window of validated spans, from a base model) -> Evaluator (the new span's eval split, vs
    the latest previously blessed model) -> Pusher.

    ExampleGen ingests the newest span of `input_config`'s `{SPAN}` pattern, or the span of
    `range_config` (a StaticRange of one span); data without `{SPAN}` is span 0. The Trainer
    reads the last `window_spans` validated spans (0: all). The gate stops the run when a
    measure of `drift_thresholds` (default configs.DRIFT_THRESHOLDS) is exceeded, or warns
    (`on_drift`). The Trainer's base model is the latest blessed model not trained on this
    run's new Examples (BaseModelStrategy); `warm_start` (default WarmStartOptions()) says when
    it retrains from scratch instead. `span_history` False (the Kubeflow v2 compiler accepts no
    custom resolver) trains on the new span alone, checks no drift and gives the Trainer no base
    model: it trains from scratch.

    `validate_only` stops after the anomalies gate (a quick check of new data). `hparams`
    overrides the model's defaults (kiko.model.hparams.HParams). The Evaluator blesses a model
    whose eval RMSE is at most `rmse_upper_bound` and at most `max_rmse_increase` above the
    latest previously blessed model's; only blessed models are pushed to `serving_dir`.

    `metadata_path` is the SQLite ML Metadata file of the local runner; None where the
    orchestrator brings its own ML Metadata (Kubeflow, Vertex), which ignores a connection
    setting. `beam_pipeline_args` go to the Beam components only (ExampleGen, StatisticsGen,
    Evaluator), not to every container. `baseline`: one of BASELINE_CHOICES.
    `example_gen_options`: MovieLensExampleGen's; its code version is set here.
    """
    if baseline not in BASELINE_CHOICES:
        raise ValueError(f"baseline must be one of {BASELINE_CHOICES}, got {baseline!r}")
    if not validate_only and (not serving_dir or rmse_upper_bound is None
                              or max_rmse_increase is None):
        raise ValueError("serving_dir, rmse_upper_bound and max_rmse_increase are required "
                         "unless validate_only")
    example_gen = MovieLensExampleGen(
        input_base=input_base, input_config=input_config, output_config=output_config,
        range_config=range_config,
        options=dataclasses.replace(
            example_gen_options, code_version=code_fingerprint(movielens_example_gen, kiko_data)),
    ).with_id(nodes.EXAMPLE_GEN_ID)
    statistics_gen = tfx.components.StatisticsGen(
        examples=example_gen.outputs["examples"],
        # Sketch-based top-k/uniques (TFDV's planned default) run faster than the exact Beam
        # combiners; every example is still read, so a single bad value is still seen.
        stats_options=tfdv.StatsOptions(use_sketch_based_topk_uniques=True),
    ).with_id(nodes.STATISTICS_GEN_ID)
    schema_gen = tfx.components.ImportSchemaGen(
        schema_file=schema_path).with_id(nodes.SCHEMA_GEN_ID)
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"],
        schema=schema_gen.outputs["schema"]).with_id(nodes.EXAMPLE_VALIDATOR_ID)
    # Plain channels with a producer: every artifact the node made in this pipeline, not only
    # this run's (resolvers look back over spans).
    all_examples = tfx.dsl.Channel(type=tfx.types.standard_artifacts.Examples,
                                   producer_component_id=nodes.EXAMPLE_GEN_ID)
    all_verdicts = tfx.dsl.Channel(type=SpanVerdict,
                                   producer_component_id=nodes.ANOMALIES_GATE_ID)
    baseline_inputs = {}
    components = [example_gen, statistics_gen, schema_gen, example_validator]
    if span_history:
        drift_baseline = tfx.dsl.Resolver(
            strategy_class=span_strategy.DriftBaselineStrategy,
            **{span_strategy.CURRENT_KEY: example_gen.outputs["examples"],
               span_strategy.EXAMPLES_KEY: all_examples,
               span_strategy.STATISTICS_KEY: tfx.dsl.Channel(
                   type=tfx.types.standard_artifacts.ExampleStatistics,
                   producer_component_id=nodes.STATISTICS_GEN_ID),
               span_strategy.VERDICTS_KEY: all_verdicts}).with_id(nodes.DRIFT_BASELINE_ID)
        baseline_inputs = {
            "baseline_examples": drift_baseline.outputs[span_strategy.EXAMPLES_KEY],
            "baseline_statistics": drift_baseline.outputs[span_strategy.STATISTICS_KEY]}
        components.append(drift_baseline)
    anomalies_gate = AnomaliesGate(
        anomalies=example_validator.outputs["anomalies"],
        examples=example_gen.outputs["examples"],
        statistics=statistics_gen.outputs["statistics"],
        schema=schema_gen.outputs["schema"],
        thresholds=drift_thresholds or DriftThresholds(**configs.DRIFT_THRESHOLDS),
        on_drift=on_drift, **baseline_inputs).with_id(nodes.ANOMALIES_GATE_ID)
    components.append(anomalies_gate)

    if not validate_only:
        training_examples = example_gen.outputs["examples"]
        if span_history:
            window = tfx.dsl.Resolver(
                strategy_class=span_strategy.SpanWindowStrategy,
                config={"num_spans": window_spans},
                **{span_strategy.EXAMPLES_KEY: all_examples,
                   span_strategy.VERDICTS_KEY: all_verdicts}).with_id(nodes.SPAN_WINDOW_ID)
            window.add_upstream_node(anomalies_gate)
            components.append(window)
            training_examples = window.outputs[span_strategy.EXAMPLES_KEY]
        def blessed_model_channels():
            return {MODEL_KEY: tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
                    MODEL_BLESSING_KEY: tfx.dsl.Channel(
                        type=tfx.types.standard_artifacts.ModelBlessing)}

        base_model = None
        if span_history:
            base_resolver = tfx.dsl.Resolver(
                strategy_class=BaseModelStrategy,
                **{CURRENT_EXAMPLES_KEY: example_gen.outputs["examples"]},
                **blessed_model_channels()).with_id(nodes.BASE_MODEL_RESOLVER_ID)
            base_resolver.add_upstream_node(anomalies_gate)
            components.append(base_resolver)
            base_model = base_resolver.outputs[MODEL_KEY]
        model_trainer = tfx.components.Trainer(
            run_fn=RUN_FN,
            examples=training_examples,
            schema=schema_gen.outputs["schema"],
            base_model=base_model,
            custom_config={TRAINER_HPARAMS_KEY: dict(hparams or {}),
                           MODEL_CODE_KEY: code_fingerprint(kiko_model),
                           WARM_START_KEY: (warm_start or WarmStartOptions()).to_dict()},
        ).with_id(nodes.TRAINER_ID)
        model_trainer.add_upstream_node(anomalies_gate)
        if baseline == BASELINE_PREVIOUS_BLESSED:
            model_resolver = tfx.dsl.Resolver(
                strategy_class=PreviousBlessedModelStrategy,
                **{CANDIDATE_KEY: model_trainer.outputs["model"]}, **blessed_model_channels())
        else:
            model_resolver = tfx.dsl.Resolver(
                strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
                **blessed_model_channels())
        model_resolver = model_resolver.with_id(nodes.MODEL_RESOLVER_ID)
        evaluator = tfx.components.Evaluator(
            examples=example_gen.outputs["examples"],
            model=model_trainer.outputs["model"],
            baseline_model=model_resolver.outputs[MODEL_KEY],
            example_splits=[fk.EVAL_SPLIT],
            eval_config=eval_config.make_eval_config(rmse_upper_bound, max_rmse_increase),
        ).with_id(nodes.EVALUATOR_ID)
        pusher = tfx.components.Pusher(
            model=model_trainer.outputs["model"],
            model_blessing=evaluator.outputs["blessing"],
            push_destination=tfx.proto.PushDestination(
                filesystem=tfx.proto.PushDestination.Filesystem(base_directory=serving_dir)),
        ).with_id(nodes.PUSHER_ID)
        components += [model_trainer, model_resolver, evaluator, pusher]

    for component in components:
        # TFX's per-component setting: the pipeline-wide list would reach every container.
        if hasattr(component, "with_beam_pipeline_args"):
            component.with_beam_pipeline_args(beam_pipeline_args or [])
    return tfx.dsl.Pipeline(
        pipeline_name=pipeline_name,
        pipeline_root=pipeline_root,
        components=components,
        enable_cache=enable_cache,
        metadata_connection_config=(
            tfx.orchestration.metadata.sqlite_metadata_connection_config(metadata_path)
            if metadata_path is not None else None),
    )
