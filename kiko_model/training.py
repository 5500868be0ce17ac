"""Training: every member by Keras `fit` with early stopping, then the blend on validation.

Each member trains until the validation RMSE that its Ranking task computes every epoch stops
improving (`tf.keras.callbacks.EarlyStopping(restore_best_weights=True)`); then the served
`RatingModel` is assembled and its blend fit on the same validation part. Training data are
compact NumPy columns (`data.Examples`) indexed by the vocabularies; large embedding tables get
row-sparse updates (`LazyAdam`), so a step costs O(batch) whatever the number of users and
movies.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import tensorflow as tf
from absl import logging

from kiko.model import data
from kiko.model import features as fk
from kiko.model import warm_start
from kiko.model.autorec import AutoRecModel, RatingRows
from kiko.model.blend import RatingModel, cold_start_scores, fit_blend, support
from kiko.model.datasets import shuffled_batches, validation_batches
from kiko.model.factorization import MatrixFactorization
from kiko.model.hparams import HParams
from kiko.model.layers import RatedMovies
from kiko.model.member import ITEM_AUTOREC, MF, USER_AUTOREC, Member
from kiko.model.optimizers import LazyAdam
from kiko.model.serving import predict
from kiko.model.vocabulary import (MOVIE_INDEX, USER_INDEX, Vocabularies, build_vocabularies,
                                   indexed)

# Keras runs this many training steps per call of its training function.
_STEPS_PER_EXECUTION = 16


@dataclass
class TrainResult:
    """The trained model, per-epoch history and what the training measured."""

    model: RatingModel
    history: list  # one dict per epoch: stage, epoch, train_loss, val_loss, val_rmse, val_mae
    members: list  # one dict per member: name, val_rmse, val_mae, best_epoch, epochs_run, seconds
    blend: dict  # names, weights, intercept
    val_rmse: float = float("nan")  # of the final (blended) model on the validation part
    val_mae: float = float("nan")
    train_seconds: float = 0.0
    mf_examples_per_second: float = 0.0  # steady state (median epoch after the first)
    vocabularies: Optional[Vocabularies] = None
    timings: dict = field(default_factory=dict)  # seconds per phase
    skipped: dict = field(default_factory=dict)  # member name -> why it was not trained
    # member name -> warm_start.MEMBER_WARM (initialised from the base) or MEMBER_FRESH
    member_starts: dict = field(default_factory=dict)


def score(model: RatingModel, examples: data.Examples) -> Dict[str, float]:
    """Number of examples, MSE, RMSE and MAE of the model's predictions (NaN when empty)."""
    predictions = predict(model, examples.columns)
    error = predictions.astype(np.float64) - examples.columns[fk.RATING].astype(np.float64)
    if not len(error):
        return {"examples": 0, "mse": float("nan"), "rmse": float("nan"), "mae": float("nan")}
    mse = float(np.mean(error ** 2))
    return {"examples": int(len(error)), "mse": mse, "rmse": float(np.sqrt(mse)),
            "mae": float(np.mean(np.abs(error)))}


class _EpochLog(tf.keras.callbacks.Callback):
    """Turns each epoch's Keras logs into a metrics.json history entry (and a log line)."""

    def __init__(self, stage: str, history: list):
        super().__init__()
        self.stage, self.history = stage, history
        self.seconds: List[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self.seconds.append(time.perf_counter() - self._start)
        entry = {"stage": self.stage, "epoch": len(self.history) + 1, "stage_epoch": epoch + 1}
        for key, name in (("train_loss", "loss"), ("train_rmse", "rmse"), ("val_loss", "val_loss"),
                          ("val_rmse", "val_rmse"), ("val_mae", "val_mae"),
                          ("val_mse", "val_mse"), ("learning_rate", "lr")):
            if name in logs:
                entry[key] = float(logs[name])
        entry["seconds"] = self.seconds[-1]
        self.history.append(entry)
        logging.info("%s epoch %d: train loss %.4f, val RMSE %.4f, MAE %.4f (%.1f s)",
                     self.stage, epoch + 1, logs.get("loss", float("nan")),
                     logs.get("val_rmse", float("nan")), logs.get("val_mae", float("nan")),
                     self.seconds[-1])


def _fit(member: Member, train: tf.data.Dataset, steps: int,
         validation: tf.data.Dataset, epochs: int, learning_rate: float, decay: float,
         hparams: HParams, history: list, log_dir: Optional[str],
         callbacks: Sequence[tf.keras.callbacks.Callback], patience: int) -> dict:
    """Train ``member`` with Keras fit until its validation RMSE has not improved for
    ``patience`` epochs; the learning rate of epoch e is learning_rate * decay ** e."""
    start = time.perf_counter()
    # Several steps per call of Keras' training function save per-step overhead.
    member.compile(optimizer=LazyAdam(learning_rate), steps_per_execution=_STEPS_PER_EXECUTION)
    epoch_log = _EpochLog(member.name, history)
    stopping = tf.keras.callbacks.EarlyStopping(
        monitor="val_rmse", mode="min", patience=patience, min_delta=hparams.min_delta,
        restore_best_weights=True)
    fit_callbacks = [*member.fit_callbacks(), epoch_log, stopping,
                     tf.keras.callbacks.LearningRateScheduler(
                         lambda epoch: learning_rate * decay ** epoch)]
    if log_dir:
        fit_callbacks.append(tf.keras.callbacks.TensorBoard(
            log_dir=os.path.join(log_dir, member.name), write_graph=False, profile_batch=0))
    member.fit(train, steps_per_epoch=steps, epochs=epochs, validation_data=validation,
               callbacks=fit_callbacks + list(callbacks), verbose=0)
    # The optimizer's slots (two per weight) and the traced functions holding them and the
    # training data are not needed any more: free them before the next member trains.
    member.optimizer = member.train_function = member.test_function = None
    entries = [e for e in history if e["stage"] == member.name]
    best = entries[stopping.best_epoch]  # the epoch whose weights EarlyStopping restored
    return {"name": member.name, "val_rmse": best["val_rmse"], "val_mae": best["val_mae"],
            "best_epoch": int(best["stage_epoch"]), "epochs_run": len(entries),
            "seconds": time.perf_counter() - start,
            "epoch_seconds": list(epoch_log.seconds)}


# Called with each freshly built member before it trains: initialises it from the base model
# when warm-starting; returns the member's early-stopping patience.
Prepare = Callable[[Member], int]


def _train_mf(train: dict, val_batches, vocab: Vocabularies, hparams: HParams, history: list,
              log_dir, callbacks, prepare: Prepare) -> tuple[MatrixFactorization, dict]:
    model = MatrixFactorization(vocab, hparams, float(np.mean(train[fk.RATING])))
    patience = prepare(model)
    dataset, steps = shuffled_batches(train, hparams.batch_size, hparams.seed, hparams.epochs)
    info = _fit(model, dataset, steps, val_batches, hparams.epochs, hparams.learning_rate,
                hparams.lr_decay, hparams, history, log_dir, callbacks, patience)
    later = info["epoch_seconds"][1:] or info["epoch_seconds"]
    info["examples_per_second"] = (steps * min(hparams.batch_size, len(train[fk.RATING]))
                                   / float(np.median(later)))
    return model, info


def _train_autorec(name: str, item_based: bool, train: dict, val_batches, vocab: Vocabularies,
                   hparams: HParams, history: list, log_dir, callbacks,
                   prepare: Prepare):
    rows, columns = (MOVIE_INDEX, USER_INDEX) if item_based else (USER_INDEX, MOVIE_INDEX)
    n_rows, n_columns = ((vocab.n_movies, vocab.n_users) if item_based
                         else (vocab.n_users, vocab.n_movies))
    matrix = RatingRows(train[rows], train[columns], train[fk.RATING], n_rows, n_columns)
    if item_based:
        units, l2, rate, decay, seed = (hparams.autorec_units, hparams.autorec_l2,
                                        hparams.autorec_learning_rate,
                                        hparams.autorec_lr_decay, hparams.seed + 30)
    else:
        units, l2, rate, decay, seed = (hparams.user_autorec_units, hparams.user_autorec_l2,
                                        hparams.user_autorec_learning_rate,
                                        hparams.user_autorec_lr_decay, hparams.seed + 40)
    model = AutoRecModel(name, vocab, item_based, units, l2, seed, matrix)
    patience = prepare(model)
    dataset, steps = matrix.batches(hparams.autorec_batch_size, hparams.autorec_batch_ratings,
                                    seed + 1, hparams.autorec_epochs)
    info = _fit(model, dataset, steps, val_batches, hparams.autorec_epochs, rate, decay,
                hparams, history, log_dir, callbacks, patience)
    model.freeze_codes()  # from the restored best weights
    model.matrix = None  # the rows were for training; serving decodes the frozen codes
    return model, info


def _preparer(base: Optional[warm_start.Base], vocab: Vocabularies, train: data.Examples,
              hparams: HParams, starts: Dict[str, str]) -> Prepare:
    """The `Prepare` of this training: it notes each member's start in ``starts``."""
    if base is None:
        def prepare(member: Member) -> int:
            starts[member.name] = warm_start.MEMBER_FRESH
            return hparams.patience
        return prepare
    record = base.record
    weights = warm_start.BaseWeights(base.path)
    values = warm_start.side_values(train, hparams.use_side_features)

    def prepare(member: Member) -> int:
        if member.name not in record.members:
            starts[member.name] = warm_start.MEMBER_FRESH
            return hparams.patience
        warm_start.initialise(member, weights, record, vocab, values, hparams.warm_shrink)
        starts[member.name] = warm_start.MEMBER_WARM
        return hparams.warm_patience
    return prepare


def autorecs_skipped(n_ratings: int, hparams: HParams) -> Dict[str, str]:
    """AutoRec member name -> why it is not trained, for a fit part of ``n_ratings`` ratings."""
    limit = hparams.autorec_max_ratings
    if not hparams.blend or not limit or n_ratings <= limit:
        return {}
    reason = (f"{n_ratings:,} training ratings exceed autorec_max_ratings={limit:,} (AutoRec "
              "training cost grows faster than the data); the model is the MF alone. "
              "--hparam autorec_max_ratings=0 trains them anyway")
    names = [ITEM_AUTOREC] + ([USER_AUTOREC] if hparams.user_autorec else [])
    return {name: reason for name in names}


def train_model(train: data.Examples, validation: data.Examples, hparams: HParams = HParams(),
                log_dir: Optional[str] = None,
                callbacks: Sequence[tf.keras.callbacks.Callback] = (),
                base: Optional[warm_start.Base] = None) -> TrainResult:
    """Train every member, then fit the blend on the validation part.

    ``validation`` is carved from the training split by the caller (`data.split_validation`);
    it drives early stopping (best weights restored) and the blend weights. ``log_dir`` gets
    the stock TensorBoard logs of each member (one folder per member); ``callbacks`` (Keras
    callbacks) are passed to every member's fit. ``base``: warm-start from this model (one
    with a record, chosen by `warm_start.decide`): every member it has starts from its rows
    (`warm_start.initialise`), then trains as a cold one does (the same learning-rate
    schedule, from its start) but stops after `HParams.warm_patience` epochs without gain:
    it starts near its optimum. Members the base lacks train fresh.
    """
    start = time.perf_counter()
    timings: Dict[str, float] = {}

    def lap(name: str) -> None:
        timings[name] = time.perf_counter() - start - sum(timings.values())

    tf.keras.utils.set_random_seed(hparams.seed)
    vocab = build_vocabularies(train, hparams.use_side_features)
    train_index, val_index = indexed(train, vocab), indexed(validation, vocab)
    val_batches = validation_batches(val_index)
    member_starts: Dict[str, str] = {}
    prepare = _preparer(base, vocab, train, hparams, member_starts)
    lap("vocabularies")
    history: list = []
    mf, mf_info = _train_mf(train_index, val_batches, vocab, hparams, history, log_dir,
                            callbacks, prepare)
    members, infos = [mf], [mf_info]
    lap(MF)
    skipped = autorecs_skipped(len(train_index[fk.RATING]), hparams)
    if skipped:
        logging.warning("not training %s: %s", ", ".join(skipped), skipped[ITEM_AUTOREC])
    if hparams.blend:
        for name, item_based, enabled in ((ITEM_AUTOREC, True, True),
                                          (USER_AUTOREC, False, hparams.user_autorec)):
            if enabled and name not in skipped:
                member, info = _train_autorec(name, item_based, train_index, val_batches,
                                              vocab, hparams, history, log_dir, callbacks,
                                              prepare)
                members.append(member)
                infos.append(info)
                lap(name)
    # Everything the user rated in the train split (validation part included) is not a
    # candidate for recommendation.
    rated_users = np.concatenate([train_index[USER_INDEX], val_index[USER_INDEX]])
    rated_movies = np.concatenate([train_index[MOVIE_INDEX], val_index[MOVIE_INDEX]])
    seen = (rated_users > 0) & (rated_movies > 0)
    rated = RatedMovies(rated_users[seen], rated_movies[seen], vocab.n_users, name="rated")
    cold_start = cold_start_scores(
        rated_movies[seen], np.concatenate([train_index[fk.RATING], val_index[fk.RATING]])[seen],
        vocab.n_movies)
    model = RatingModel(vocab, members, rated, cold_start,
                        support(train_index[USER_INDEX], vocab.n_users),
                        support(train_index[MOVIE_INDEX], vocab.n_movies))
    blend = fit_blend(model, val_index, hparams.blend_by_support, hparams.calibrate)
    model.compile()
    val_metrics = score(model, validation)
    lap("blend")
    logging.info("trained in %.1f s (%s); validation RMSE %.4f, MAE %.4f; blend %s",
                 time.perf_counter() - start,
                 ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()),
                 val_metrics["rmse"], val_metrics["mae"], blend)
    for info in infos:
        info.pop("epoch_seconds", None)
    return TrainResult(
        model=model, history=history, members=[
            {k: v for k, v in info.items() if k != "examples_per_second"} for info in infos],
        blend=blend, val_rmse=val_metrics["rmse"], val_mae=val_metrics["mae"],
        train_seconds=time.perf_counter() - start,
        mf_examples_per_second=mf_info["examples_per_second"], vocabularies=vocab,
        timings=timings, skipped=skipped, member_starts=member_starts)
