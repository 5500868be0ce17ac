"""Warm start: a new model initialised from the blessed one, or a cold start and why.

Every exported model records what a later warm start needs in its `assets.extra/`
(`RECORD_FILE`: hyperparameters, model code fingerprint, warm starts in a row and members;
`VOCABULARY_FILE`: user and movie ids and
each side feature's values). The weights are read back from the SavedModel's own checkpoint by
their object paths (`model/members/<i>/factorization/user_factors`, ...), so nothing is stored
twice. `decide` says warm or cold (and why); `initialise` copies the base's rows into freshly
built members by id (shrunk towards the fresh rows by `HParams.warm_shrink`), so users, movies
and side-feature values new in the window keep their fresh rows.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
from dataclasses import dataclass, field
from typing import Dict, Mapping, Optional, Tuple

import numpy as np
import tensorflow as tf
from absl import logging
from tensorflow.core.protobuf import trackable_object_graph_pb2

from kiko.model import data
from kiko.model import features as fk
from kiko.model.hparams import HParams
from kiko.model.member import MF, Member

WARM_START_KEY = "warm_start"  # Trainer custom_config key holding WarmStartOptions.to_dict()
MODEL_CODE_KEY = "model_code"  # Trainer custom_config key: the fingerprint of the model's code
START_WARM = "warm"
START_COLD = "cold"
MEMBER_WARM = "warm"
MEMBER_FRESH = "fresh"
RECORD_FILE = "warm_start.json"
VOCABULARY_FILE = "warm_start_vocabularies.npz"
RECORD_FORMAT = 1
_USER, _MOVIE = "user", "movie"


@dataclass(frozen=True)
class WarmStartOptions:
    """When to train cold although a blessed model exists: always (``cold``), every
    ``cold_every``-th training (0 = never), or when the window keeps less than ``min_kept`` of
    the base's users or movies."""

    cold: bool = False
    cold_every: int = 0
    min_kept: float = 0.5

    def __post_init__(self) -> None:
        if not isinstance(self.cold, bool):
            raise ValueError(f"warm start: cold must be true or false, got {self.cold!r}")
        if (not isinstance(self.cold_every, int) or isinstance(self.cold_every, bool)
                or self.cold_every < 0):
            raise ValueError(f"warm start: cold_every must be an integer >= 0, "
                             f"got {self.cold_every!r}")
        if (not isinstance(self.min_kept, (int, float)) or isinstance(self.min_kept, bool)
                or not 0 <= self.min_kept <= 1):
            raise ValueError(f"warm start: min_kept must be a number in [0, 1], "
                             f"got {self.min_kept!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Optional[Mapping]) -> "WarmStartOptions":
        """The options of a mapping (None: the defaults); an unknown key is an error."""
        values = dict(values or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"warm start: unknown option {unknown[0]!r}; known: {sorted(known)}")
        return cls(**values)


@dataclass(frozen=True)
class Record:
    """What a model records for warm starts from it."""

    hparams: dict
    model_code: Optional[str]
    warm_chain: int  # warm starts in a row ending with this model (0: trained cold)
    members: Tuple[str, ...]  # in the model's order (the checkpoint's member index)
    user_ids: np.ndarray
    movie_ids: np.ndarray
    # feature name -> its sorted values (the SideFeatures table's order within the feature)
    user_side: Dict[str, np.ndarray] = field(default_factory=dict)
    movie_side: Dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class Base:
    """The model to start from: ``path`` None when there is none; ``record`` None when it has
    no record or cannot be read (``error`` says why, naming the file)."""

    path: Optional[str] = None
    record: Optional[Record] = None
    error: Optional[str] = None


@dataclass(frozen=True)
class Decision:
    mode: str  # START_WARM or START_COLD
    reason: str
    base_model: Optional[str] = None
    warm_chain: int = 0
    kept_users: Optional[float] = None
    kept_movies: Optional[float] = None
    new_users: Optional[int] = None
    new_movies: Optional[int] = None

    def start_block(self, member_starts: Mapping[str, str]) -> dict:
        """metrics.json's "start" entry; ``member_starts``: member -> MEMBER_WARM/FRESH."""
        block = dataclasses.asdict(self)
        block["members"] = dict(member_starts)
        return block


def _side_values(table: data.SideTable, use_side_features: bool) -> Dict[str, np.ndarray]:
    if not use_side_features:
        return {}
    return {name: feature.vocabulary for name, feature in table.features.items()
            if name not in fk.NOT_MODEL_FEATURES}


def side_values(examples: data.Examples, use_side_features: bool) -> Tuple[dict, dict]:
    """(user, movie) feature -> values, in the order of the SideFeatures tables that
    `vocabulary.build_vocabularies` makes of ``examples``."""
    return (_side_values(examples.users, use_side_features),
            _side_values(examples.movies, use_side_features))


def make_record(hparams: HParams, model_code: Optional[str], warm_chain: int, members, vocab,
                fit: data.Examples) -> Record:
    """The record of a model trained on ``fit`` with vocabularies ``vocab``."""
    user_side, movie_side = side_values(fit, hparams.use_side_features)
    return Record(hparams.to_dict(), model_code, warm_chain, tuple(members),
                  np.asarray(vocab.user_ids),
                  np.asarray(vocab.movie_ids), user_side, movie_side)


def _array(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values)
    return values.astype(bytes) if values.dtype == object else values


def write_record(export_dir: str, record: Record) -> None:
    """Write the record into the SavedModel's `assets.extra/`."""
    folder = os.path.join(export_dir, fk.SAVED_MODEL_EXTRA_DIR)
    tf.io.gfile.makedirs(folder)
    meta = {"format": RECORD_FORMAT, "hparams": record.hparams, "model_code": record.model_code,
            "warm_chain": record.warm_chain, "members": list(record.members),
            "user_side": sorted(record.user_side),
            "movie_side": sorted(record.movie_side)}
    with tf.io.gfile.GFile(os.path.join(folder, RECORD_FILE), "w") as f:
        f.write(json.dumps(meta, indent=2))
    arrays = {"user_ids": record.user_ids, "movie_ids": record.movie_ids}
    for kind, side in ((_USER, record.user_side), (_MOVIE, record.movie_side)):
        arrays.update({f"{kind}_side.{name}": _array(v) for name, v in side.items()})
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    with tf.io.gfile.GFile(os.path.join(folder, VOCABULARY_FILE), "wb") as f:
        f.write(buffer.getvalue())


def _values(stored: np.ndarray) -> np.ndarray:
    return stored.astype(object) if stored.dtype.kind == "S" else stored


def read_record(export_dir: str) -> Optional[Record]:
    """The record of a SavedModel; None when it has none. Raises ValueError naming the file
    when it cannot be read."""
    folder = os.path.join(export_dir, fk.SAVED_MODEL_EXTRA_DIR)
    meta_path, arrays_path = (os.path.join(folder, RECORD_FILE),
                              os.path.join(folder, VOCABULARY_FILE))
    if not tf.io.gfile.exists(meta_path):
        return None
    try:
        with tf.io.gfile.GFile(meta_path, "r") as f:
            meta = json.loads(f.read())
        if meta.get("format") != RECORD_FORMAT:
            raise ValueError(f"format {meta.get('format')!r}, expected {RECORD_FORMAT}")
        names = {_USER: meta["user_side"], _MOVIE: meta["movie_side"]}
        record_fields = (meta["hparams"], meta["model_code"], int(meta["warm_chain"]),
                         tuple(meta["members"]))
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"{meta_path}: {error}") from None
    try:
        with tf.io.gfile.GFile(arrays_path, "rb") as f, np.load(io.BytesIO(f.read()),
                                                               allow_pickle=False) as arrays:
            sides = {kind: {name: _values(arrays[f"{kind}_side.{name}"]) for name in names[kind]}
                     for kind in (_USER, _MOVIE)}
            user_ids, movie_ids = arrays["user_ids"], arrays["movie_ids"]
    except (OSError, ValueError, KeyError, tf.errors.OpError) as error:
        raise ValueError(f"{arrays_path}: {error}") from None
    return Record(*record_fields, user_ids, movie_ids, sides[_USER], sides[_MOVIE])


def _checkpoint_prefix(export_dir: str) -> str:
    return os.path.join(export_dir, "variables", "variables")


def read_base(path: Optional[str]) -> Base:
    """The base model at ``path`` (TFX's `fn_args.base_model`; None when there is none)."""
    if not path:
        return Base()
    try:
        record = read_record(path)
        if record is not None:
            tf.train.load_checkpoint(_checkpoint_prefix(path))
    except ValueError as error:
        return Base(path, None, str(error))
    except (tf.errors.OpError, OSError) as error:
        message = getattr(error, "message", None) or str(error)
        return Base(path, None, f"{_checkpoint_prefix(path)}: {message.splitlines()[0]}")
    return Base(path, record)


def _share(kept: int, total: int) -> float:
    return kept / total if total else 1.0


# Hyperparameters of how a warm start begins, not of the model: a change keeps the base usable.
WARM_ONLY_HPARAMS = ("warm_patience", "warm_shrink")


def _changed_hparams(old: Mapping, new: Mapping) -> list:
    return [f"{name} {old.get(name, 'unset')} -> {new.get(name, 'unset')}"
            for name in sorted(set(old) | set(new))
            if old.get(name) != new.get(name) and name not in WARM_ONLY_HPARAMS]


def decide(options: WarmStartOptions, hparams: HParams, model_code: Optional[str], base: Base,
           user_ids: np.ndarray, movie_ids: np.ndarray) -> Decision:
    """Warm or cold start (and why) of a model of ``hparams`` and ``model_code`` on a window
    whose fit part has ``user_ids`` and ``movie_ids``."""
    def cold(reason: str, **stats) -> Decision:
        return Decision(START_COLD, reason, base.path, 0, **stats)

    if options.cold:
        return cold("--cold given")
    if base.path is None:
        return cold("no blessed model trained before this data")
    if base.error is not None:
        return cold(f"the blessed model cannot be read: {base.error}")
    record = base.record
    if record is None:
        return cold(f"the blessed model {base.path} has no warm-start record (made by older "
                    "code)")
    if record.model_code != model_code:
        return cold(f"model code changed: {record.model_code} -> {model_code}")
    changed = _changed_hparams(record.hparams, hparams.to_dict())
    if changed:
        return cold("hyperparameters changed: " + ", ".join(changed))
    kept_users = int(np.isin(record.user_ids, user_ids).sum())
    kept_movies = int(np.isin(record.movie_ids, movie_ids).sum())
    stats = dict(kept_users=_share(kept_users, len(record.user_ids)),
                 kept_movies=_share(kept_movies, len(record.movie_ids)),
                 new_users=int(len(user_ids) - np.isin(user_ids, record.user_ids).sum()),
                 new_movies=int(len(movie_ids) - np.isin(movie_ids, record.movie_ids).sum()))
    if options.cold_every and record.warm_chain + 1 >= options.cold_every:
        return cold(f"--cold-every {options.cold_every}: {record.warm_chain} warm starts in a "
                    "row before this one", **stats)
    if min(stats["kept_users"], stats["kept_movies"]) < options.min_kept:
        return cold(f"the window kept only {stats['kept_users']:.0%} of the blessed model's "
                    f"users ({kept_users:,} of {len(record.user_ids):,}) and "
                    f"{stats['kept_movies']:.0%} of its movies ({kept_movies:,} of "
                    f"{len(record.movie_ids):,}), below min_kept {options.min_kept:g}", **stats)
    return Decision(
        START_WARM,
        f"warm start from the blessed model {base.path}: kept {kept_users:,} of "
        f"{len(record.user_ids):,} users and {kept_movies:,} of {len(record.movie_ids):,} "
        f"movies; {stats['new_users']:,} new users, {stats['new_movies']:,} new movies",
        base.path, record.warm_chain + 1, **stats)


def log_decision(decision: Decision, base: Base) -> None:
    """The decision as one log line (a warning when the base could not be read)."""
    log = logging.warning if base.error is not None else logging.info
    log("starting %s: %s", decision.mode, decision.reason)


# Initialisation of fresh members from the base's checkpoint.


class BaseWeights:
    """The base SavedModel's variables, by object path (e.g. `members/0/autorec/encoder`)."""

    def __init__(self, export_dir: str):
        self._reader = tf.train.load_checkpoint(_checkpoint_prefix(export_dir))
        self._graph = trackable_object_graph_pb2.TrackableObjectGraph.FromString(
            self._reader.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))

    def get(self, path: str) -> Optional[np.ndarray]:
        """The value of the variable at ``path`` below the served model; None when absent."""
        node = self._graph.nodes[0]
        for name in ("model/" + path).split("/"):
            child = next((c.node_id for c in node.children if c.local_name == name), None)
            if child is None:
                return None
            node = self._graph.nodes[child]
        keys = [a.checkpoint_key for a in node.attributes if a.name == "VARIABLE_VALUE"]
        return self._reader.get_tensor(keys[0]) if keys else None


def _rows(base_ids: np.ndarray, ids: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(rows in the new table, rows in the base table) of the ids both know (row = index)."""
    ids = np.asarray(ids, np.int64)
    position = np.minimum(np.searchsorted(ids, base_ids), max(len(ids) - 1, 0))
    known = (ids[position] == base_ids) if len(ids) else np.zeros(len(base_ids), bool)
    return position[known] + 1, np.flatnonzero(known) + 1


def _copy(variable: tf.Variable, new_rows: np.ndarray, base: Optional[np.ndarray],
          base_rows: np.ndarray, shrink: float) -> None:
    """Rows ``new_rows`` of ``variable`` := shrink x the base's ``base_rows`` + (1 - shrink) x
    their fresh values."""
    if base is None:
        raise ValueError(f"the blessed model has no weights for {variable.name}")
    value = variable.numpy()
    value[new_rows] = shrink * base[base_rows] + (1 - shrink) * value[new_rows]
    variable.assign(value)


def _assign(variable: tf.Variable, base: Optional[np.ndarray], shrink: float) -> None:
    """``variable`` := shrink x the base's value + (1 - shrink) x its fresh value."""
    if base is None:
        raise ValueError(f"the blessed model has no weights for {variable.name}")
    variable.assign(shrink * base + (1 - shrink) * variable.numpy())


def _side_rows(layer, values: Mapping[str, np.ndarray], base_values: Mapping[str, np.ndarray]):
    """(rows in the new side table, rows in the base's) of the (feature, value)s both know."""
    new_rows, base_rows = [], []
    new_offsets = dict(zip(layer.names, np.cumsum([0] + [layer.sizes[n] for n in layer.names])))
    base_names = sorted(base_values)
    base_offsets = dict(zip(base_names, np.cumsum([0] + [len(base_values[n])
                                                         for n in base_names])))
    for name in layer.names:
        if name not in base_values:
            continue
        where = {value: i for i, value in enumerate(values[name].tolist())}
        for i, value in enumerate(base_values[name].tolist()):
            if value in where:
                new_rows.append(new_offsets[name] + where[value])
                base_rows.append(base_offsets[name] + i)
    return np.asarray(new_rows, np.int64), np.asarray(base_rows, np.int64)


def initialise(member: Member, weights: BaseWeights, record: Record, vocab,
               values: Tuple[dict, dict], shrink: float = 1.0) -> None:
    """Copy the base's rows of ``member`` (by user id, movie id, side-feature value) into it;
    rows the base lacks keep their fresh values. ``values``: this window's `side_values`.
    ``shrink`` < 1 starts known rows between the base's and fresh ones (`HParams.warm_shrink`)."""
    prefix = f"members/{record.members.index(member.name)}"
    users = _rows(record.user_ids, vocab.user_ids)
    movies = _rows(record.movie_ids, vocab.movie_ids)
    if member.name == MF:
        layer = member.factorization
        for name, rows in (("user_factors", users), ("user_bias", users),
                           ("movie_factors", movies), ("movie_bias", movies)):
            _copy(getattr(layer, name), rows[0], weights.get(f"{prefix}/factorization/{name}"),
                  rows[1], shrink)
        _assign(layer.global_mean, weights.get(f"{prefix}/factorization/global_mean"), shrink)
        for attribute, new_values, base_values in (("user_side", values[0], record.user_side),
                                                   ("movie_side", values[1], record.movie_side)):
            side = getattr(layer, attribute)
            if side is None or not base_values:
                continue
            rows = _side_rows(side, new_values, base_values)
            for name in ("vectors", "biases"):
                _copy(getattr(side, name), rows[0],
                      weights.get(f"{prefix}/factorization/{attribute}/{name}"), rows[1], shrink)
        return
    autorec = member.autorec
    columns = users if member.item_based else movies
    for name in ("encoder", "decoder", "decoder_bias"):
        _copy(getattr(autorec, name), columns[0], weights.get(f"{prefix}/autorec/{name}"),
              columns[1], shrink)
    _assign(autorec.encoder_bias, weights.get(f"{prefix}/autorec/encoder_bias"), shrink)
