"""The Trainer's run_fn on a small generated data set, called as TFX's generic executor would."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from tfx import v1 as tfx
from tfx.components.util import tfxio_utils
from tfx.types import artifact_utils

from kiko.data.movielens.reading import read_side_records
from kiko.data.movielens.source import resolve_source
from kiko.model import data
from kiko.model import features as fk
from kiko.model import trainer, warm_start
from kiko.model.catalog import read_movie_catalog
from kiko.model.hparams import TRAINER_HPARAMS_KEY
from kiko.model.member import ITEM_AUTOREC, MF, USER_AUTOREC
from tests.conftest import SCHEMA_PATH

FAST = {"epochs": 3, "autorec_epochs": 2, "embedding_dim": 8, "autorec_units": 16}


def _fn_args(examples, out_dir, hparams, base_model=None,
             warm=None) -> tfx.components.FnArgs:
    def files(split):
        return [os.path.join(artifact_utils.get_split_uri([examples], split), "*")]
    return tfx.components.FnArgs(
        train_files=files(fk.TRAIN_SPLIT), eval_files=files(fk.EVAL_SPLIT),
        data_accessor=tfx.components.DataAccessor(
            tf_dataset_factory=None,
            record_batch_factory=tfxio_utils.get_record_batch_factory_from_artifact(
                [examples], ["kiko-test"]),
            data_view_decode_fn=None),
        schema_path=SCHEMA_PATH,
        serving_model_dir=os.path.join(out_dir, "serving"),
        model_run_dir=os.path.join(out_dir, "run"), base_model=base_model,
        custom_config={TRAINER_HPARAMS_KEY: hparams, "model_code": "code-1",
                       warm_start.WARM_START_KEY: warm})


@pytest.fixture(scope="module")
def trained(small_examples, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("trained"))
    trainer.run_fn(_fn_args(small_examples, out, FAST))
    return out


def _ratings(examples, split) -> np.ndarray:
    """The labels of one split of an Examples artifact, as ExampleGen wrote them."""
    files = tf.io.gfile.glob(os.path.join(artifact_utils.get_split_uri([examples], split), "*"))
    labels = []
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
        feature = tf.train.Example.FromString(record.numpy()).features.feature[fk.LABEL_KEY]
        (value,) = feature.float_list.value or feature.int64_list.value
        labels.append(value)
    return np.asarray(labels, dtype=np.float64)


def test_run_fn_writes_metrics_file_with_epochs_members_and_final_scores(trained,
                                                                        small_examples):
    with open(os.path.join(trained, "run", fk.METRICS_FILE)) as f:
        report = json.load(f)
    assert report["hparams"]["embedding_dim"] == FAST["embedding_dim"]
    names = [member["name"] for member in report["members"]]
    assert names == [MF, ITEM_AUTOREC, USER_AUTOREC]
    assert report["skipped_members"] == {}
    assert report["blend"]["names"] == names
    assert len(report["blend"]["weights"]) == len(names)
    assert not {"blend_weights", "best_epoch", "autorec_best_epoch"} & set(report)  # one shape
    for member in report["members"]:
        epochs = [h for h in report["history"] if h["stage"] == member["name"]]
        assert len(epochs) == member["epochs_run"] <= FAST[
            "epochs" if member["name"] == MF else "autorec_epochs"]
        assert 1 <= member["best_epoch"] <= member["epochs_run"]
        assert member["val_rmse"] == epochs[member["best_epoch"] - 1]["val_rmse"]
        for entry in epochs:
            for key in ("epoch", "train_loss", "val_loss", "val_rmse", "val_mae"):
                assert np.isfinite(entry[key]), (key, entry)
    for split in ("train", "validation", "eval"):
        scores = report["final"][split]
        assert scores["examples"] > 0
        assert scores["rmse"] == pytest.approx(np.sqrt(scores["mse"]))
        assert 0 < scores["mae"] <= scores["rmse"]
    # Scored on exactly the eval split; fit and validation together are the train split.
    train, held_out = (_ratings(small_examples, split)
                       for split in (fk.TRAIN_SPLIT, fk.EVAL_SPLIT))
    final = report["final"]
    assert final["eval"]["examples"] == len(held_out)
    assert final["train"]["examples"] + final["validation"]["examples"] == len(train)
    # Better on eval than predicting the train split's mean rating for every example.
    global_mean_rmse = np.sqrt(np.mean((held_out - train.mean()) ** 2))
    assert final["eval"]["rmse"] < global_mean_rmse


def test_tensorboard_logs_every_epoch_of_every_member(trained):
    with open(os.path.join(trained, "run", fk.METRICS_FILE)) as f:
        report = json.load(f)
    for member in report["members"]:
        events = tf.io.gfile.glob(os.path.join(trained, "run", member["name"], "validation",
                                               "events.out.tfevents.*"))
        assert len(events) == 1, member["name"]
        steps = {event.step for event in tf.compat.v1.train.summary_iterator(events[0])
                 for value in event.summary.value if value.tag == "epoch_rmse"}
        assert steps == set(range(member["epochs_run"]))


def test_exported_model_serves_examples_and_ids(trained, small_examples):
    loaded = tf.saved_model.load(os.path.join(trained, "serving"))
    assert {"serving_default", "predict_ratings"} <= set(loaded.signatures)
    files = tf.io.gfile.glob(os.path.join(
        artifact_utils.get_split_uri([small_examples], fk.EVAL_SPLIT), "*"))
    serialized = [r.numpy() for r in
                  tf.data.TFRecordDataset(files, compression_type="GZIP").take(64)]
    by_example = loaded.signatures["serving_default"](
        examples=tf.constant(serialized))["rating"].numpy()
    parsed = [tf.train.Example.FromString(s).features.feature for s in serialized]
    users = tf.constant([f[fk.USER_ID].int64_list.value[0] for f in parsed], tf.int64)
    movies = tf.constant([f[fk.MOVIE_ID].int64_list.value[0] for f in parsed], tf.int64)
    by_id = loaded.signatures["predict_ratings"](user_id=users, movie_id=movies)["rating"]
    np.testing.assert_allclose(by_example, by_id.numpy(), rtol=1e-5)
    assert np.all((by_example >= 1) & (by_example <= 5))


def test_saved_model_carries_the_catalog_of_training_movies(trained, small_movielens,
                                                           small_examples):
    catalog = read_movie_catalog(os.path.join(trained, "serving"))
    movies = read_side_records(resolve_source(small_movielens.out_dir), "movies")
    train = data.load_examples([os.path.join(
        artifact_utils.get_split_uri([small_examples], fk.TRAIN_SPLIT), "*")],
        data.read_schema(SCHEMA_PATH)).columns
    assert sorted(catalog) == sorted(set(train[fk.MOVIE_ID].tolist()))
    for movie_id, (title, genres) in catalog.items():
        assert (title, genres) == (movies[movie_id].title, tuple(movies[movie_id].genres))
    loaded = tf.saved_model.load(os.path.join(trained, "serving"))
    out = loaded.signatures[fk.RECOMMEND_SIGNATURE](
        user_id=tf.constant([int(train[fk.USER_ID][0])], tf.int64), k=tf.constant(3))
    assert set(out[fk.RECOMMENDED_MOVIE_IDS].numpy()[0]) <= set(catalog)


def test_unknown_hyperparameter_fails_loudly(small_examples, tmp_path):
    with pytest.raises(ValueError, match="unknown hyperparameter 'embeding_dim'"):
        trainer.run_fn(_fn_args(small_examples, str(tmp_path), {"embeding_dim": 8}))


def test_a_cold_run_records_why_and_the_next_run_warm_starts_from_it(trained, small_examples,
                                                                     tmp_path):
    with open(os.path.join(trained, "run", fk.METRICS_FILE)) as f:
        start = json.load(f)["start"]
    assert start == {"mode": "cold", "reason": "no blessed model trained before this data",
                     "base_model": None, "warm_chain": 0, "kept_users": None,
                     "kept_movies": None, "new_users": None, "new_movies": None,
                     "members": {MF: "fresh", ITEM_AUTOREC: "fresh", USER_AUTOREC: "fresh"}}
    base = os.path.join(trained, "serving")
    record = warm_start.read_record(base)
    assert (record.model_code, record.warm_chain, record.members) == (
        "code-1", 0, (MF, ITEM_AUTOREC, USER_AUTOREC))

    trainer.run_fn(_fn_args(small_examples, str(tmp_path), FAST, base_model=base,
                            warm={"cold_every": 3}))
    with open(os.path.join(tmp_path, "run", fk.METRICS_FILE)) as f:
        start = json.load(f)["start"]
    assert (start["mode"], start["base_model"], start["warm_chain"]) == ("warm", base, 1)
    assert (start["kept_users"], start["kept_movies"], start["new_users"]) == (1.0, 1.0, 0)
    assert start["reason"].startswith(f"warm start from the blessed model {base}: kept ")
    assert start["members"] == {MF: "warm", ITEM_AUTOREC: "warm", USER_AUTOREC: "warm"}
    assert warm_start.read_record(os.path.join(tmp_path, "serving")).warm_chain == 1
