"""What a generation wrote: `GenerationReport` (``generator.json``), its loader and summary."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from kiko.data.movielens import LAYOUTS
from kiko.data.synthetic.config import GeneratorConfig

GENERATOR_VERSION = 2
REPORT_FILE = "generator.json"


@dataclass(frozen=True)
class GenerationReport:
    """What `generate` wrote and the ground truth needed to judge models trained on it.

    ``noise_floor_rmse``/``noise_floor_mae`` are those of the Bayes-optimal predictor
    E[rating | user, movie] over the generated ratings; ``noise_floor_rmse_expected`` is its
    population RMSE sqrt(mean Var(rating | mean)); ``latent_mean_rmse`` is the RMSE of the
    undiscretized latent mean clipped to [1, 5], ``global_mean_rmse`` that of the mean rating.
    ``thresholds`` and ``config.noise`` are all it takes to recompute the floor from the means.
    """

    config: GeneratorConfig
    out_dir: str
    ratings_path: str
    users_path: Optional[str]  # None when the layout has no users file
    movies_path: str
    n_ratings: int
    n_users: int
    n_movies: int
    n_movies_rated: int
    rating_histogram: dict  # rating (1.0 .. 5.0, or 0.5 .. 5.0 in half stars) -> count
    thresholds: tuple
    noise_floor_rmse: float
    noise_floor_mae: float
    noise_floor_rmse_expected: float
    latent_mean_rmse: float
    global_mean_rmse: float
    min_user_ratings: int
    max_user_ratings: int
    first_timestamp: int
    last_timestamp: int
    file_sizes: dict  # file name -> bytes, of every file written
    generator_version: int = GENERATOR_VERSION

    @property
    def rating_fractions(self) -> dict:
        """Rating -> fraction of all ratings."""
        return {k: v / self.n_ratings for k, v in self.rating_histogram.items()}

    def to_json_dict(self) -> dict:
        """JSON-ready form; file paths are stored relative to the output folder."""
        values = dataclasses.asdict(self)
        values["config"] = self.config.to_dict()
        values["rating_histogram"] = {f"{k:g}": v for k, v in self.rating_histogram.items()}
        values["thresholds"] = list(self.thresholds)
        del values["out_dir"]
        for key in ("ratings_path", "users_path", "movies_path"):
            if values[key] is not None:
                values[key] = os.path.basename(values[key])
        return values

    @classmethod
    def from_json_dict(cls, values: dict, out_dir: str | os.PathLike) -> "GenerationReport":
        """The inverse of `to_json_dict`, with paths resolved against ``out_dir``."""
        values = dict(values)
        out_dir = os.path.abspath(out_dir)
        values["config"] = GeneratorConfig.from_dict(values["config"])
        values["rating_histogram"] = {float(k): v
                                      for k, v in values["rating_histogram"].items()}
        values["thresholds"] = tuple(values["thresholds"])
        values["out_dir"] = out_dir
        for key in ("ratings_path", "users_path", "movies_path"):
            if values[key] is not None:
                values[key] = os.path.join(out_dir, values[key])
        return cls(**values)


def write_report(out: Path, report: GenerationReport) -> None:
    """Write ``generator.json`` atomically (a temporary file, then a rename)."""
    (out / REPORT_FILE).with_suffix(".tmp").write_text(
        json.dumps(report.to_json_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace((out / REPORT_FILE).with_suffix(".tmp"), out / REPORT_FILE)


def load_report(out_dir: str | os.PathLike) -> GenerationReport:
    """The report that `generate` wrote into ``out_dir`` (FileNotFoundError if none)."""
    path = Path(out_dir) / REPORT_FILE
    with open(path, encoding="utf-8") as f:
        return GenerationReport.from_json_dict(json.load(f), out_dir)


def summary(report: GenerationReport) -> str:
    """One paragraph describing a generation, noise floor included."""
    fractions = ", ".join(f"{k:g}: {100 * v:.2f} %" for k, v in report.rating_fractions.items())
    c = report.config
    layout = LAYOUTS[c.layout]
    return (
        f"Wrote {report.n_ratings:,} ratings by {report.n_users:,} users of "
        f"{report.n_movies_rated:,}/{report.n_movies:,} movies in the {layout.name} layout "
        f"({', '.join(sorted(report.file_sizes))}; {layout.ratings_encoding}) to "
        f"{report.out_dir} (seed {c.seed}, rank {c.rank}, noise {c.noise}). Ratings per user "
        f"{report.min_user_ratings}..{report.max_user_ratings}; histogram {fractions}. Noise "
        f"floor (Bayes-optimal E[rating | user, movie]): RMSE {report.noise_floor_rmse:.4f} "
        f"(expected {report.noise_floor_rmse_expected:.4f}), MAE "
        f"{report.noise_floor_mae:.4f}; for reference the undiscretized latent mean has RMSE "
        f"{report.latent_mean_rmse:.4f} and the global mean {report.global_mean_rmse:.4f}.")
