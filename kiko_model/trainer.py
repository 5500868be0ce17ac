"""The TFX Trainer's `run_fn`: examples in memory -> TFRS model -> metrics -> SavedModel."""

import json
import os
import time
from dataclasses import dataclass
from typing import Dict

import tensorflow as tf
from absl import logging
from tfx import v1 as tfx

from kiko.model import data
from kiko.model import features as fk
from kiko.model import slicing
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


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    """Train the kiko rating model on the train split and export it for serving."""
    hparams = _hparams(fn_args)
    inputs = _input_fn(fn_args, hparams)
    result = train_model(inputs.fit, inputs.validation, hparams, log_dir=fn_args.model_run_dir)
    start = time.perf_counter()
    final = _evaluate(result, inputs)
    score_seconds = time.perf_counter() - start
    _write_metrics(fn_args.model_run_dir, {
        "protocol": PROTOCOL,
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
    logging.info("scored the splits in %.1f s, exported the SavedModel in %.1f s",
                 score_seconds, time.perf_counter() - start)
