"""Warm start: the decision (and each reason to train cold), the base's rows copied by id into
grown vocabularies, and a warm-started model that serves old and new users and movies.

A model is trained cold on the older part of a tiny generated data set (the base); the newer
window adds ratings, users, movies and a side-feature value."""

import dataclasses
import logging
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from kiko.data import synthetic
from kiko.model import data, serving, training, warm_start
from kiko.model import features as fk
from kiko.model.autorec import AutoRecModel, RatingRows
from kiko.model.factorization import MatrixFactorization
from kiko.model.hparams import HParams
from kiko.model.member import ITEM_AUTOREC, MF, USER_AUTOREC
from kiko.model.vocabulary import MOVIE_INDEX, USER_INDEX, build_vocabularies, indexed
from kiko.model.warm_start import Base, Record, WarmStartOptions
from tests.test_model import TINY_OVERRIDES, _load

CODE = "code-1"
NEW_OCCUPATION = b"astronaut"  # the occupation of the users new in the newer window
MEMBERS = (MF, ITEM_AUTOREC, USER_AUTOREC)


def _window(examples: data.Examples, rows: np.ndarray, new_users=()) -> data.Examples:
    """The ratings at ``rows``, side tables of their users and movies only (as ExampleGen
    writes them); users in ``new_users`` get the occupation NEW_OCCUPATION."""
    part = data.take_rows(examples, rows)

    def table(side: data.SideTable, ids: np.ndarray, override=None) -> data.SideTable:
        aligned = side.aligned(ids)
        values = {name: [list(feature.values_of(i)) for i in range(len(ids))]
                  for name, feature in aligned.features.items()}
        for i, entity in enumerate(ids.tolist()):
            if override and entity in override:
                values[fk.OCCUPATION][i] = [NEW_OCCUPATION]
        return data.side_table(ids, values)

    users, movies = np.unique(part.columns[fk.USER_ID]), np.unique(part.columns[fk.MOVIE_ID])
    return data.Examples(part.columns, table(examples.users, users, set(new_users)),
                         table(examples.movies, movies))


@pytest.fixture(scope="module")
def hparams():
    return HParams().with_overrides(TINY_OVERRIDES)


@pytest.fixture(scope="module")
def windows(tmp_path_factory):
    """(old, new): the first 70 % of the ratings by time less those of the five highest user
    and movie ids, and all ratings."""
    report = synthetic.generate(str(tmp_path_factory.mktemp("data")), synthetic.GeneratorConfig(
        n_users=60, n_movies=80, n_ratings=3000, seed=1))
    examples = _load(report)
    columns = examples.columns
    user_ids, movie_ids = np.unique(columns[fk.USER_ID]), np.unique(columns[fk.MOVIE_ID])
    late = columns[fk.TIMESTAMP] > np.quantile(columns[fk.TIMESTAMP], 0.7)
    held_out = (np.isin(columns[fk.USER_ID], user_ids[-5:])
                | np.isin(columns[fk.MOVIE_ID], movie_ids[-5:]))
    old = _window(examples, np.flatnonzero(~late & ~held_out))
    new_users = sorted(set(user_ids.tolist()) - set(old.columns[fk.USER_ID].tolist()))
    new = _window(examples, np.arange(len(examples)), new_users)
    return old, new


def _split(examples, hparams):
    return data.split_validation(examples, hparams.validation_fraction, hparams.seed)


def _export(result, fit, hparams, export_dir, warm_chain=0):
    serving.export_saved_model(result.model, export_dir)
    warm_start.write_record(export_dir, warm_start.make_record(
        hparams, CODE, warm_chain, result.model.member_names, result.vocabularies, fit))
    return export_dir


@pytest.fixture(scope="module")
def base(windows, hparams, tmp_path_factory):
    """(trained result, Base) of a cold model on the old window."""
    fit, validation = _split(windows[0], hparams)
    result = training.train_model(fit, validation, hparams)
    path = _export(result, fit, hparams, str(tmp_path_factory.mktemp("base")))
    return result, warm_start.read_base(path)


class _LearningRates(tf.keras.callbacks.Callback):
    """(member, epoch) -> the learning rate each epoch trains with."""

    def __init__(self):
        super().__init__()
        self.rates = {}

    def on_epoch_begin(self, epoch, logs=None):
        self.rates[self.model.name, epoch] = float(self.model.optimizer.learning_rate.numpy())


@pytest.fixture(scope="module")
def warm(windows, base, hparams, tmp_path_factory):
    """(trained result, loaded SavedModel, its path, learning rates) of a model warm-started
    from the base on the new window."""
    fit, validation = _split(windows[1], hparams)
    rates = _LearningRates()
    result = training.train_model(fit, validation, hparams, base=base[1], callbacks=[rates])
    path = _export(result, fit, hparams, str(tmp_path_factory.mktemp("warm")), warm_chain=1)
    return result, tf.saved_model.load(path), path, rates.rates


def _ids(examples, key):
    return np.unique(examples.columns[key])


# The decision.


def test_the_window_of_the_base_plus_new_ids_warm_starts_with_counts(windows, base, hparams):
    old, new = windows
    fit, _ = _split(new, hparams)
    decision = warm_start.decide(WarmStartOptions(), hparams, CODE, base[1],
                                 _ids(fit, fk.USER_ID), _ids(fit, fk.MOVIE_ID))
    record = base[1].record
    assert decision.mode == warm_start.START_WARM
    assert decision.warm_chain == 1 and decision.base_model == base[1].path
    assert decision.kept_users == 1.0 and decision.kept_movies == 1.0
    assert decision.new_users == len(np.setdiff1d(_ids(fit, fk.USER_ID), record.user_ids)) > 0
    assert decision.new_movies == len(np.setdiff1d(_ids(fit, fk.MOVIE_ID), record.movie_ids)) > 0
    assert base[1].path in decision.reason
    assert (f"kept {len(record.user_ids)} of {len(record.user_ids)} users"
            in decision.reason)
    block = decision.start_block({MF: "warm"})
    assert block["mode"] == "warm" and block["members"] == {MF: "warm"}


def _record(**changes) -> Record:
    values = dict(hparams=HParams().to_dict(), model_code=CODE, warm_chain=0, members=MEMBERS,
                  user_ids=np.arange(1, 5), movie_ids=np.arange(1, 11))
    values.update(changes)
    return Record(**values)


def _decide(base=None, options=WarmStartOptions(), hparams=HParams(), code=CODE,
            users=np.arange(1, 6), movies=np.arange(1, 11)):
    base = Base("/models/7", _record()) if base is None else base
    return warm_start.decide(options, hparams, code, base, users, movies)


@pytest.mark.parametrize("kwargs, reason", [
    (dict(options=WarmStartOptions(cold=True)), "--cold given"),
    (dict(base=Base()), "no blessed model trained before this data"),
    (dict(base=Base("/models/7")),
     "the blessed model /models/7 has no warm-start record (made by older code)"),
    (dict(base=Base("/models/7", None, "/models/7/assets.extra/warm_start.json: bad")),
     "the blessed model cannot be read: /models/7/assets.extra/warm_start.json: bad"),
    (dict(code="code-2"), "model code changed: code-1 -> code-2"),
    (dict(hparams=HParams(embedding_dim=16, epochs=30)),
     "hyperparameters changed: embedding_dim 32 -> 16, epochs 60 -> 30"),
    (dict(base=Base("/models/7", _record(warm_chain=2)), options=WarmStartOptions(cold_every=3)),
     "--cold-every 3: 2 warm starts in a row before this one"),
    (dict(users=np.array([1, 9, 10])),
     "the window kept only 25% of the blessed model's users (1 of 4) and 100% of its movies "
     "(10 of 10), below min_kept 0.5"),
])
def test_each_reason_to_train_cold(kwargs, reason):
    decision = _decide(**kwargs)
    assert (decision.mode, decision.reason, decision.warm_chain) == (warm_start.START_COLD,
                                                                     reason, 0)


def test_reasons_come_in_order_and_cold_every_counts_the_chain():
    assert _decide(options=WarmStartOptions(cold=True), base=Base()).reason == "--cold given"
    assert _decide(code="code-2", hparams=HParams(embedding_dim=8)).reason.startswith(
        "model code changed")
    chained = Base("/models/7", _record(warm_chain=2))
    warm = _decide(base=chained, options=WarmStartOptions(cold_every=4))
    assert (warm.mode, warm.warm_chain) == (warm_start.START_WARM, 3)
    assert _decide(base=chained, options=WarmStartOptions(cold_every=0)).mode == "warm"
    assert _decide(base=chained, options=WarmStartOptions(cold_every=1)).mode == "cold"
    kept = _decide(users=np.array([1, 2, 9]), options=WarmStartOptions(min_kept=0.5))
    assert (kept.mode, kept.kept_users, kept.new_users) == ("warm", 0.5, 1)


def test_a_changed_hyperparameter_is_named_in_the_log(caplog):
    decision = _decide(hparams=HParams(embedding_dim=16))
    with caplog.at_level(logging.INFO, logger="absl"):
        warm_start.log_decision(decision, Base("/models/7", _record()))
    assert "starting cold: hyperparameters changed: embedding_dim 32 -> 16" in caplog.text


def test_a_base_without_record_or_with_a_broken_one_trains_cold(base, tmp_path, caplog):
    older = str(tmp_path / "older")
    shutil.copytree(base[1].path, older)
    os.remove(os.path.join(older, fk.SAVED_MODEL_EXTRA_DIR, warm_start.RECORD_FILE))
    assert warm_start.read_base(older) == Base(older)
    assert "has no warm-start record" in _decide(base=warm_start.read_base(older)).reason

    broken = str(tmp_path / "broken")
    shutil.copytree(base[1].path, broken)
    record_file = os.path.join(broken, fk.SAVED_MODEL_EXTRA_DIR, warm_start.RECORD_FILE)
    with open(record_file, "w") as f:
        f.write("{not json")
    unreadable = warm_start.read_base(broken)
    decision = _decide(base=unreadable)
    assert decision.mode == "cold" and f"cannot be read: {record_file}: " in decision.reason
    with caplog.at_level(logging.INFO, logger="absl"):
        warm_start.log_decision(decision, unreadable)
    assert [r.levelno for r in caplog.records if "starting cold" in r.getMessage()] == [
        logging.WARNING]


def test_options_validate_and_round_trip():
    assert WarmStartOptions.from_dict(None) == WarmStartOptions(False, 0, 0.5)
    options = WarmStartOptions(cold=True, cold_every=3, min_kept=0.8)
    assert WarmStartOptions.from_dict(options.to_dict()) == options
    for bad, message in (({"cold_every": -1}, "cold_every must be an integer >= 0"),
                         ({"cold_every": 1.5}, "cold_every must be an integer >= 0"),
                         ({"min_kept": 1.5}, "min_kept must be a number in [0, 1]"),
                         ({"cold": "yes"}, "cold must be true or false"),
                         ({"colder": True}, "unknown option 'colder'")):
        with pytest.raises(ValueError, match=f"^warm start: {message}".replace("[", r"\[")):
            WarmStartOptions.from_dict(bad)


# The initialisation.


def _same_rows(new_table, new_vocab_ids, base_table, base_vocab_ids, ids):
    new_rows = np.searchsorted(new_vocab_ids, ids) + 1
    base_rows = np.searchsorted(base_vocab_ids, ids) + 1
    np.testing.assert_array_equal(np.asarray(new_table)[new_rows],
                                  np.asarray(base_table)[base_rows])


def _side_row(layer, values, name, value):
    offset = sum(layer.sizes[n] for n in layer.names[:layer.names.index(name)])
    return offset + values[name].tolist().index(value)


def test_known_rows_start_from_the_base_and_new_rows_stay_fresh(windows, base, hparams):
    result, base_model = base
    record = base_model.record
    fit, _ = _split(windows[1], hparams)
    vocab = build_vocabularies(fit, hparams.use_side_features)
    values = warm_start.side_values(fit, True)
    weights = warm_start.BaseWeights(base_model.path)
    index = indexed(fit, vocab)
    members = [MatrixFactorization(vocab, hparams, 3.0)]
    for name, item_based, rows, columns in ((ITEM_AUTOREC, True, vocab.n_movies, vocab.n_users),
                                            (USER_AUTOREC, False, vocab.n_users, vocab.n_movies)):
        keys = (MOVIE_INDEX, USER_INDEX) if item_based else (USER_INDEX, MOVIE_INDEX)
        matrix = RatingRows(index[keys[0]], index[keys[1]], index[fk.RATING], rows, columns)
        units = hparams.autorec_units if item_based else hparams.user_autorec_units
        members.append(AutoRecModel(name, vocab, item_based, units, 0.1, 5, matrix))
    mf = members[0].factorization
    fresh_factors, fresh_side = mf.user_factors.numpy(), mf.user_side.vectors.numpy()
    for member in members:
        warm_start.initialise(member, weights, record, vocab, values)
    known_users = np.intersect1d(vocab.user_ids, record.user_ids)
    known_movies = np.intersect1d(vocab.movie_ids, record.movie_ids)
    new_users = np.setdiff1d(vocab.user_ids, record.user_ids)
    assert len(new_users) and len(known_users) == len(record.user_ids)

    base_mf = result.model.members[0].factorization
    for table, ids, new_ids, base_ids in (
            ("user_factors", known_users, vocab.user_ids, record.user_ids),
            ("user_bias", known_users, vocab.user_ids, record.user_ids),
            ("movie_factors", known_movies, vocab.movie_ids, record.movie_ids),
            ("movie_bias", known_movies, vocab.movie_ids, record.movie_ids)):
        _same_rows(getattr(mf, table), new_ids, getattr(base_mf, table), base_ids, ids)
    assert float(mf.global_mean.numpy()) == float(base_mf.global_mean.numpy())
    new_user_rows = np.searchsorted(vocab.user_ids, new_users) + 1
    np.testing.assert_array_equal(mf.user_factors.numpy()[new_user_rows],
                                  fresh_factors[new_user_rows])

    # Side rows by (feature, value): the new occupation keeps its fresh row.
    base_values = warm_start.side_values(_split(windows[0], hparams)[0], True)
    side, base_side = mf.user_side, base_mf.user_side
    for name in side.names:
        for value in base_values[0][name].tolist():
            new_row = _side_row(side, values[0], name, value)
            base_row = _side_row(base_side, base_values[0], name, value)
            np.testing.assert_array_equal(side.vectors.numpy()[new_row],
                                          base_side.vectors.numpy()[base_row])
            assert side.biases.numpy()[new_row] == base_side.biases.numpy()[base_row]
    astronaut = _side_row(side, values[0], fk.OCCUPATION, NEW_OCCUPATION)
    assert NEW_OCCUPATION not in base_values[0][fk.OCCUPATION].tolist()
    assert side.vectors.shape[0] > base_side.vectors.shape[0]
    np.testing.assert_array_equal(side.vectors.numpy()[astronaut], fresh_side[astronaut])

    # AutoRec rows by column id: users for I-AutoRec, movies for U-AutoRec.
    for member, base_member, ids, new_ids, base_ids in (
            (members[1], result.model.members[1], known_users, vocab.user_ids, record.user_ids),
            (members[2], result.model.members[2], known_movies, vocab.movie_ids,
             record.movie_ids)):
        for table in ("encoder", "decoder", "decoder_bias"):
            _same_rows(getattr(member.autorec, table), new_ids,
                       getattr(base_member.autorec, table), base_ids, ids)
        np.testing.assert_array_equal(member.autorec.encoder_bias.numpy(),
                                      base_member.autorec.encoder_bias.numpy())
        assert member.autorec.encoder.shape[0] > base_member.autorec.encoder.shape[0]


def test_shrink_starts_known_rows_between_the_base_and_fresh_ones(windows, base, hparams):
    result, base_model = base
    record = base_model.record
    fit, _ = _split(windows[1], hparams)
    vocab = build_vocabularies(fit, hparams.use_side_features)
    member = MatrixFactorization(vocab, hparams, 3.0)
    mf = member.factorization
    fresh_factors, fresh_mean = mf.user_factors.numpy(), float(mf.global_mean.numpy())
    warm_start.initialise(member, warm_start.BaseWeights(base_model.path), record, vocab,
                          warm_start.side_values(fit, True), shrink=0.25)
    base_mf = result.model.members[0].factorization
    known = np.searchsorted(vocab.user_ids, record.user_ids) + 1
    new = np.searchsorted(vocab.user_ids, np.setdiff1d(vocab.user_ids, record.user_ids)) + 1
    np.testing.assert_allclose(mf.user_factors.numpy()[known],
                               0.25 * base_mf.user_factors.numpy()[1:len(known) + 1]
                               + 0.75 * fresh_factors[known], rtol=1e-6)
    np.testing.assert_array_equal(mf.user_factors.numpy()[new], fresh_factors[new])
    assert float(mf.global_mean.numpy()) == pytest.approx(
        0.25 * float(base_mf.global_mean.numpy()) + 0.75 * fresh_mean, rel=1e-6)


def test_warm_only_hyperparameters_keep_the_base_usable():
    decision = _decide(hparams=HParams(warm_patience=4, warm_shrink=0.5))
    assert decision.mode == warm_start.START_WARM
    with pytest.raises(ValueError, match="warm_shrink must be in"):
        HParams(warm_shrink=0.0)


# The warm-started model.


def test_every_member_warm_starts_on_the_cold_schedule(warm, base, hparams):
    result, rates = warm[0], warm[3]
    assert result.member_starts == {MF: "warm", ITEM_AUTOREC: "warm", USER_AUTOREC: "warm"}
    for name, rate, decay in ((MF, hparams.learning_rate, hparams.lr_decay),
                              (USER_AUTOREC, hparams.user_autorec_learning_rate,
                               hparams.user_autorec_lr_decay)):
        for epoch in (0, 1):
            assert rates[name, epoch] == pytest.approx(rate * decay ** epoch)
    record = warm_start.read_record(warm[2])
    assert record.warm_chain == 1 and record.members == tuple(result.model.member_names)


def test_a_member_the_base_lacks_trains_fresh(windows, base, hparams):
    partial = Base(base[1].path, dataclasses.replace(base[1].record, members=(MF,)))
    fit, validation = _split(windows[1], hparams)
    result = training.train_model(fit, validation, hparams.with_overrides(
        {"epochs": 1, "autorec_epochs": 1, "user_autorec": False}), base=partial)
    assert result.member_starts == {MF: "warm", ITEM_AUTOREC: "fresh"}


def test_the_warm_model_serves_new_users_and_movies(warm, base, windows):
    result, loaded = warm[0], warm[1]
    record = base[1].record
    vocab = result.vocabularies
    new_users = np.setdiff1d(vocab.user_ids, record.user_ids)
    new_movies = np.setdiff1d(vocab.movie_ids, record.movie_ids)
    assert len(new_users) and len(new_movies)
    users = np.concatenate([new_users, np.resize(record.user_ids, len(new_movies))])
    movies = np.concatenate([np.resize(vocab.movie_ids, len(new_users)), new_movies])
    out = loaded.signatures[fk.PREDICT_SIGNATURE](
        user_id=tf.constant(users, tf.int64), movie_id=tf.constant(movies, tf.int64))
    ratings = out[fk.PREDICTION_KEY].numpy()
    lo, hi = vocab.rating_range
    assert np.isfinite(ratings).all() and ((ratings >= lo) & (ratings <= hi)).all()
    np.testing.assert_allclose(ratings, serving.predict(
        result.model, {fk.USER_ID: users, fk.MOVIE_ID: movies}), rtol=1e-5)


def test_recommend_excludes_movies_seen_in_the_old_and_new_parts(warm, windows):
    old, new = windows
    loaded = warm[1]
    old_pairs = set(zip(old.columns[fk.USER_ID].tolist(), old.columns[fk.MOVIE_ID].tolist()))
    new_pairs = set(zip(new.columns[fk.USER_ID].tolist(),
                        new.columns[fk.MOVIE_ID].tolist())) - old_pairs
    known = set(warm[0].vocabularies.movie_ids.tolist())
    users = sorted({u for u, _ in old_pairs} & {u for u, _ in new_pairs})[:10]
    assert users
    out = loaded.signatures[fk.RECOMMEND_SIGNATURE](user_id=tf.constant(users, tf.int64),
                                                    k=tf.constant(1000, tf.int32))
    for user, row in zip(users, out[fk.RECOMMENDED_MOVIE_IDS].numpy()):
        recommended = set(row.tolist()) - {fk.NO_MOVIE_ID}
        seen_old = {m for u, m in old_pairs if u == user}
        seen_new = {m for u, m in new_pairs if u == user}
        assert seen_old and seen_new
        assert not recommended & (seen_old | seen_new)
        assert recommended == known - seen_old - seen_new


def test_a_warm_member_stops_after_warm_patience_epochs_without_gain(windows, base, hparams):
    # A learning rate so high that validation RMSE soon gets worse: the warm MF stops
    # `warm_patience` epochs after its best one, a fresh one after `patience`.
    fit, validation = _split(windows[1], hparams)
    hp = hparams.with_overrides({"blend": False, "learning_rate": 0.3, "epochs": 30,
                                 "patience": 4, "warm_patience": 1})
    (warm_mf,) = training.train_model(fit, validation, hp, base=base[1]).members
    (cold_mf,) = training.train_model(fit, validation, hp).members
    assert warm_mf["epochs_run"] < 30 and cold_mf["epochs_run"] < 30
    assert warm_mf["epochs_run"] == warm_mf["best_epoch"] + 1
    assert cold_mf["epochs_run"] == cold_mf["best_epoch"] + 4
