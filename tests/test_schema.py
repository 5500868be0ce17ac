"""The curated schema variants: one per combination of side files, agreeing on what they share."""

import itertools

import pytest
import tensorflow_data_validation as tfdv

from kiko.data.movielens import ml100k, ml1m
from kiko.model import features as fk
from kiko.pipeline import configs

BASE = {fk.USER_ID, fk.MOVIE_ID, fk.RATING, fk.TIMESTAMP}
USER_SIDE = set(fk.USER_SIDE_FEATURES)
MOVIE_SIDE = {fk.TITLE, fk.YEAR, fk.GENRES}


def _schema(has_users, has_movies):
    return tfdv.load_schema_text(configs.schema_path(has_users, has_movies))


@pytest.mark.parametrize("has_users, has_movies", itertools.product((False, True), repeat=2))
def test_each_variant_holds_exactly_its_features(has_users, has_movies):
    names = {f.name for f in _schema(has_users, has_movies).feature}
    assert names == BASE | (USER_SIDE if has_users else set()) | (
        MOVIE_SIDE if has_movies else set())


def test_variants_agree_on_every_shared_feature_and_domain():
    seen, domains = {}, {}
    for has_users, has_movies in itertools.product((False, True), repeat=2):
        schema = _schema(has_users, has_movies)
        for feature in schema.feature:
            assert seen.setdefault(feature.name, feature) == feature, feature.name
        for domain in schema.string_domain:
            assert domains.setdefault(domain.name, domain) == domain, domain.name


def test_domains_cover_every_release():
    full = _schema(True, True)
    domains = {d.name: set(d.value) for d in full.string_domain}
    assert set(ml1m.OCCUPATIONS) <= domains["occupation"]
    assert {"technician", "none", "librarian"} <= domains["occupation"]
    assert set(ml100k.GENRES) | {"Children", "IMAX", "(no genres listed)"} <= domains["genres"]
    rating = next(f for f in full.feature if f.name == fk.RATING)
    assert (rating.float_domain.min, rating.float_domain.max) == (0.5, 5.0)
    # Missing side features show up as an anomaly above 1 % of the examples.
    for feature in full.feature:
        if feature.name in USER_SIDE | {fk.TITLE, fk.GENRES}:
            assert feature.presence.min_fraction == pytest.approx(0.99), feature.name
