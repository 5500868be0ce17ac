"""The TFX Trainer's `run_fn`: examples in memory -> TFRS model -> metrics -> SavedModel."""

import json
import os
import time
from dataclasses import dataclass
from typing import Dict, Optional

import numpy as np

import tensorflow as tf
from absl import logging
from tfx import v1 as tfx

from kiko.model import data
from kiko.model import features as fk
from kiko.model import slicing
from kiko.model import warm_start
from kiko.model.hparams import TRAINER_HPARAMS_KEY, HParams
from kiko.model.serving import export_saved_model
from kiko.model.training import TrainResult, score, train_model

# Written into the model-run artifact beside the TensorBoard logs (one folder per member).

PROTOCOL = (
    "Model fit on the train split less a seeded random validation part "
    "(HParams.validation_fraction), which drives early stopping and the blend weights; "
    "the eval split is never seen in training and is scored once at the end.")


@dataclass
class _Inputs:
    """The Trainer's splits in memory: the fit and validation parts of train, and eval."""

    fit: data.Examples
    validation: data.Examples
    eval: data.Examples
    catalog: dict  # the movies of the train split (see data.movie_catalog)
    load_seconds: float


def _hparams(fn_args: tfx.components.FnArgs) -> HParams:
    hparams = HParams().with_overrides((fn_args.custom_config or {}).get(TRAINER_HPARAMS_KEY))
    logging.info("kiko hyperparameters: %s", hparams.to_dict())
    return hparams


def _input_fn(fn_args: tfx.components.FnArgs, hparams: HParams) -> _Inputs:
    """Read the train and eval splits once and carve the validation part from train."""
    start = time.perf_counter()
    schema = data.read_schema(fn_args.schema_path)
    train_split = data.load_examples(fn_args.train_files, schema)
    eval_split = data.load_examples(fn_args.eval_files, schema)
    load_seconds = time.perf_counter() - start
    fit, validation = data.split_validation(train_split, hparams.validation_fraction,
                                            hparams.seed)
    logging.info("read %d train and %d eval examples in %.1f s; fitting on %d, validating on %d",
                 len(train_split), len(eval_split), load_seconds, len(fit), len(validation))
    return _Inputs(fit, validation, eval_split, data.movie_catalog(train_split), load_seconds)


def _evaluate(result: TrainResult, inputs: _Inputs) -> Dict[str, dict]:
    """The final model's scores on every part: train (fit), validation and eval."""
    final = {"train": score(result.model, inputs.fit),
             "validation": score(result.model, inputs.validation),
             "eval": score(result.model, inputs.eval)}
    for split, scores in final.items():
        logging.info("final %s: MSE %.4f, RMSE %.4f, MAE %.4f (%d examples)", split,
                     scores["mse"], scores["rmse"], scores["mae"], scores["examples"])
    return final


def _write_metrics(model_run_dir: str, report: dict) -> None:
    tf.io.gfile.makedirs(model_run_dir)
    with tf.io.gfile.GFile(os.path.join(model_run_dir, fk.METRICS_FILE), "w") as f:
        f.write(json.dumps(report, indent=2, default=float))


def _export(result: TrainResult, inputs: _Inputs, serving_model_dir: str) -> None:
    """The SavedModel with the slice features of TFMA (from the fit part) and the catalog."""
    export_saved_model(
        result.model, serving_model_dir,
        extra_signatures={slicing.TRANSFORM_SIGNATURE: slicing.SliceFeatures(
            inputs.fit.columns[fk.USER_ID], inputs.fit.columns[fk.MOVIE_ID])},
        catalog=inputs.catalog)


def _start(fn_args: tfx.components.FnArgs, hparams: HParams,
           inputs: _Inputs) -> tuple[warm_start.Decision, warm_start.Base]:
    """Warm or cold start from TFX's base model (the latest blessed one), logged."""
    config = fn_args.custom_config or {}
    options = warm_start.WarmStartOptions.from_dict(config.get(warm_start.WARM_START_KEY))
    base = warm_start.read_base(getattr(fn_args, "base_model", None))
    columns = inputs.fit.columns
    decision = warm_start.decide(options, hparams, config.get(warm_start.MODEL_CODE_KEY), base,
                                 np.unique(columns[fk.USER_ID]), np.unique(columns[fk.MOVIE_ID]))
    warm_start.log_decision(decision, base)
    return decision, base


def _record(fn_args: tfx.components.FnArgs, hparams: HParams, decision: warm_start.Decision,
            result: TrainResult, inputs: _Inputs) -> warm_start.Record:
    return warm_start.make_record(
        hparams, (fn_args.custom_config or {}).get(warm_start.MODEL_CODE_KEY), decision.warm_chain,
        result.model.member_names, result.vocabularies, inputs.fit)


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    """Train the kiko rating model on the train split (warm-started from the base model when
    `warm_start.decide` says so) and export it for serving."""
    hparams = _hparams(fn_args)
    inputs = _input_fn(fn_args, hparams)
    decision, base = _start(fn_args, hparams, inputs)
    warm_base: Optional[warm_start.Base] = (base if decision.mode == warm_start.START_WARM
                                            else None)
    result = train_model(inputs.fit, inputs.validation, hparams, log_dir=fn_args.model_run_dir,
                         base=warm_base)
    start = time.perf_counter()
    final = _evaluate(result, inputs)
    score_seconds = time.perf_counter() - start
    _write_metrics(fn_args.model_run_dir, {
        "protocol": PROTOCOL,
        "start": decision.start_block(result.member_starts),
        "hparams": hparams.to_dict(),
        "history": result.history,
        "members": result.members,
        "skipped_members": result.skipped,
        "blend": result.blend,
        "final": final,
        "load_seconds": inputs.load_seconds,
        "train_seconds": result.train_seconds,
        "score_seconds": score_seconds,
        "mf_examples_per_second": result.mf_examples_per_second,
        "timings": result.timings,
    })
    start = time.perf_counter()
    _export(result, inputs, fn_args.serving_model_dir)
    warm_start.write_record(fn_args.serving_model_dir,
                            _record(fn_args, hparams, decision, result, inputs))
    logging.info("%s start; scored the splits in %.1f s, exported the SavedModel in %.1f s",
                 decision.mode, score_seconds, time.perf_counter() - start)
