"""The one home of the rating model's hyperparameters, with the defaults that meet the targets.

The defaults were chosen on validation slices carved from the training split of generated
ML-1M-size data and of MovieLens-100K (see benchmarks/model_quality.py); the same defaults serve
both. Overrides come from the pipeline config or the runner's flags as a mapping of strings or
typed values (`HParams.with_overrides`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

_TRUE = frozenset(("1", "true", "yes", "on"))
_FALSE = frozenset(("0", "false", "no", "off"))


@dataclass(frozen=True)
class HParams:
    """Hyperparameters of the blended rating model (biased MF + item and user AutoRec)."""

    # Biased matrix factorisation with side features (trained first; the fallback for
    # unknown users and movies).
    embedding_dim: int = 32
    learning_rate: float = 4e-3
    lr_decay: float = 0.95  # multiplies the learning rate after every epoch
    batch_size: int = 8192
    epochs: int = 60  # most epochs; early stopping usually ends sooner
    l2_factors: float = 0.05  # per-example L2 on the user and movie factors (Surprise-SVD style)
    l2_biases: float = 0.01  # per-example L2 on the user and movie biases
    l2_side: float = 0.05  # per-example L2 on the side-feature vectors and biases
    use_side_features: bool = True  # use the data's user and movie features when it has them
    # Early stopping of every member: stop after `patience` epochs without a validation-RMSE
    # gain of at least `min_delta`; the best epoch's weights are kept.
    patience: int = 3
    min_delta: float = 1e-4
    # The patience of a member warm-started from the blessed model (see warm_start.py): it
    # starts near its optimum, so the first epoch without gain ends it.
    warm_patience: int = 1
    # Shrink and perturb (Ash & Adams, 2020) of a warm start: a known row starts at
    # `warm_shrink` x the blessed model's row + (1 - `warm_shrink`) x a fresh row (1: an exact
    # copy). A plain copy keeps the base's fit to older data and ends worse than a cold retrain;
    # halfway keeps what the base learnt and lets the new window reshape it
    # (benchmarks/README.md, "Warm start").
    warm_shrink: float = 0.5

    # The blend: AutoRecs trained after the MF, blended on the validation part.
    blend: bool = True
    # Most training ratings (the fit part) for which the AutoRecs are trained; above it the
    # model is the MF alone (0: no limit). AutoRec epochs cost far more per rating than the
    # MF's and early stopping needs more epochs as users and movies grow (benchmarks/README.md
    # has the measurements and the small gain over the MF), so past this size the Trainer's
    # cost would grow much faster than the data.
    autorec_max_ratings: int = 2_000_000
    # Both AutoRecs: hidden units, most epochs, rows (movies, or users for U-AutoRec) and most
    # ratings per step.
    autorec_units: int = 500
    autorec_epochs: int = 100
    autorec_batch_size: int = 256
    autorec_batch_ratings: int = 131072
    # Item-based AutoRec (I-AutoRec).
    autorec_learning_rate: float = 5e-3
    autorec_lr_decay: float = 0.95
    autorec_l2: float = 0.3  # per-entry L2 on the encoder and decoder rows of its columns
    # User-based AutoRec (U-AutoRec).
    user_autorec: bool = True
    user_autorec_units: int = 200
    user_autorec_learning_rate: float = 0.02
    user_autorec_lr_decay: float = 0.95
    user_autorec_l2: float = 0.5
    # Blend weights that vary with the user's and the movie's number of training ratings.
    blend_by_support: bool = True
    calibrate: bool = True  # fit a piecewise-linear calibration of the blend on validation

    validation_fraction: float = 0.05  # share of the train split carved out for validation
    seed: int = 42

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            expected = _field_type(field)
            if expected is bool:
                ok = isinstance(value, bool)
            elif expected is int:
                ok = isinstance(value, int) and not isinstance(value, bool)
            else:
                ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not ok:
                raise ValueError(f"HParams.{field.name} must be {expected.__name__}, "
                                 f"got {value!r}")
        positive = ("embedding_dim", "learning_rate", "batch_size", "epochs", "autorec_units",
                    "autorec_learning_rate", "autorec_batch_size", "autorec_batch_ratings",
                    "autorec_epochs", "user_autorec_units", "user_autorec_learning_rate")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"HParams.{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("l2_factors", "l2_biases", "l2_side", "autorec_l2", "user_autorec_l2",
                     "patience", "warm_patience", "min_delta", "seed", "autorec_max_ratings"):
            if getattr(self, name) < 0:
                raise ValueError(f"HParams.{name} must be >= 0, got {getattr(self, name)!r}")
        for name in ("lr_decay", "autorec_lr_decay", "user_autorec_lr_decay"):
            if not 0 < getattr(self, name) <= 1:
                raise ValueError(f"HParams.{name} must be in (0, 1], got {getattr(self, name)!r}")
        if not 0 < self.warm_shrink <= 1:
            raise ValueError(f"HParams.warm_shrink must be in (0, 1], got {self.warm_shrink!r}")
        if not 0 < self.validation_fraction < 1:
            raise ValueError(
                f"HParams.validation_fraction must be in (0, 1), got {self.validation_fraction!r}")

    def with_overrides(self, overrides: Mapping[str, Any] | None) -> "HParams":
        """A copy with ``overrides`` applied; strings (CLI/JSON) are converted to field types.

        Raises ValueError naming an unknown key or a value that does not convert.
        """
        if not overrides:
            return self
        fields = {f.name: f for f in dataclasses.fields(self)}
        values = {}
        for key, value in overrides.items():
            if key not in fields:
                raise ValueError(f"unknown hyperparameter {key!r}; known: {sorted(fields)}")
            values[key] = _convert(key, _field_type(fields[key]), value)
        return dataclasses.replace(self, **values)

    def to_dict(self) -> dict:
        """The hyperparameters as a JSON-ready dict."""
        return dataclasses.asdict(self)


def _field_type(field: dataclasses.Field) -> type:
    annotation = field.type if isinstance(field.type, str) else field.type.__name__
    return {"int": int, "float": float, "bool": bool}[annotation]


def _convert(key: str, kind: type, value: Any) -> Any:
    """``value`` as ``kind``; a string is parsed, a bool is never taken for a number."""
    if isinstance(value, str):
        text = value.strip()
        if kind is bool:
            if text.lower() in _TRUE:
                return True
            if text.lower() in _FALSE:
                return False
            raise ValueError(f"hyperparameter {key}={value!r} is not a boolean")
        try:
            return kind(text) if kind is float else int(text, 10)
        except ValueError:
            raise ValueError(f"hyperparameter {key}={value!r} is not {kind.__name__}") from None
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise ValueError(f"hyperparameter {key}={value!r} is not a boolean")
    if isinstance(value, bool):
        raise ValueError(f"hyperparameter {key}={value!r} is not {kind.__name__}")
    if kind is int:
        if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
            return int(value)
        raise ValueError(f"hyperparameter {key}={value!r} is not an int")
    if isinstance(value, (int, float)):
        return float(value)
    raise ValueError(f"hyperparameter {key}={value!r} is not {kind.__name__}")


TRAINER_HPARAMS_KEY = "hparams"  # key of the Trainer custom_config entry holding overrides
