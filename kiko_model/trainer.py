"""The TFX Trainer's `run_fn`: examples in memory -> TFRS model -> metrics -> SavedModel."""

import json
from absl import logging
import os
import time
from typing import Dict

import numpy as np
import tensorflow as tf
from tfx import v1 as tfx

from kiko_model import data
from kiko_model import features as fk
from kiko_model import model as kiko
from kiko_model import slicing
from kiko_model.hparams import TRAINER_HPARAMS_KEY, HParams

# Written into the model-run artifact beside the TensorBoard logs.
METRICS_FILE = "metrics.json"

PROTOCOL = (
    "Model fit on the train split less a seeded random validation part "
    "(HParams.validation_fraction), which drives early stopping and the blend weights; "
    "the eval split is never seen in training and is scored once at the end.")


def _score(model, columns: data.Columns) -> Dict[str, float]:
    predictions = kiko.predict(model, columns)
    error = predictions.astype(np.float64) - columns[fk.RATING].astype(np.float64)
    mse = float(np.mean(error ** 2))
    return {"examples": int(len(error)), "mse": mse, "rmse": float(np.sqrt(mse)),
            "mae": float(np.mean(np.abs(error)))}


class _TensorBoardScalars(tf.keras.callbacks.Callback):
    """Writes each epoch's losses and validation RMSE/MAE as TensorBoard scalars.

    (The epochs are also logged by the training loop.)"""

    def __init__(self, log_dir: str):
        super().__init__()
        self._writer = tf.summary.create_file_writer(log_dir)

    def on_epoch_end(self, epoch, logs=None):
        with self._writer.as_default(step=epoch + 1):
            for name, value in (logs or {}).items():
                if isinstance(value, (int, float, np.floating)):
                    tf.summary.scalar(name, float(value))
        self._writer.flush()


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    """Train the kiko rating model on the train split and export it for serving."""
    hparams = HParams().with_overrides((fn_args.custom_config or {}).get(TRAINER_HPARAMS_KEY))
    logging.info("kiko hyperparameters: %s", hparams.to_dict())
    start = time.perf_counter()
    train_split = data.load_examples(fn_args.train_files)
    eval_split = data.load_examples(fn_args.eval_files)
    load_seconds = time.perf_counter() - start
    fit, validation = kiko.split_validation(train_split, hparams.validation_fraction, hparams.seed)
    logging.info("read %d train and %d eval examples in %.1f s; fitting on %d, validating on %d",
                 len(train_split[fk.RATING]), len(eval_split[fk.RATING]), load_seconds,
                 len(fit[fk.RATING]), len(validation[fk.RATING]))

    result = kiko.train_model(fit, validation, hparams,
                              callbacks=[_TensorBoardScalars(fn_args.model_run_dir)])
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
        "best_epoch": result.best_epoch,
        "autorec_best_epoch": result.autorec_best_epoch,
        "blend_weights": list(result.blend_weights),
        "final": final,
        "load_seconds": load_seconds,
        "train_seconds": result.train_seconds,
        "score_seconds": score_seconds,
        "mf_examples_per_second": result.mf_examples_per_second,
    }
    os.makedirs(fn_args.model_run_dir, exist_ok=True)
    with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, METRICS_FILE), "w") as f:
        f.write(json.dumps(report, indent=2, default=float))
    start = time.perf_counter()
    kiko.export_saved_model(
        result.model, fn_args.serving_model_dir,
        extra_signatures={slicing.TRANSFORM_SIGNATURE: slicing.SliceFeatures(
            fit[fk.USER_ID], fit[fk.MOVIE_ID])},
        catalog=data.movie_catalog(train_split))
    logging.info("scored the splits in %.1f s, exported the SavedModel in %.1f s",
                 score_seconds, time.perf_counter() - start)
