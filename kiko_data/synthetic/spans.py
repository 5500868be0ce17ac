"""Generated data as spans: `generate_spans` writes `OUT/span-1` ... `OUT/span-N`.

One data set is drawn as `generate` draws it (`truth.ground_truth`, unchanged), then:

* **Arrivals.** Each user and each movie arrives in a span: span 1 for most, a share
  (``new_users``, ``new_movies``) spread evenly over spans 2..N. A rating can only fall in or
  after the span where both its user and its movie have arrived; each arriving user and movie
  gets its first rating in its arrival span, so every later span brings users and movies that
  no earlier span had.
* **Spans of even size.** The other ratings are spread at random over the spans they may fall
  in, filling the spans from the last to the first to about equal rating counts (a span holds
  more only when its arrivals force it).
* **Time.** The layout's time window is cut into N equal windows; a rating keeps its place in
  time, scaled into its span's window, so timestamps increase from span to span and each
  user's sessions keep their shape.
* **Taste drift.** A movie's appeal takes a random walk: each span after the first adds a
  Gaussian step of standard deviation ``drift`` (rating units) to every movie's bias, on top
  of the same latent rating and noise as the single data set, before the same thresholds turn
  it into stars. Span 1's ratings are exactly the single data set's; the mean rating stays
  where it was, while which movies are liked slowly changes.

Each span holds the layout's files (ratings, side files, ML-10M's tags.dat); its users and
movies files list everyone who has arrived by then, each line as in the whole data set.
`OUT/spans.json` (the format `kiko spans` writes) records the config and per span its ratings,
time range, users and movies (new ones too), mean rating and noise floor. Same config and
knobs, same bytes.
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from kiko.data.movielens import LAYOUTS
from kiko.data.movielens.spans import span_dir_name
from kiko.data.spans_cut import MANIFEST_FILE, remove_spans, span_entry, write_manifest
from kiko.data.synthetic.config import GeneratorConfig
from kiko.data.synthetic.generation import side_tables
from kiko.data.synthetic.rating_scale import noise_floor
from kiko.data.synthetic.report import GENERATOR_VERSION
from kiko.data.synthetic.truth import GroundTruth, ground_truth, streams
from kiko.data.synthetic.writing import ages_in_years, write_layout

# Seeds the span streams apart from the single data set's (`truth.streams`).
_SPANS_STREAM = 0x5350414E


@dataclass(frozen=True)
class SpanConfig:
    """How a generated data set is cut into spans (see the module's docstring)."""

    count: int
    new_users: float = 0.3  # share of the users arriving after span 1
    new_movies: float = 0.2  # share of the movies arriving after span 1
    drift: float = 0.05  # std of each span's step of every movie's bias, in rating units

    def __post_init__(self) -> None:
        if isinstance(self.count, bool) or not isinstance(self.count, (int, np.integer)) \
                or self.count < 1:
            raise ValueError(f"the number of spans must be an int >= 1, got {self.count!r}")
        object.__setattr__(self, "count", int(self.count))
        for name in ("new_users", "new_movies"):
            value = float(getattr(self, name))
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} is a share in [0, 1), got {value!r}")
            object.__setattr__(self, name, value)
        drift = float(self.drift)
        if not (drift >= 0 and math.isfinite(drift)):
            raise ValueError(f"drift must be a non-negative number, got {self.drift!r}")
        object.__setattr__(self, "drift", drift)


@dataclass(frozen=True)
class SpansPlan:
    """Per rating (in the ground truth's order): its span (1-based), timestamp, drift and
    stars; per user and movie: the span it arrives in."""

    span: np.ndarray
    timestamps: np.ndarray
    shift: np.ndarray  # the drift added to the latent rating
    ratings: np.ndarray
    user_arrival: np.ndarray
    movie_arrival: np.ndarray


def _arrivals(rng: np.random.Generator, n: int, count: int, share: float) -> np.ndarray:
    """Span 1 for a share 1 - `share`, else uniform over spans 2..count."""
    if count == 1:
        return np.ones(n, dtype=np.int64)
    late = rng.random(n) < share
    return np.where(late, rng.integers(2, count + 1, n), 1)


def _first_of_each(keys: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Of the rating indices `candidates` (ascending), the first one per value of `keys`."""
    _, first = np.unique(keys[candidates], return_index=True)
    return candidates[first]


def _place(earliest: np.ndarray, forced: np.ndarray, count: int,
           rng: np.random.Generator) -> np.ndarray:
    """Each rating's span: forced ratings in their earliest span; the others at random in a
    span they may fall in, the spans filled from the last to about equal counts."""
    total = len(earliest)
    span = np.zeros(total, dtype=np.int64)
    span[forced] = earliest[forced]
    bounds = np.round(np.linspace(0, total, count + 1)).astype(np.int64)
    targets = np.diff(bounds)
    by_priority = np.argsort(rng.random(total), kind="stable")
    for k in range(count, 1, -1):
        span[(span == 0) & (earliest == k)] = k  # their last chance
        room = int(targets[k - 1] - np.count_nonzero(span == k))
        if room > 0:
            free = by_priority[(span[by_priority] == 0) & (earliest[by_priority] < k)]
            span[free[:room]] = k
    span[span == 0] = 1
    return span


def _restamp(stamps: np.ndarray, span: np.ndarray, count: int, config: GeneratorConfig):
    """Timestamps scaled into each span's window of the layout's time range."""
    first, last = config.style.first_timestamp, config.style.last_timestamp
    edges = first + (np.arange(count + 1, dtype=np.int64) * (last - first)) // count
    width = edges[span] - edges[span - 1]
    return edges[span - 1] + ((stamps - first) * width) // (last - first + 1)


def plan_spans(truth: GroundTruth, spans: SpanConfig) -> SpansPlan:
    """Where each rating of the data set goes, its timestamp and its drifted stars."""
    config, count = truth.config, spans.count
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, _SPANS_STREAM]))
    user_arrival = _arrivals(rng, config.n_users, count, spans.new_users)
    movie_arrival = _arrivals(rng, config.n_movies, count, spans.new_movies)
    users, movies = truth.user_index, truth.movie_index
    earliest = np.maximum(user_arrival[users], movie_arrival[movies])
    # A user or movie arrives where its first rating can fall.
    user_arrival = np.full(config.n_users, count + 1, dtype=np.int64)
    np.minimum.at(user_arrival, users, earliest)
    rated = np.full(config.n_movies, count + 1, dtype=np.int64)
    np.minimum.at(rated, movies, earliest)
    movie_arrival = np.where(rated <= count, rated, movie_arrival)
    forced = np.union1d(
        _first_of_each(users, np.flatnonzero(earliest == user_arrival[users])),
        _first_of_each(movies, np.flatnonzero(earliest == movie_arrival[movies])))
    span = _place(earliest, forced, count, rng)
    if np.bincount(span, minlength=count + 1)[1:].min() == 0:
        raise ValueError(f"{len(span)} ratings cannot fill {count} spans; ask for fewer spans")

    steps = rng.normal(0.0, spans.drift, (count - 1, config.n_movies))
    walk = np.vstack([np.zeros((1, config.n_movies)), np.cumsum(steps, axis=0)])
    shift = walk[span - 1, movies]
    # The single data set's latent ratings, redrawn from its own noise stream.
    latent = truth.mean + streams(config)["noise"].normal(0.0, config.noise, len(truth.mean))
    levels = config.style.levels
    ratings = levels[np.searchsorted(truth.thresholds, latent + shift, side="left")]
    return SpansPlan(span, _restamp(truth.timestamps, span, count, config), shift, ratings,
                     user_arrival, movie_arrival)


def _check_out(out: Path) -> None:
    """The output holds nothing but spans and spans.json from an earlier generation."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder")
    others = sorted(p.name for p in out.iterdir() if p.name != MANIFEST_FILE
                    and not p.name.startswith(("span-", ".span-"))) if out.exists() else []
    if others:
        raise ValueError(f"--out {out} holds other files than spans ({', '.join(others[:5])}); "
                         "generate spans into an empty folder")


def generate_spans(out_dir: str | os.PathLike, config: GeneratorConfig,
                   spans: SpanConfig) -> dict:
    """Write `spans.count` spans of the data set `config` describes into `out_dir`; return the
    manifest written to `out_dir/spans.json`. Earlier spans in `out_dir` are replaced."""
    out = Path(out_dir).resolve()
    _check_out(out)
    out.mkdir(parents=True, exist_ok=True)
    truth = ground_truth(config)
    plan = plan_spans(truth, spans)
    user_rows, movie_rows = side_tables(truth)
    layout_rng = np.random.default_rng(np.random.SeedSequence([config.seed, _SPANS_STREAM, 1]))
    user_rows["years"] = np.asarray(ages_in_years(layout_rng, user_rows["age"]))
    movie_rows["position"] = np.arange(config.n_movies)
    movie_ids, levels = truth.movies["ids"], config.style.levels
    remove_spans(out)
    entries = []
    for k in range(1, spans.count + 1):
        chosen = np.flatnonzero(plan.span == k)
        # The releases' order: by user, then time (the layouts reorder as their release does).
        chosen = chosen[np.lexsort((plan.timestamps[chosen], truth.user_index[chosen]))]
        users_in = plan.user_arrival <= k
        movies_in = plan.movie_arrival <= k
        folder = out / f".{span_dir_name(k)}.partial"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        span_rng = np.random.default_rng(np.random.SeedSequence(
            [config.seed, _SPANS_STREAM, 2, k]))
        write_layout(folder, config.layout, span_rng, ratings=dict(
            user=truth.user_index[chosen] + 1, movie=movie_ids[truth.movie_index[chosen]],
            rating=plan.ratings[chosen], timestamp=plan.timestamps[chosen]),
            users={key: _subset(value, users_in) for key, value in user_rows.items()},
            movies={key: _subset(value, movies_in) for key, value in movie_rows.items()})
        os.replace(folder, out / span_dir_name(k))
        floor = noise_floor(plan.ratings[chosen], truth.mean[chosen] + plan.shift[chosen],
                            truth.thresholds, config.noise, levels)
        span_users = np.unique(truth.user_index[chosen])
        span_movies = np.unique(truth.movie_index[chosen])
        entries.append(span_entry(
            k, plan.timestamps[chosen], users=int(len(span_users)),
            new_users=int(np.count_nonzero(plan.user_arrival[span_users] == k)),
            movies=int(len(span_movies)),
            new_movies=int(np.count_nonzero(plan.movie_arrival[span_movies] == k)),
            users_file=int(np.count_nonzero(users_in)),
            movies_file=int(np.count_nonzero(movies_in)),
            mean_rating=round(float(plan.ratings[chosen].mean()), 4),
            noise_floor_rmse=round(floor["noise_floor_rmse"], 4)))
    manifest = dict(
        source=dict(generator=config.to_dict(), spans=asdict(spans),
                    generator_version=GENERATOR_VERSION, layout=config.layout,
                    ratings_file=LAYOUTS[config.layout].ratings_file,
                    ratings=int(len(plan.span))),
        cut=dict(by="generated", count=spans.count), spans=entries)
    write_manifest(out, manifest)
    return manifest


def _subset(values, mask: np.ndarray):
    """The rows of a side-file column (array or list) where `mask` holds."""
    if isinstance(values, np.ndarray):
        return values[mask]
    return [value for value, keep in zip(values, mask.tolist()) if keep]


def describe_spans(manifest: dict, out: str) -> str:
    """What `generate_spans` wrote, one line per span."""
    source = manifest["source"]
    lines = [f"Wrote {source['ratings']:,} generated ratings in the {source['layout']} layout "
             f"as {len(manifest['spans'])} spans to {out} (seed "
             f"{source['generator']['seed']}; drift {source['spans']['drift']} per span):"]
    for entry in manifest["spans"]:
        lines.append(
            f"  {entry['folder']}: {entry['ratings']:,} ratings {entry['first'][:10]} .. "
            f"{entry['last'][:10]}, {entry['users']:,} users ({entry['new_users']:,} new), "
            f"{entry['movies']:,} movies ({entry['new_movies']:,} new), mean "
            f"{entry['mean_rating']:.3f}, noise floor RMSE {entry['noise_floor_rmse']:.4f}")
    return "\n".join(lines)
