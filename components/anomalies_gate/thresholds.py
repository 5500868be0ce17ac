"""The drift thresholds of the data gate and what it does on drift: no TensorFlow here, so that
command-line parsers can validate them at once."""

import dataclasses
import json

# What the gate does with a span whose measures exceed their thresholds.
ON_DRIFT_STOP = "stop"  # the run fails before training, naming each measure
ON_DRIFT_WARN = "warn"  # the run goes on; the verdict says the span drifted
ON_DRIFT_CHOICES = (ON_DRIFT_STOP, ON_DRIFT_WARN)


@dataclasses.dataclass(frozen=True)
class DriftThresholds:
    """Where a span counts as drifted from the previous validated span.

    `rating_jsd`: the largest Jensen-Shannon divergence of the rating distribution (TFDV's).
    `unseen_users` / `unseen_movies`: the largest share of the span's distinct users (movies)
    that no earlier span had. `min_count_ratio` / `max_count_ratio`: the range of the span's
    example count over the previous span's.
    """

    rating_jsd: float
    unseen_users: float
    unseen_movies: float
    min_count_ratio: float
    max_count_ratio: float

    def __post_init__(self):
        for name in ("rating_jsd", "unseen_users", "unseen_movies"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"drift threshold {name} must be in [0, 1], "
                                 f"got {getattr(self, name)}")
        if not 0 <= self.min_count_ratio <= 1 <= self.max_count_ratio:
            raise ValueError("drift count ratios need min <= 1 <= max, got "
                             f"{self.min_count_ratio}..{self.max_count_ratio}")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "DriftThresholds":
        return cls(**json.loads(text))
