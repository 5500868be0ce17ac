"""`kiko generate --spans N` (kiko.data.synthetic.spans): N spans in time order, later ones with
new users and movies and a mild drift in taste, each span a data set of its layout, the same
bytes for the same seed."""

import hashlib

import numpy as np
import pytest

from kiko.data import synthetic
from kiko.data.movielens.reading import read_ratings, read_side_records
from kiko.data.movielens.source import resolve_source
from kiko.data.movielens.spans import span_dir_name
from kiko.data.spans_cut import read_manifest
from kiko.data.synthetic import cli
from kiko.data.synthetic.spans import SpanConfig, generate_spans, plan_spans

CONFIG = synthetic.GeneratorConfig(n_users=400, n_movies=300, n_ratings=40_000, seed=9)
SPANS = SpanConfig(count=5)


@pytest.fixture(scope="module")
def spans_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("spans")
    generate_spans(out, CONFIG, SPANS)
    return out


def span_ratings(folder, k):
    return list(read_ratings(resolve_source(str(folder / span_dir_name(k)))))


def digests(folder):
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_spans_are_in_time_order_and_hold_every_rating(spans_dir):
    manifest = read_manifest(spans_dir)
    assert [e["folder"] for e in manifest["spans"]] == [span_dir_name(k) for k in range(1, 6)]
    previous_last, pairs = -1, set()
    for k, entry in enumerate(manifest["spans"], 1):
        ratings = span_ratings(spans_dir, k)
        stamps = [r.timestamp for r in ratings]
        assert len(ratings) == entry["ratings"]
        assert min(stamps) > previous_last
        assert (min(stamps), max(stamps)) == (entry["first_timestamp"], entry["last_timestamp"])
        previous_last = max(stamps)
        pairs |= {(r.user_id, r.movie_id) for r in ratings}
    counts = [e["ratings"] for e in manifest["spans"]]
    assert sum(counts) == len(pairs) == CONFIG.n_ratings  # each pair once, none lost
    assert max(counts) <= 1.2 * min(counts)
    truth = synthetic.ground_truth(CONFIG)
    assert pairs == set(zip((truth.user_index + 1).tolist(),
                            truth.movies["ids"][truth.movie_index].tolist()))


def test_later_spans_bring_new_users_and_movies_listed_in_growing_side_files(spans_dir):
    seen_users, seen_movies = set(), set()
    previous_users, previous_movies = {}, {}
    manifest = read_manifest(spans_dir)
    for k, entry in enumerate(manifest["spans"], 1):
        source = resolve_source(str(spans_dir / span_dir_name(k)))
        users_file = read_side_records(source, "users")
        movies_file = read_side_records(source, "movies")
        ratings = span_ratings(spans_dir, k)
        users = {r.user_id for r in ratings}
        movies = {r.movie_id for r in ratings}
        assert users <= set(users_file) and movies <= set(movies_file)
        # Side files grow: everyone listed before is listed again, with the same line.
        assert all(users_file[u] == record for u, record in previous_users.items())
        assert all(movies_file[m] == record for m, record in previous_movies.items())
        assert set(users_file) == seen_users | users and entry["users_file"] == len(users_file)
        new_users, new_movies = users - seen_users, movies - seen_movies
        assert (entry["new_users"], entry["new_movies"]) == (len(new_users), len(new_movies))
        if k > 1:
            assert new_users and new_movies
            assert len(new_users) < 0.3 * len(users)
        seen_users |= users
        seen_movies |= movies
        previous_users, previous_movies = users_file, movies_file
    assert len(seen_users) == CONFIG.n_users


def test_drift_is_present_but_mild():
    truth = synthetic.ground_truth(CONFIG)
    plan = plan_spans(truth, SPANS)
    first = plan.span == 1
    assert np.array_equal(plan.ratings[first], truth.ratings[first])  # span 1: the data set's
    later = plan.span == SPANS.count
    changed = np.mean(plan.ratings[later] != truth.ratings[later])
    assert 0.01 < changed < 0.3
    means = [plan.ratings[plan.span == k].mean() for k in range(1, SPANS.count + 1)]
    assert max(means) - min(means) < 0.1
    # Movies' appeal walks: on the last span their mean shifts differ between movies.
    shifts = plan.shift[later]
    assert shifts.std() > 0.5 * SPANS.drift and abs(shifts.mean()) < 2 * SPANS.drift
    still = plan_spans(truth, SpanConfig(count=SPANS.count, drift=0.0))
    assert np.array_equal(still.ratings, truth.ratings)


@pytest.mark.parametrize("layout", sorted(synthetic.LAYOUT_STYLES))
def test_every_layout_reads_back_span_by_span(tmp_path, layout):
    config = synthetic.GeneratorConfig.small(seed=4, layout=layout)
    manifest = generate_spans(tmp_path, config, SpanConfig(count=3))
    for k in range(1, 4):
        source = resolve_source(str(tmp_path / span_dir_name(k)))
        assert source.layout_name == layout and source.movies is not None
        ratings = list(read_ratings(source))
        assert len(ratings) == manifest["spans"][k - 1]["ratings"]
        assert {r.movie_id for r in ratings} <= set(read_side_records(source, "movies"))
        if source.layout.users_file:
            assert {r.user_id for r in ratings} <= set(read_side_records(source, "users"))


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path, spans_dir):
    generate_spans(tmp_path / "again", CONFIG, SPANS)
    assert digests(tmp_path / "again") == digests(spans_dir)
    other = synthetic.GeneratorConfig(n_users=400, n_movies=300, n_ratings=40_000, seed=10)
    generate_spans(tmp_path / "other", other, SPANS)
    assert digests(tmp_path / "other")["span-1/ratings.dat"] != \
        digests(spans_dir)["span-1/ratings.dat"]


def test_span_config_checks():
    for bad in (dict(count=0), dict(count=2, new_users=1.0), dict(count=2, new_movies=-0.1),
                dict(count=2, drift=float("nan"))):
        with pytest.raises(ValueError):
            SpanConfig(**bad)


def test_cli_writes_spans_and_replaces_them(tmp_path, capsys):
    out = tmp_path / "spans"
    base = ["--out", str(out), "--users", "60", "--movies", "50", "--ratings", "3000"]
    assert cli.main(base + ["--spans", "4", "--span-drift", "0.1"]) == 0
    printed = capsys.readouterr().out
    assert "as 4 spans" in printed and "span-4: " in printed and "new)" in printed
    assert read_manifest(out)["source"]["spans"]["drift"] == 0.1
    assert cli.main(base + ["--spans", "2"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["span-1", "span-2", "spans.json"]
    assert cli.main(["--out", str(tmp_path / "one"), "--users", "60", "--movies", "50",
                     "--ratings", "3000"]) == 0
    for argv in (["--out", str(tmp_path / "one"), "--users", "60", "--movies", "50",
                  "--ratings", "3000", "--spans", "2"],  # a single data set is there
                 base + ["--spans", "2", "--span-new-users", "1.5"]):
        with pytest.raises(SystemExit) as exit_info:
            cli.main(argv)
        assert exit_info.value.code == 2
    assert "holds other files than spans" in capsys.readouterr().err
