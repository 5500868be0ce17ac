"""Unit tests of the rating model on a tiny generated data set (a few seconds of training each)."""

import kiko_model  # noqa: F401  (selects Keras 2; must precede TensorFlow)

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from kiko_model import features as fk
from kiko_model import model as km
from kiko_data import synthetic
from kiko_data.movielens.reading import read_ratings, read_side_records
from kiko_data.movielens.source import resolve_source
from kiko_model.hparams import HParams

# Small and quick, given as strings the way a CLI or pipeline config passes them.
TINY_OVERRIDES = {"embedding_dim": "8", "autorec_units": "16", "batch_size": "256",
                  "epochs": "12", "autorec_epochs": "6", "autorec_batch_size": "16",
                  "learning_rate": "0.01", "patience": "3"}
UNKNOWN_USER, UNKNOWN_MOVIE = 10_000_001, 10_000_002


def _load(report: synthetic.GenerationReport) -> dict:
    """The generated files, read with the project's parsers, as the model's in-memory dict."""
    source = resolve_source(report.out_dir)
    ratings = list(read_ratings(source))
    users, movies = read_side_records(source, "users"), read_side_records(source, "movies")
    data = {fk.USER_ID: np.array([r.user_id for r in ratings], np.int64),
            fk.MOVIE_ID: np.array([r.movie_id for r in ratings], np.int64),
            fk.RATING: np.array([r.rating for r in ratings], np.float32),
            fk.TIMESTAMP: np.array([r.timestamp for r in ratings], np.int64)}
    user_rows = [users[r.user_id] for r in ratings]
    movie_rows = [movies[r.movie_id] for r in ratings]
    data[fk.GENDER] = np.array([u.gender.encode() for u in user_rows], object)
    data[fk.AGE] = np.array([u.age for u in user_rows], np.int64)
    data[fk.OCCUPATION] = np.array([u.occupation.encode() for u in user_rows], object)
    data[fk.ZIP_PREFIX] = np.array([u.zip_code[:fk.ZIP_PREFIX_LENGTH].encode()
                                    for u in user_rows], object)
    data[fk.YEAR] = np.array([m.year or 0 for m in movie_rows], np.int64)
    data[fk.GENRES] = [tuple(g.encode() for g in m.genres) for m in movie_rows]
    return data


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    report = synthetic.generate(str(tmp_path_factory.mktemp("tiny")), synthetic.GeneratorConfig(
        n_users=60, n_movies=80, n_ratings=3000, seed=1))
    data = _load(report)
    train, test = km.split_validation(data, 0.1, seed=0)
    fit, val = km.split_validation(train, 0.1, seed=1)
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
        self.epochs.append((epoch, dict(logs)))


@pytest.fixture(scope="module")
def recorder():
    return _Recorder()


@pytest.fixture(scope="module")
def trained(splits, hparams, recorder):
    fit, val, _ = splits
    return km.train_model(fit, val, hparams, callbacks=[recorder])


def _ids_only(data: dict) -> dict:
    return {k: data[k] for k in (fk.USER_ID, fk.MOVIE_ID, fk.RATING, fk.TIMESTAMP)}


def _rmse(pred, labels) -> float:
    return float(np.sqrt(np.mean((np.asarray(pred, np.float64) - labels) ** 2)))


# --- hyperparameters ----------------------------------------------------------------------------

def test_overrides_convert_strings_and_reject_bad_input():
    hp = HParams().with_overrides({"embedding_dim": "12", "learning_rate": "0.5",
                                   "blend": "false", "patience": 4})
    assert (hp.embedding_dim, hp.learning_rate, hp.blend, hp.patience) == (12, 0.5, False, 4)
    assert hp.to_dict()["embedding_dim"] == 12
    with pytest.raises(ValueError, match="embeding_dim"):
        HParams().with_overrides({"embeding_dim": "12"})
    with pytest.raises(ValueError, match="batch_size"):
        HParams().with_overrides({"batch_size": "large"})
    with pytest.raises(ValueError, match="blend"):
        HParams().with_overrides({"blend": "maybe"})
    with pytest.raises(ValueError, match="validation_fraction"):
        HParams().with_overrides({"validation_fraction": "1.5"})


def test_overrides_reach_the_model(trained, hparams):
    model = trained.model
    assert model.mf.factorization.user_factors.shape[1] == hparams.embedding_dim == 8
    assert model.autorec.autorec.encoder.shape[1] == hparams.autorec_units == 16


def test_vocabularies_come_from_the_training_data(trained, splits):
    fit = splits[0]
    n_users, n_movies = len(np.unique(fit[fk.USER_ID])), len(np.unique(fit[fk.MOVIE_ID]))
    factorization = trained.model.mf.factorization
    assert factorization.user_factors.shape[0] == n_users + 1  # + the OOV row
    assert factorization.movie_factors.shape[0] == n_movies + 1
    assert trained.model.autorec.autorec.decoder.shape[0] == n_users + 1


# --- training -----------------------------------------------------------------------------------

def test_loss_falls_and_history_is_reported(trained):
    mf = [e for e in trained.history if e["stage"] == "mf"]
    autorec = [e for e in trained.history if e["stage"] == "autorec"]
    assert mf and autorec
    assert mf[-1]["train_loss"] < 0.9 * mf[0]["train_loss"]
    assert min(e["val_rmse"] for e in mf) < mf[0]["val_rmse"]
    assert [e["epoch"] for e in trained.history] == list(range(1, len(trained.history) + 1))
    for entry in trained.history:
        assert set(entry) >= {"epoch", "train_loss", "val_loss", "val_rmse", "val_mae"}
        assert all(np.isfinite(entry[k]) for k in ("train_loss", "val_loss", "val_rmse"))
    assert 1 <= trained.best_epoch <= len(mf)
    assert len(trained.blend_weights) == 3


def test_callbacks_see_every_epoch(trained, recorder):
    assert [epoch for epoch, _ in recorder.epochs] == list(range(len(trained.history)))
    for (_, logs), entry in zip(recorder.epochs, trained.history):
        assert logs["loss"] == entry["train_loss"] and logs["val_rmse"] == entry["val_rmse"]


def test_model_beats_the_global_mean_on_held_out_data(trained, splits):
    fit, _, test = splits
    pred = km.predict(trained.model, test)
    baseline = _rmse(np.full(len(test[fk.RATING]), fit[fk.RATING].mean()), test[fk.RATING])
    assert _rmse(pred, test[fk.RATING]) < baseline


def test_predictions_have_the_right_shape_and_are_clipped(trained, splits):
    test = splits[2]
    pred = km.predict(trained.model, test)
    assert pred.dtype == np.float32 and pred.shape == test[fk.RATING].shape
    assert np.all(np.isfinite(pred))
    # Extreme pairs: push the blend outside [1, 5] and check the clip holds.
    vocab = trained.vocabularies
    known = (vocab.user_index(test[fk.USER_ID]) > 0) & (vocab.movie_index(test[fk.MOVIE_ID]) > 0)
    assert known.sum() > 0.8 * len(known)
    trained.model.blend_weights.assign([10.0, 1.0, 0.0])
    try:
        assert np.all(km.predict(trained.model, test)[known] == 5.0)
    finally:
        trained.model.blend_weights.assign(list(trained.blend_weights))
    assert np.array_equal(km.predict(trained.model, test), pred)


def test_unknown_ids_fall_back_to_the_known_biases(trained, splits):
    model, fit = trained.model, splits[0]
    movie = fit[fk.MOVIE_ID][0]
    user = fit[fk.USER_ID][0]
    pred = km.predict(model, {fk.USER_ID: np.array([UNKNOWN_USER, UNKNOWN_USER + 7, user,
                                                    UNKNOWN_USER]),
                              fk.MOVIE_ID: np.array([movie, movie, UNKNOWN_MOVIE,
                                                     UNKNOWN_MOVIE])})
    assert np.all(np.isfinite(pred))
    factorization = model.mf.factorization
    vocab = trained.vocabularies
    u, m = vocab.user_index([user])[0], vocab.movie_index([movie])[0]
    mu = float(factorization.global_mean.numpy())
    movie_side = factorization.movie_side(tf.constant([m]))[1].numpy()[0]
    user_side = factorization.user_side(tf.constant([u]))[1].numpy()[0]
    expected_unknown_user = mu + factorization.movie_bias.numpy()[m] + movie_side
    expected_unknown_movie = mu + factorization.user_bias.numpy()[u] + user_side
    np.testing.assert_allclose(pred, np.clip([expected_unknown_user, expected_unknown_user,
                                              expected_unknown_movie, mu], 1, 5), atol=1e-5)


def test_ids_only_data_trains_and_is_deterministic(splits, hparams):
    fit, val, test = (_ids_only(s) for s in splits)
    hp = dataclasses.replace(hparams, epochs=4, autorec_epochs=2)
    first, second = km.train_model(fit, val, hp), km.train_model(fit, val, hp)
    assert first.model.mf.factorization.user_side is None
    keys = ("train_loss", "val_loss", "val_rmse", "val_mae")
    for a, b in zip(first.history, second.history, strict=True):
        np.testing.assert_allclose([a[k] for k in keys], [b[k] for k in keys], rtol=1e-6)
    np.testing.assert_allclose(km.predict(first.model, test), km.predict(second.model, test),
                               atol=1e-6)
    other = km.train_model(fit, val, dataclasses.replace(hp, seed=hp.seed + 1))
    assert not np.allclose(km.predict(first.model, test), km.predict(other.model, test))


# --- export -------------------------------------------------------------------------------------

def _example(data: dict, row: int, side: bool) -> bytes:
    feature = {
        fk.USER_ID: tf.train.Feature(int64_list=tf.train.Int64List(value=[data[fk.USER_ID][row]])),
        fk.MOVIE_ID: tf.train.Feature(
            int64_list=tf.train.Int64List(value=[data[fk.MOVIE_ID][row]])),
        fk.RATING: tf.train.Feature(float_list=tf.train.FloatList(value=[data[fk.RATING][row]])),
        fk.TIMESTAMP: tf.train.Feature(
            int64_list=tf.train.Int64List(value=[data[fk.TIMESTAMP][row]])),
    }
    if side:
        for key in (fk.GENDER, fk.ZIP_PREFIX, fk.OCCUPATION):
            feature[key] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[data[key][row]]))
        for key in (fk.AGE, fk.YEAR):
            feature[key] = tf.train.Feature(int64_list=tf.train.Int64List(value=[data[key][row]]))
        feature[fk.GENRES] = tf.train.Feature(
            bytes_list=tf.train.BytesList(value=list(data[fk.GENRES][row])))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    export_dir = km.export_saved_model(trained.model, str(tmp_path_factory.mktemp("export")))
    return tf.saved_model.load(export_dir)


def _rated_by(fit: dict, val: dict, vocab) -> dict:
    """Known user id -> set of known movie ids they rated in the train split (fit + val)."""
    rated = {}
    for part in (fit, val):
        for user, movie in zip(part[fk.USER_ID], part[fk.MOVIE_ID]):
            if vocab.user_index([user])[0] and vocab.movie_index([movie])[0]:
                rated.setdefault(int(user), set()).add(int(movie))
    return rated


def _cold_start_order(fit: dict, val: dict, vocab) -> np.ndarray:
    """Movie ids by damped mean rating, best first (ties: lower id first), in plain NumPy."""
    users = np.concatenate([fit[fk.USER_ID], val[fk.USER_ID]])
    movies = np.concatenate([fit[fk.MOVIE_ID], val[fk.MOVIE_ID]])
    ratings = np.concatenate([fit[fk.RATING], val[fk.RATING]]).astype(np.float64)
    keep = (vocab.user_index(users) > 0) & (vocab.movie_index(movies) > 0)
    movies, ratings = movies[keep], ratings[keep]
    prior, mean = km.COLD_START_PRIOR_RATINGS, ratings.mean()
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
        predicted = km.predict(model, {fk.USER_ID: np.full(len(candidates), user),
                                       fk.MOVIE_ID: candidates})
        np.testing.assert_allclose(ratings[row], np.sort(predicted)[::-1][:k], atol=1e-5)
        assert set(ids[row]) <= set(candidates) and len(set(ids[row])) == k
        np.testing.assert_allclose(
            ratings[row], km.predict(model, {fk.USER_ID: np.full(k, user),
                                             fk.MOVIE_ID: ids[row]}), atol=1e-5)
    # An unknown user: the popular, well-rated movies, with the model's (fallback) ratings.
    np.testing.assert_array_equal(ids[-1], _cold_start_order(fit, val, vocab)[:k])
    np.testing.assert_allclose(ratings[-1], km.predict(
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
    test = dict(splits[2])
    for key in (fk.USER_ID, fk.MOVIE_ID):  # one unknown user and one unknown movie
        test[key] = test[key].copy()
    test[fk.USER_ID][0], test[fk.MOVIE_ID][1] = UNKNOWN_USER, UNKNOWN_MOVIE
    expected = km.predict(trained.model, test)

    export_dir = km.export_saved_model(trained.model, str(tmp_path / "model"))
    loaded = tf.saved_model.load(export_dir)
    assert set(loaded.signatures) == {km.SERVING_SIGNATURE, km.PREDICT_SIGNATURE,
                                      fk.RECOMMEND_SIGNATURE}

    by_ids = loaded.signatures[km.PREDICT_SIGNATURE](
        user_id=tf.constant(test[fk.USER_ID]), movie_id=tf.constant(test[fk.MOVIE_ID]))
    assert by_ids[km.OUTPUT_KEY].dtype == tf.float32
    np.testing.assert_allclose(by_ids[km.OUTPUT_KEY].numpy(), expected, atol=1e-5)

    rows = range(len(test[fk.RATING]))
    serve = loaded.signatures[km.SERVING_SIGNATURE]
    for side in (True, False):
        examples = tf.constant([_example(test, i, side) for i in rows])
        out = serve(examples=examples)[km.OUTPUT_KEY].numpy()
        assert out.shape == expected.shape
        np.testing.assert_allclose(out, expected, atol=1e-5)


def test_movie_catalog_round_trips_through_the_saved_model_folder(tmp_path):
    catalog = {fk.MOVIE_ID: np.array([3, 12], np.int64),
               fk.TITLE: ["Misérables, Les (1995)", 'Odd\ttitle with "quotes"'],
               fk.GENRES: [("Drama", "Musical"), ()]}
    path = km.write_movie_catalog(catalog, str(tmp_path))
    assert path == str(tmp_path / fk.SAVED_MODEL_EXTRA_DIR / fk.MOVIE_CATALOG_FILE)
    with open(path, encoding="utf-8") as f:
        assert f.read().splitlines() == ["movie_id\ttitle\tgenres",
                                         "3\tMisérables, Les (1995)\tDrama|Musical",
                                         '12\tOdd title with "quotes"\t']
    assert km.read_movie_catalog(str(tmp_path)) == {
        3: ("Misérables, Les (1995)", ("Drama", "Musical")),
        12: ('Odd title with "quotes"', ())}
    assert km.read_movie_catalog(str(tmp_path / "elsewhere")) is None
