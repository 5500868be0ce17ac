"""The trained rating model on a tiny generated data set: members, blend, predictions,
recommendations and the exported SavedModel (a few seconds of training each)."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from kiko.data import synthetic
from kiko.data.movielens.reading import read_ratings, read_side_records
from kiko.data.movielens.source import resolve_source
from kiko.model import blend, data, serving, training, vocabulary
from kiko.model import features as fk
from kiko.model.hparams import HParams
from kiko.model.member import ITEM_AUTOREC, MF, USER_AUTOREC

# Small and quick, given as strings the way a CLI or pipeline config passes them.
TINY_OVERRIDES = {"embedding_dim": "8", "autorec_units": "16", "user_autorec_units": "12",
                  "batch_size": "256", "epochs": "12", "autorec_epochs": "6",
                  "autorec_batch_size": "16",
                  "learning_rate": "0.01", "autorec_learning_rate": "0.01",
                  "user_autorec_learning_rate": "0.01", "patience": "3"}
UNKNOWN_USER, UNKNOWN_MOVIE = 10_000_001, 10_000_002


def _load(report: synthetic.GenerationReport) -> data.Examples:
    """The generated files, read with the project's parsers, as the model's in-memory data.

    Occupations are given as names (bytes) and every fifth movie has no year, as the data
    contract allows."""
    source = resolve_source(report.out_dir)
    ratings = list(read_ratings(source))
    users, movies = read_side_records(source, "users"), read_side_records(source, "movies")
    columns = {fk.USER_ID: np.array([r.user_id for r in ratings], np.int64),
               fk.MOVIE_ID: np.array([r.movie_id for r in ratings], np.int64),
               fk.RATING: np.array([r.rating for r in ratings], np.float32),
               fk.TIMESTAMP: np.array([r.timestamp for r in ratings], np.int64)}
    user_ids, movie_ids = sorted(users), sorted(movies)
    user_table = data.side_table(np.array(user_ids), {
        fk.GENDER: [[users[u].gender.encode()] for u in user_ids],
        fk.AGE: [[users[u].age] for u in user_ids],
        fk.OCCUPATION: [[users[u].occupation.encode()] for u in user_ids],
        fk.ZIP_PREFIX: [[users[u].zip_code[:fk.ZIP_PREFIX_LENGTH].encode()] for u in user_ids]})
    movie_table = data.side_table(np.array(movie_ids), {
        fk.TITLE: [[movies[m].title.encode()] for m in movie_ids],
        fk.YEAR: [[movies[m].year] if movies[m].year and m % 5 else [] for m in movie_ids],
        fk.GENRES: [[g.encode() for g in movies[m].genres] for m in movie_ids]})
    return data.in_canonical_order(data.Examples(columns, user_table, movie_table))


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    report = synthetic.generate(str(tmp_path_factory.mktemp("tiny")), synthetic.GeneratorConfig(
        n_users=60, n_movies=80, n_ratings=3000, seed=1))
    examples = _load(report)
    train, test = data.split_validation(examples, 0.1, seed=0)
    fit, val = data.split_validation(train, 0.1, seed=1)
    return fit, val, test


@pytest.fixture(scope="module")
def hparams():
    return HParams().with_overrides(TINY_OVERRIDES)


class _Recorder(tf.keras.callbacks.Callback):
    """Keeps what a Keras callback is told at the end of each epoch."""

    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append((self.model.name, epoch, dict(logs)))


@pytest.fixture(scope="module")
def recorder():
    return _Recorder()


@pytest.fixture(scope="module")
def trained(splits, hparams, recorder, tmp_path_factory):
    fit, val, _ = splits
    return training.train_model(fit, val, hparams, log_dir=str(tmp_path_factory.mktemp("logs")),
                          callbacks=[recorder])


def _ids_only(examples: data.Examples) -> data.Examples:
    return data.Examples(examples.columns)


def _rmse(pred, labels) -> float:
    return float(np.sqrt(np.mean((np.asarray(pred, np.float64) - labels) ** 2)))


def _member(trained, name):
    return next(m for m in trained.model.members if m.name == name)


# --- what the model is built from ---------------------------------------------------------------

def test_overrides_reach_the_model(trained, hparams):
    assert trained.model.member_names == [MF, ITEM_AUTOREC, USER_AUTOREC]
    assert _member(trained, MF).factorization.user_factors.shape[1] == 8
    assert _member(trained, ITEM_AUTOREC).autorec.encoder.shape[1] == 16
    assert _member(trained, USER_AUTOREC).autorec.encoder.shape[1] == 12


def test_vocabularies_and_side_features_come_from_the_training_data(trained, splits):
    fit = splits[0].columns
    n_users, n_movies = len(np.unique(fit[fk.USER_ID])), len(np.unique(fit[fk.MOVIE_ID]))
    factorization = _member(trained, MF).factorization
    assert factorization.user_factors.shape[0] == n_users + 1  # + the OOV row
    assert factorization.movie_factors.shape[0] == n_movies + 1
    assert _member(trained, ITEM_AUTOREC).autorec.encoder.shape[0] == n_users + 1
    assert _member(trained, USER_AUTOREC).autorec.encoder.shape[0] == n_movies + 1
    # Every side feature of the data, whatever its type; the title only for the catalog.
    assert factorization.user_side.names == sorted(fk.USER_SIDE_FEATURES)
    assert factorization.movie_side.names == [fk.GENRES, fk.YEAR]
    movies = splits[0].movies.aligned(np.unique(fit[fk.MOVIE_ID]))
    n_genres = len(np.unique(movies.features[fk.GENRES].codes))
    assert factorization.movie_side.sizes[fk.GENRES] >= n_genres
    occupations = {v for u in np.unique(fit[fk.USER_ID])
                   for v in splits[0].users.aligned([u]).features[fk.OCCUPATION].values_of(0)}
    assert factorization.user_side.sizes[fk.OCCUPATION] == len(occupations)
    assert factorization.user_side.vectors.shape[0] == sum(factorization.user_side.sizes.values())
    assert trained.vocabularies.rating_range == (fit[fk.RATING].min(), fit[fk.RATING].max())


# --- training -----------------------------------------------------------------------------------

def test_each_member_trains_with_early_stopping_and_reports_its_epochs(trained, hparams):
    history = trained.history
    assert [e["epoch"] for e in history] == list(range(1, len(history) + 1))
    assert [m["name"] for m in trained.members] == trained.model.member_names
    for member in trained.members:
        entries = [e for e in history if e["stage"] == member["name"]]
        assert len(entries) == member["epochs_run"] >= 1
        assert member["epochs_run"] <= (hparams.epochs if member["name"] == MF
                                        else hparams.autorec_epochs)
        best = entries[member["best_epoch"] - 1]
        assert member["val_rmse"] == best["val_rmse"] == min(e["val_rmse"] for e in entries)
        assert member["seconds"] > 0
        for entry in entries:
            for key in ("train_loss", "val_loss", "val_rmse", "val_mae", "val_mse"):
                assert np.isfinite(entry[key]), (key, entry)
            assert entry["val_rmse"] == pytest.approx(entry["val_mse"] ** 0.5, rel=1e-5)
        assert entries[-1]["train_loss"] < entries[0]["train_loss"]
    mf = [e for e in history if e["stage"] == MF]
    assert min(e["val_rmse"] for e in mf) < mf[0]["val_rmse"]
    assert trained.blend["names"] == trained.model.member_names
    assert len(trained.blend["weights"]) == 3
    assert np.isfinite(trained.blend["intercept"])


def test_early_stopping_keeps_the_best_epoch(splits, hparams):
    fit, val, _ = splits
    # A learning rate so high that validation RMSE soon gets worse: training stops early
    # and the best epoch's weights are the ones kept.
    hp = dataclasses.replace(hparams, blend=False, learning_rate=0.3, epochs=30, patience=2)
    result = training.train_model(fit, val, hp)
    (member,) = result.members
    assert member["epochs_run"] < 30
    assert member["epochs_run"] == member["best_epoch"] + hp.patience
    known = (result.vocabularies.user_index(val.columns[fk.USER_ID]) > 0) & (
        result.vocabularies.movie_index(val.columns[fk.MOVIE_ID]) > 0)
    mf = result.model.members[0]
    index = vocabulary.indexed(val, result.vocabularies)
    prediction = mf.clip(mf.predict_pairs(tf.constant(index["user_index"][known]),
                                          tf.constant(index["movie_index"][known])))
    assert _rmse(prediction, val.columns[fk.RATING][known]) == pytest.approx(
        member["val_rmse"], abs=1e-5)


def test_autorecs_are_not_trained_above_their_size_limit(splits, hparams):
    fit, val, test = splits
    n = len(fit)
    assert training.autorecs_skipped(n, dataclasses.replace(hparams, autorec_max_ratings=n)) == {}
    assert training.autorecs_skipped(n, dataclasses.replace(hparams, autorec_max_ratings=0)) == {}
    assert training.autorecs_skipped(n, dataclasses.replace(
        hparams, autorec_max_ratings=n - 1, user_autorec=False)).keys() == {ITEM_AUTOREC}
    hp = dataclasses.replace(hparams, autorec_max_ratings=n - 1, epochs=3)
    result = training.train_model(fit, val, hp)
    assert set(result.skipped) == {ITEM_AUTOREC, USER_AUTOREC}
    assert f"{n:,} training ratings exceed autorec_max_ratings={n - 1:,}" in (
        result.skipped[ITEM_AUTOREC])
    assert [m["name"] for m in result.members] == result.model.member_names == [MF]
    assert {e["stage"] for e in result.history} == {MF}
    assert result.blend["names"] == [MF] and len(result.blend["weights"]) == 1
    prediction = serving.predict(result.model, test.columns)
    assert np.all(np.isfinite(prediction)) and prediction.shape == (len(test),)


def test_callbacks_and_tensorboard_see_every_epoch(trained, recorder, tmp_path_factory):
    assert [(name, epoch) for name, epoch, _ in recorder.epochs] == [
        (e["stage"], e["stage_epoch"] - 1) for e in trained.history]
    for (_, _, logs), entry in zip(recorder.epochs, trained.history):
        assert logs["loss"] == pytest.approx(entry["train_loss"])
        assert logs["val_rmse"] == pytest.approx(entry["val_rmse"])
        assert {"rmse", "mae", "mse", "val_rmse", "val_mae", "val_mse"} <= set(logs)


def test_model_beats_the_global_mean_on_held_out_data(trained, splits):
    fit, _, test = splits
    pred = serving.predict(trained.model, test.columns)
    labels = test.columns[fk.RATING]
    baseline = _rmse(np.full(len(labels), fit.columns[fk.RATING].mean()), labels)
    assert _rmse(pred, labels) < baseline


def test_predictions_have_the_right_shape_and_are_clipped(trained, splits):
    test = splits[2].columns
    pred = serving.predict(trained.model, test)
    assert pred.dtype == np.float32 and pred.shape == test[fk.RATING].shape
    assert np.all(np.isfinite(pred))
    # Extreme pairs: push the blend outside the rating range and check the clip holds.
    vocab = trained.vocabularies
    known = (vocab.user_index(test[fk.USER_ID]) > 0) & (vocab.movie_index(test[fk.MOVIE_ID]) > 0)
    assert known.sum() > 0.8 * len(known)
    weights = trained.model.blend_weights.numpy()
    extreme = np.zeros_like(weights)
    extreme[0] = 1.0
    extreme[0, 0] = 10.0
    trained.model.blend_weights.assign(extreme)
    try:
        assert np.all(serving.predict(trained.model, test)[known] == vocab.rating_range[1])
    finally:
        trained.model.blend_weights.assign(weights)
    assert np.array_equal(serving.predict(trained.model, test), pred)


def test_unknown_ids_fall_back_to_the_known_biases(trained, splits):
    model, fit = trained.model, splits[0].columns
    movie = fit[fk.MOVIE_ID][0]
    user = fit[fk.USER_ID][0]
    pred = serving.predict(model, {fk.USER_ID: np.array([UNKNOWN_USER, UNKNOWN_USER + 7, user,
                                                    UNKNOWN_USER]),
                              fk.MOVIE_ID: np.array([movie, movie, UNKNOWN_MOVIE,
                                                     UNKNOWN_MOVIE])})
    assert np.all(np.isfinite(pred))
    factorization = _member(trained, MF).factorization
    vocab = trained.vocabularies
    u, m = vocab.user_index([user])[0], vocab.movie_index([movie])[0]
    mu = float(factorization.global_mean.numpy())
    movie_side = factorization.movie_side(tf.constant([m]))[1].numpy()[0]
    user_side = factorization.user_side(tf.constant([u]))[1].numpy()[0]
    expected_unknown_user = mu + factorization.movie_bias.numpy()[m] + movie_side
    expected_unknown_movie = mu + factorization.user_bias.numpy()[u] + user_side
    np.testing.assert_allclose(pred, np.clip([expected_unknown_user, expected_unknown_user,
                                              expected_unknown_movie, mu],
                                             *vocab.rating_range), atol=1e-5)


def test_ids_only_half_star_data_trains_deterministically_and_recommends(splits, hparams):
    # Ratings-only data with half stars (ML-10M and later): no side features, the clip
    # follows the ratings seen in training.
    half = [dataclasses.replace(s, columns={**s.columns, fk.RATING: np.clip(
        s.columns[fk.RATING] - 0.5 * (s.columns[fk.MOVIE_ID] % 2), 0.5, 5.0)})
        for s in splits]
    fit, val, test = (_ids_only(s) for s in half)
    hp = dataclasses.replace(hparams, epochs=4, autorec_epochs=2)
    first, second = training.train_model(fit, val, hp), training.train_model(fit, val, hp)
    assert first.model.members[0].factorization.user_side is None
    assert first.vocabularies.rating_range == (0.5, 5.0)
    keys = ("train_loss", "val_loss", "val_rmse", "val_mae")
    for a, b in zip(first.history, second.history, strict=True):
        np.testing.assert_allclose([a[k] for k in keys], [b[k] for k in keys], rtol=1e-6)
    pred = serving.predict(first.model, test.columns)
    np.testing.assert_allclose(pred, serving.predict(second.model, test.columns), atol=1e-6)
    assert pred.min() >= 0.5 and pred.max() <= 5.0
    other = training.train_model(fit, val, dataclasses.replace(hp, seed=hp.seed + 1))
    assert not np.allclose(pred, serving.predict(other.model, test.columns))
    recommended = first.model.recommend(tf.constant([int(fit.columns[fk.USER_ID][0])], tf.int64),
                                        tf.constant(5))
    assert recommended[fk.RECOMMENDED_MOVIE_IDS].shape == (1, 5)
    assert set(recommended[fk.RECOMMENDED_MOVIE_IDS].numpy()[0]) <= set(
        first.vocabularies.movie_ids)


# --- recommendations and the exported SavedModel ------------------------------------------------

def _example(data: dict, row: int, side: bool) -> bytes:
    """A tf.Example of row ``row`` of ``data``; ``side``: with (arbitrary) side features."""
    feature = {
        fk.USER_ID: tf.train.Feature(int64_list=tf.train.Int64List(value=[data[fk.USER_ID][row]])),
        fk.MOVIE_ID: tf.train.Feature(
            int64_list=tf.train.Int64List(value=[data[fk.MOVIE_ID][row]])),
        fk.RATING: tf.train.Feature(float_list=tf.train.FloatList(value=[data[fk.RATING][row]])),
        fk.TIMESTAMP: tf.train.Feature(
            int64_list=tf.train.Int64List(value=[data[fk.TIMESTAMP][row]])),
    }
    if side:  # whatever the Example says, the model looks side features up by id
        for key, value in ((fk.GENDER, b"F"), (fk.ZIP_PREFIX, b"123"), (fk.GENRES, b"Drama")):
            feature[key] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
        for key, value in ((fk.AGE, 25), (fk.OCCUPATION, 3), (fk.YEAR, 1999)):
            feature[key] = tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    export_dir = serving.export_saved_model(trained.model, str(tmp_path_factory.mktemp("export")))
    return tf.saved_model.load(export_dir)


def _rated_by(fit: data.Examples, val: data.Examples, vocab) -> dict:
    """Known user id -> set of known movie ids they rated in the train split (fit + val)."""
    rated = {}
    for part in (fit.columns, val.columns):
        for user, movie in zip(part[fk.USER_ID], part[fk.MOVIE_ID]):
            if vocab.user_index([user])[0] and vocab.movie_index([movie])[0]:
                rated.setdefault(int(user), set()).add(int(movie))
    return rated


def _cold_start_order(fit: data.Examples, val: data.Examples, vocab) -> np.ndarray:
    """Movie ids by damped mean rating, best first (ties: lower id first), in plain NumPy."""
    fit, val = fit.columns, val.columns
    users = np.concatenate([fit[fk.USER_ID], val[fk.USER_ID]])
    movies = np.concatenate([fit[fk.MOVIE_ID], val[fk.MOVIE_ID]])
    ratings = np.concatenate([fit[fk.RATING], val[fk.RATING]]).astype(np.float64)
    keep = (vocab.user_index(users) > 0) & (vocab.movie_index(movies) > 0)
    movies, ratings = movies[keep], ratings[keep]
    prior, mean = blend.COLD_START_PRIOR_RATINGS, ratings.mean()
    score = {m: (ratings[movies == m].sum() + prior * mean) / ((movies == m).sum() + prior)
             for m in vocab.movie_ids}
    return np.array(sorted(vocab.movie_ids, key=lambda m: (-score[m], m)), np.int64)


def _recommend(loaded, users, k):
    out = loaded.signatures[fk.RECOMMEND_SIGNATURE](
        user_id=tf.constant(users, tf.int64), k=tf.constant(k, tf.int32))
    return out[fk.RECOMMENDED_MOVIE_IDS].numpy(), out[fk.RECOMMENDED_RATINGS].numpy()


def test_recommend_returns_the_best_unrated_movies_by_brute_force(trained, splits, exported):
    fit, val, _ = splits
    model, vocab = trained.model, trained.vocabularies
    rated = _rated_by(fit, val, vocab)
    known = [int(u) for u in vocab.user_ids[:3]]
    k = 7
    ids, ratings = _recommend(exported, known + [UNKNOWN_USER], k)
    assert ids.dtype == np.int64 and ratings.dtype == np.float32
    assert ids.shape == ratings.shape == (len(known) + 1, k)
    for row, user in enumerate(known):
        candidates = np.array(sorted(set(vocab.movie_ids.tolist()) - rated[user]), np.int64)
        predicted = serving.predict(model, {fk.USER_ID: np.full(len(candidates), user),
                                       fk.MOVIE_ID: candidates})
        np.testing.assert_allclose(ratings[row], np.sort(predicted)[::-1][:k], atol=1e-5)
        assert set(ids[row]) <= set(candidates) and len(set(ids[row])) == k
        np.testing.assert_allclose(
            ratings[row], serving.predict(model, {fk.USER_ID: np.full(k, user),
                                             fk.MOVIE_ID: ids[row]}), atol=1e-5)
    # An unknown user: the popular, well-rated movies, with the model's (fallback) ratings.
    np.testing.assert_array_equal(ids[-1], _cold_start_order(fit, val, vocab)[:k])
    np.testing.assert_allclose(ratings[-1], serving.predict(
        model, {fk.USER_ID: np.full(k, UNKNOWN_USER), fk.MOVIE_ID: ids[-1]}), atol=1e-5)


def test_recommend_clamps_k_and_pads_rows_without_enough_candidates(trained, splits, exported):
    fit, val, _ = splits
    vocab = trained.vocabularies
    user = int(vocab.user_ids[0])
    n_rated = len(_rated_by(fit, val, vocab)[user])
    ids, ratings = _recommend(exported, [user, UNKNOWN_USER], vocab.n_movies + 5)
    assert ids.shape == (2, vocab.n_movies)  # k clamped to the movies the model knows
    unrated = vocab.n_movies - n_rated
    assert np.all(ids[0, :unrated] != fk.NO_MOVIE_ID)
    assert np.all(ids[0, unrated:] == fk.NO_MOVIE_ID) and np.all(ratings[0, unrated:] == 0)
    assert np.all(np.diff(ratings[0, :unrated]) <= 1e-6)
    np.testing.assert_array_equal(ids[1], _cold_start_order(fit, val, vocab))

    ids, ratings = _recommend(exported, [user], 0)
    assert ids.shape == ratings.shape == (1, 0)
    ids, _ = _recommend(exported, [], 3)
    assert ids.shape == (0, 3)
    with pytest.raises(tf.errors.InvalidArgumentError, match="k must be >= 0"):
        _recommend(exported, [user], -1)


def test_saved_model_signatures_match_the_in_memory_model(trained, splits, tmp_path):
    test = dict(splits[2].columns)
    for key in (fk.USER_ID, fk.MOVIE_ID):  # one unknown user and one unknown movie
        test[key] = test[key].copy()
    test[fk.USER_ID][0], test[fk.MOVIE_ID][1] = UNKNOWN_USER, UNKNOWN_MOVIE
    expected = serving.predict(trained.model, test)

    export_dir = serving.export_saved_model(trained.model, str(tmp_path / "model"))
    loaded = tf.saved_model.load(export_dir)
    assert set(loaded.signatures) == {fk.SERVING_SIGNATURE, fk.PREDICT_SIGNATURE,
                                      fk.RECOMMEND_SIGNATURE}

    by_ids = loaded.signatures[fk.PREDICT_SIGNATURE](
        user_id=tf.constant(test[fk.USER_ID]), movie_id=tf.constant(test[fk.MOVIE_ID]))
    assert by_ids[fk.PREDICTION_KEY].dtype == tf.float32
    np.testing.assert_allclose(by_ids[fk.PREDICTION_KEY].numpy(), expected, atol=1e-5)

    rows = range(len(test[fk.RATING]))
    serve = loaded.signatures[fk.SERVING_SIGNATURE]
    for side in (True, False):
        examples = tf.constant([_example(test, i, side) for i in rows])
        out = serve(examples=examples)[fk.PREDICTION_KEY].numpy()
        assert out.shape == expected.shape
        np.testing.assert_allclose(out, expected, atol=1e-5)
