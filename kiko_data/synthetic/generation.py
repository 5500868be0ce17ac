"""Generate a data set into a folder, or reuse the one already there if it matches."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from kiko.data.movielens import LAYOUTS
from kiko.data.synthetic.config import GeneratorConfig
from kiko.data.synthetic.marginals import AGE_CODES, GENRES
from kiko.data.synthetic.rating_scale import noise_floor
from kiko.data.synthetic.report import (
    GENERATOR_VERSION, REPORT_FILE, GenerationReport, load_report, write_report)
from kiko.data.synthetic.truth import GroundTruth, ground_truth, streams
from kiko.data.synthetic.writing import write_layout


def generate(out_dir: str | os.PathLike,
             config: GeneratorConfig = GeneratorConfig()) -> GenerationReport:
    """Generate the files of `config.layout` and ``generator.json`` into ``out_dir``.

    Files are written atomically and ``generator.json`` last, so an interrupted run is never
    mistaken for a finished one by `ensure_generated`.
    """
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    (out / REPORT_FILE).unlink(missing_ok=True)
    truth = ground_truth(config)
    movies = truth.movies
    user_index, movie_index, stamps = truth.user_index, truth.movie_index, truth.timestamps
    ratings, thresholds, levels = truth.ratings, truth.thresholds, config.style.levels
    counts_by_user = np.bincount(user_index, minlength=config.n_users)
    floor = noise_floor(ratings, truth.mean, thresholds, config.noise, levels)

    user_rows, movie_rows = side_tables(truth)
    written = write_layout(out, config.layout, streams(config)["layout"], ratings=dict(
        user=user_index + 1, movie=movies["ids"][movie_index], rating=ratings,
        timestamp=stamps), users=user_rows, movies=movie_rows)

    layout = LAYOUTS[config.layout]
    histogram = {float(level): int(n) for level, n in
                 zip(levels, np.bincount(np.searchsorted(levels, ratings),
                                         minlength=len(levels)))}
    report = GenerationReport(
        config=config,
        out_dir=str(out),
        ratings_path=str(written[layout.ratings_file]),
        users_path=str(written[layout.users_file]) if layout.users_file else None,
        movies_path=str(written[layout.movies_file]),
        n_ratings=int(len(ratings)),
        n_users=config.n_users,
        n_movies=config.n_movies,
        n_movies_rated=int(np.count_nonzero(np.bincount(movie_index,
                                                        minlength=config.n_movies))),
        rating_histogram=histogram,
        thresholds=tuple(float(t) for t in thresholds),
        min_user_ratings=int(counts_by_user.min()),
        max_user_ratings=int(counts_by_user.max()),
        first_timestamp=int(stamps.min()),
        last_timestamp=int(stamps.max()),
        file_sizes={name: path.stat().st_size for name, path in sorted(written.items())},
        **floor,
    )
    write_report(out, report)
    return report


def side_tables(truth: GroundTruth) -> tuple[dict, dict]:
    """The columns of the users and movies files (`write_layout`'s `users` and `movies`)."""
    users, movies = truth.users, truth.movies
    genre_names = np.asarray(GENRES, dtype=object)
    return (dict(id=np.arange(1, truth.config.n_users + 1),
                 gender=np.where(users["is_male"], "M", "F").tolist(),
                 age=np.asarray(AGE_CODES)[users["age_index"]],
                 occupation=users["occupation"], zip=users["zip"]),
            dict(id=movies["ids"], title=truth.titles,
                 genres=["|".join(genre_names[row]) for row in movies["genres"]],
                 year=movies["year"]))


def ensure_generated(out_dir: str | os.PathLike,
                     config: GeneratorConfig = GeneratorConfig()) -> GenerationReport:
    """Reuse the data in ``out_dir`` if it was generated from ``config``, else generate it.

    Reuse needs ``generator.json`` with the same config and generator version, and every file
    it lists present with its recorded size.
    """
    try:
        report = load_report(out_dir)
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return generate(out_dir, config)
    folder = Path(report.out_dir)
    if report.config == config and report.generator_version == GENERATOR_VERSION and all(
            (folder / name).is_file() and (folder / name).stat().st_size == size
            for name, size in report.file_sizes.items()):
        return report
    return generate(out_dir, config)
