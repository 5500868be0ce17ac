"""The TFX Trainer's `run_fn`: examples in memory -> TFRS model -> metrics -> SavedModel."""

import json
import os
import time
from typing import Dict

import numpy as np
import tensorflow as tf
from absl import logging
from tfx import v1 as tfx

from kiko_model import data
from kiko_model import features as fk
from kiko_model import model as kiko
from kiko_model import slicing
from kiko_model.hparams import TRAINER_HPARAMS_KEY, HParams

# Written into the model-run artifact beside the TensorBoard logs (one folder per member).
METRICS_FILE = "metrics.json"

PROTOCOL = (
    "Model fit on the train split less a seeded random validation part "
    "(HParams.validation_fraction), which drives early stopping and the blend weights; "
    "the eval split is never seen in training and is scored once at the end.")


def _score(model: kiko.RatingModel, examples: data.Examples) -> Dict[str, float]:
    predictions = kiko.predict(model, examples.columns)
    error = predictions.astype(np.float64) - examples.columns[fk.RATING].astype(np.float64)
    mse = float(np.mean(error ** 2))
    return {"examples": int(len(error)), "mse": mse, "rmse": float(np.sqrt(mse)),
            "mae": float(np.mean(np.abs(error)))}


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    """Train the kiko rating model on the train split and export it for serving."""
    hparams = HParams().with_overrides((fn_args.custom_config or {}).get(TRAINER_HPARAMS_KEY))
    logging.info("kiko hyperparameters: %s", hparams.to_dict())
    start = time.perf_counter()
    schema = data.read_schema(fn_args.schema_path)
    train_split = data.load_examples(fn_args.train_files, schema)
    eval_split = data.load_examples(fn_args.eval_files, schema)
    load_seconds = time.perf_counter() - start
    catalog = data.movie_catalog(train_split)
    fit, validation = kiko.split_validation(train_split, hparams.validation_fraction,
                                            hparams.seed)
    logging.info("read %d train and %d eval examples in %.1f s; fitting on %d, validating on %d",
                 len(train_split), len(eval_split), load_seconds, len(fit), len(validation))
    del train_split

    result = kiko.train_model(fit, validation, hparams, log_dir=fn_args.model_run_dir)
    start = time.perf_counter()
    final = {"train": _score(result.model, fit), "validation": _score(result.model, validation),
             "eval": _score(result.model, eval_split)}
    score_seconds = time.perf_counter() - start
    for split, scores in final.items():
        logging.info("final %s: MSE %.4f, RMSE %.4f, MAE %.4f (%d examples)", split,
                     scores["mse"], scores["rmse"], scores["mae"], scores["examples"])

    report = {
        "protocol": PROTOCOL,
        "hparams": hparams.to_dict(),
        "history": result.history,
        "members": result.members,
        "skipped_members": result.skipped,
        "blend": result.blend,
        "best_epoch": result.best_epoch(kiko.MF),
        "autorec_best_epoch": result.best_epoch(kiko.ITEM_AUTOREC),
        "blend_weights": list(result.blend_weights),
        "final": final,
        "load_seconds": load_seconds,
        "train_seconds": result.train_seconds,
        "score_seconds": score_seconds,
        "mf_examples_per_second": result.mf_examples_per_second,
        "timings": result.timings,
    }
    tf.io.gfile.makedirs(fn_args.model_run_dir)
    with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, METRICS_FILE), "w") as f:
        f.write(json.dumps(report, indent=2, default=float))
    start = time.perf_counter()
    kiko.export_saved_model(
        result.model, fn_args.serving_model_dir,
        extra_signatures={slicing.TRANSFORM_SIGNATURE: slicing.SliceFeatures(
            fit.columns[fk.USER_ID], fit.columns[fk.MOVIE_ID])},
        catalog=catalog)
    logging.info("scored the splits in %.1f s, exported the SavedModel in %.1f s",
                 score_seconds, time.perf_counter() - start)
