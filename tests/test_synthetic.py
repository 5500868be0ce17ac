"""Tests of the synthetic MovieLens generator: exact file formats, counts, ground truth."""

import re

import numpy as np
import pytest

from kiko.data import synthetic
from kiko.data.movielens import ml1m

SMALL = synthetic.GeneratorConfig.small()
MEDIUM = synthetic.GeneratorConfig.scaled(100_000)
TINY = synthetic.GeneratorConfig(n_users=50, n_movies=40, n_ratings=2_000)

ZIP = re.compile(r"^\d{5}(-\d{4})?$")
TITLE = re.compile(r"^(.+) \((\d{4})\)$")


def _read_lines(path):
    """Lines of an ml-1m file, checking latin-1, LF endings and a final newline."""
    data = path.read_bytes() if hasattr(path, "read_bytes") else open(path, "rb").read()
    assert data.endswith(b"\n") and b"\r" not in data
    return data.decode(ml1m.ENCODING).split("\n")[:-1]


def _fields(path, n_fields):
    rows = [line.split(ml1m.SEPARATOR) for line in _read_lines(path)]
    assert all(len(row) == n_fields for row in rows)
    return rows


def _ratings(report):
    """The ratings as an int array with columns user, movie, rating, timestamp."""
    return np.array(_fields(report.ratings_path, 4), dtype=np.int64)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return synthetic.generate(tmp_path_factory.mktemp("small"), SMALL)


@pytest.fixture(scope="module")
def medium(tmp_path_factory):
    report = synthetic.generate(tmp_path_factory.mktemp("medium"), MEDIUM)
    return report, _ratings(report)


def test_ratings_file_counts_ids_and_order(small):
    ratings = _ratings(small)
    users, movies, values, stamps = ratings.T
    assert len(ratings) == SMALL.n_ratings == small.n_ratings
    assert set(users.tolist()) == set(range(1, SMALL.n_users + 1))
    per_user = np.bincount(users)[1:]
    assert per_user.min() >= synthetic.MIN_RATINGS_PER_USER
    assert small.min_user_ratings == per_user.min()
    assert small.max_user_ratings == per_user.max()
    assert len({(u, m) for u, m in zip(users.tolist(), movies.tolist())}) == len(ratings)
    movie_ids = {int(row[0]) for row in _fields(small.movies_path, 3)}
    assert set(movies.tolist()) <= movie_ids
    assert small.n_movies_rated == len(set(movies.tolist())) <= SMALL.n_movies
    assert set(values.tolist()) <= {1, 2, 3, 4, 5}
    assert stamps.min() >= synthetic.ML1M_FIRST_TIMESTAMP
    assert stamps.max() <= synthetic.ML1M_LAST_TIMESTAMP
    assert (small.first_timestamp, small.last_timestamp) == (stamps.min(), stamps.max())
    assert np.all(np.lexsort((stamps, users)) == np.arange(len(ratings)))  # user, then time
    assert small.rating_histogram == {k: int((values == k).sum()) for k in range(1, 6)}


def test_users_file_format(small):
    rows = _fields(small.users_path, 5)
    assert [int(r[0]) for r in rows] == list(range(1, SMALL.n_users + 1))
    assert {r[1] for r in rows} <= {"M", "F"}
    assert {int(r[2]) for r in rows} <= set(synthetic.AGE_CODES)
    assert {int(r[3]) for r in rows} <= set(range(21))
    assert all(ZIP.match(r[4]) for r in rows)


def test_movies_file_format(small):
    rows = _fields(small.movies_path, 3)
    ids = [int(r[0]) for r in rows]
    assert len(ids) == SMALL.n_movies and ids == sorted(set(ids)) and ids[0] >= 1
    titles = [r[1] for r in rows]
    assert len(set(titles)) == len(titles)
    for title in titles:
        match = TITLE.match(title)
        assert match, title
        assert 1919 <= int(match.group(2)) <= 2000
    assert any(not t.isascii() for t in titles)
    assert any(re.search(r"\(.+\) \(\d{4}\)$", t) for t in titles)  # inner parentheses
    assert any(", " in t for t in titles)
    for r in rows:
        genres = r[2].split("|")
        assert 1 <= len(genres) <= 3 and len(set(genres)) == len(genres)
        assert set(genres) <= set(synthetic.GENRES)


def test_demographic_marginals_and_zip_suffix(medium):
    report, _ = medium
    rows = _fields(report.users_path, 5)
    male = np.mean([r[1] == "M" for r in rows])
    assert 0.65 < male < 0.79
    ages = [int(r[2]) for r in rows]
    assert set(ages) == set(synthetic.AGE_CODES)
    assert ages.count(25) > ages.count(1)
    assert any("-" in r[4] for r in rows)
    years = [int(TITLE.match(r[1]).group(2)) for r in _fields(report.movies_path, 3)]
    assert np.median(years) >= 1985


def test_histogram_matches_ml1m_at_medium_size(medium):
    report, ratings = medium
    fractions = np.bincount(ratings[:, 2], minlength=6)[1:] / len(ratings)
    assert np.allclose(fractions, synthetic.ML1M_RATING_FRACTIONS, atol=0.01)
    assert report.rating_fractions[4] == pytest.approx(fractions[3])


def test_activity_and_popularity_are_long_tailed(medium):
    report, ratings = medium
    per_user = np.bincount(ratings[:, 0])[1:]
    assert per_user.min() >= synthetic.MIN_RATINGS_PER_USER
    assert per_user.max() > 4 * np.median(per_user)
    per_movie = np.bincount(ratings[:, 1])
    per_movie = per_movie[per_movie > 0]
    assert per_movie.max() > 5 * np.median(per_movie)
    assert report.n_movies_rated == len(per_movie) <= report.n_movies


def test_timestamps_are_clustered_per_user(medium):
    _, ratings = medium
    starts = np.searchsorted(ratings[:, 0], np.arange(1, ratings[:, 0].max() + 2))
    spans = ratings[starts[1:] - 1, 3] - ratings[starts[:-1], 3]
    assert np.median(spans) < 30 * 86400  # a user's ratings come in sessions, not years apart


def test_tiny_size_rates_every_pair(tmp_path):
    report = synthetic.generate(tmp_path, TINY)
    ratings = _ratings(report)
    assert len(ratings) == 2_000
    assert np.all(np.bincount(ratings[:, 0])[1:] == 40)
    assert report.n_movies_rated == 40


def test_deterministic_by_seed(tmp_path, small):
    again = synthetic.generate(tmp_path / "again", SMALL)
    for name in (ml1m.RATINGS_FILE, ml1m.USERS_FILE, ml1m.MOVIES_FILE,
                 synthetic.REPORT_FILE):
        assert (tmp_path / "again" / name).read_bytes() == open(
            f"{small.out_dir}/{name}", "rb").read()
    assert again.noise_floor_rmse == small.noise_floor_rmse
    other = synthetic.generate(tmp_path / "other",
                               synthetic.GeneratorConfig.small(seed=SMALL.seed + 1))
    assert open(other.ratings_path, "rb").read() != open(small.ratings_path, "rb").read()


def test_noise_floor_is_sane_and_an_oracle_matters(medium):
    report, ratings = medium
    values = ratings[:, 2].astype(float)
    global_rmse = float(np.std(values))
    assert report.global_mean_rmse == pytest.approx(global_rmse)
    assert 0.5 < report.noise_floor_rmse < 1.2
    assert report.noise_floor_rmse < global_rmse - 0.1
    assert report.noise_floor_mae < report.noise_floor_rmse
    assert abs(report.noise_floor_rmse - report.noise_floor_rmse_expected) < 0.02
    assert report.noise_floor_rmse < report.latent_mean_rmse
    movie = ratings[:, 1]
    movie_mean = np.bincount(movie, values) / np.maximum(np.bincount(movie), 1)
    movie_mean_rmse = float(np.sqrt(np.mean((values - movie_mean[movie]) ** 2)))
    assert movie_mean_rmse > report.noise_floor_rmse + 0.05
    assert len(report.thresholds) == 4 and list(report.thresholds) == sorted(report.thresholds)


def test_ground_truth_is_what_generate_wrote(medium):
    report, ratings = medium
    truth = synthetic.ground_truth(MEDIUM)
    assert np.array_equal(truth.user_index + 1, ratings[:, 0])
    assert np.array_equal(truth.movies["ids"][truth.movie_index], ratings[:, 1])
    assert np.array_equal(truth.ratings, ratings[:, 2])
    assert np.array_equal(truth.timestamps, ratings[:, 3])
    assert tuple(truth.thresholds) == report.thresholds
    expected = truth.expected_rating(truth.mean)
    assert np.sqrt(np.mean((expected - ratings[:, 2]) ** 2)) == pytest.approx(
        report.noise_floor_rmse)
    # Uncertainty about the mean pulls E[rating] towards the middle of the scale.
    blurred = truth.expected_rating(truth.mean, extra_variance=1.0)
    assert np.std(blurred) < np.std(expected)
    assert np.allclose(truth.expected_rating(truth.mean, np.zeros(len(expected))), expected)


def _permutation_rank(statistic, labels, n_permutations=30):
    """How many of n label permutations reach the real statistic (0 = all below it)."""
    rng = np.random.default_rng(0)
    real = statistic(labels)
    return sum(statistic(rng.permutation(labels)) >= real for _ in range(n_permutations))


def test_demographics_carry_signal(medium):
    report, ratings = medium
    users = _fields(report.users_path, 5)
    age = np.array([synthetic.AGE_CODES.index(int(r[2])) for r in users])
    female = np.array([r[1] == "F" for r in users])
    user = ratings[:, 0] - 1
    values = ratings[:, 2].astype(float)
    user_mean = np.bincount(user, values) / np.bincount(user)

    def age_spread(labels):  # between-group variance of users' mean ratings
        group_means = np.bincount(labels, user_mean) / np.bincount(labels)
        return float(np.var(group_means[labels]))

    assert _permutation_rank(age_spread, age) == 0

    movie_genres = {int(r[0]): r[2].split("|") for r in _fields(report.movies_path, 3)}
    genre_of = {g: i for i, g in enumerate(synthetic.GENRES)}
    genres = np.zeros((len(ratings), len(genre_of)))
    for i, m in enumerate(ratings[:, 1].tolist()):
        genres[i, [genre_of[g] for g in movie_genres[m]]] = 1.0
    residual = values - user_mean[user]  # taste, not generosity

    def gender_genre_gap(labels):  # how differently women and men rate each genre
        f = labels[user]
        n_f, n_m = genres[f].sum(axis=0), genres[~f].sum(axis=0)
        gap = residual[f] @ genres[f] / n_f - residual[~f] @ genres[~f] / n_m
        weight = 1.0 / (1.0 / n_f + 1.0 / n_m)  # inverse sampling variance of each gap
        return float(np.sum(weight * (gap - np.average(gap, weights=weight)) ** 2))

    assert _permutation_rank(gender_genre_gap, female) == 0


def test_report_round_trips(small):
    loaded = synthetic.load_report(small.out_dir)
    assert loaded == small
    assert loaded.config == SMALL


def test_ensure_generated_reuses_and_regenerates(tmp_path):
    first = synthetic.ensure_generated(tmp_path, TINY)
    ratings = tmp_path / ml1m.RATINGS_FILE
    mtime = ratings.stat().st_mtime_ns
    assert synthetic.ensure_generated(tmp_path, TINY) == first
    assert ratings.stat().st_mtime_ns == mtime

    before = ratings.read_bytes()
    changed = synthetic.GeneratorConfig(n_users=50, n_movies=40, n_ratings=2_000,
                                        seed=TINY.seed + 1)
    second = synthetic.ensure_generated(tmp_path, changed)
    assert second.config == changed and synthetic.load_report(tmp_path).config == changed
    assert ratings.read_bytes() != before

    ratings.write_bytes(ratings.read_bytes()[:100])  # a damaged file is not reused
    third = synthetic.ensure_generated(tmp_path, changed)
    assert ratings.stat().st_size == third.file_sizes[ml1m.RATINGS_FILE] > 100


@pytest.mark.parametrize("layout", sorted(synthetic.LAYOUT_STYLES))
def test_every_layout_is_read_back_by_the_project_readers(tmp_path, layout):
    from kiko.data.movielens.reading import read_ratings, read_side_records
    from kiko.data.movielens.source import resolve_source

    report = synthetic.generate(tmp_path / layout, synthetic.GeneratorConfig.small(
        seed=2, layout=layout))
    source = resolve_source(report.out_dir)
    assert source.layout_name == layout
    ratings = list(read_ratings(source))
    assert len(ratings) == report.n_ratings
    assert {r.rating for r in ratings} == set(report.rating_histogram)
    style = synthetic.LAYOUT_STYLES[layout]
    assert set(report.rating_histogram) == set(style.levels.tolist())
    assert all(style.first_timestamp <= r.timestamp <= style.last_timestamp for r in ratings)
    movies = read_side_records(source, "movies")
    assert len(movies) == report.n_movies
    assert bool(read_side_records(source, "users")) == (report.users_path is not None)
    assert report.noise_floor_rmse < report.global_mean_rmse
    assert synthetic.load_report(report.out_dir) == report


def test_half_star_layouts_follow_ml25m_histogram(tmp_path):
    report = synthetic.generate(tmp_path, synthetic.GeneratorConfig(
        n_users=600, n_movies=500, n_ratings=60_000, seed=4, layout="ml-csv"))
    for (rating, fraction), expected in zip(sorted(report.rating_fractions.items()),
                                             synthetic.HALF_STAR_RATING_FRACTIONS):
        assert fraction == pytest.approx(expected, abs=0.015), rating
    first = (tmp_path / "ratings.csv").read_text(encoding="utf-8").splitlines()[:2]
    assert first[0] == "userId,movieId,rating,timestamp" and re.fullmatch(
        r"\d+,\d+,[0-5]\.[05],\d+", first[1])
