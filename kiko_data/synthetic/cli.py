"""`kiko generate`: write a synthetic MovieLens data set and print its summary."""

from __future__ import annotations

import argparse
import os
import time
from typing import Sequence

from kiko.data.synthetic.config import LAYOUT_STYLES, GeneratorConfig
from kiko.data.synthetic.generation import generate
from kiko.data.synthetic.marginals import MIN_RATINGS_PER_USER, RELEASE_SIZES
from kiko.data.synthetic.report import summary
from kiko.data.synthetic.spans import SpanConfig, describe_spans, generate_spans


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: generate a synthetic MovieLens-format data set and print a summary."""
    defaults = GeneratorConfig()
    parser = argparse.ArgumentParser(
        prog="kiko generate",
        description="Generate synthetic MovieLens data in the files of one release's layout "
                    "(ml-1m: ratings.dat, users.dat, movies.dat; ml-100k: u.data, u.user, "
                    "u.item; ml-10m: ratings.dat, movies.dat, tags.dat, half stars; ml-csv: "
                    "ratings.csv, movies.csv as ML-20M/25M/32M, half stars) plus "
                    "generator.json with the noise floor. Always regenerates.")
    parser.add_argument("--out", required=True, help="output folder (created if missing)")
    parser.add_argument("--layout", choices=sorted(LAYOUT_STYLES),
                        help=f"file layout (default {defaults.layout}, or the layout of --size)")
    parser.add_argument("--size", choices=sorted(RELEASE_SIZES),
                        help="the users, movies and ratings of a GroupLens release (the flags "
                             "below override single numbers)")
    parser.add_argument("--users", type=int,
                        help=f"number of users (default {defaults.n_users})")
    parser.add_argument("--movies", type=int,
                        help=f"number of movies in the movies file (default {defaults.n_movies})")
    parser.add_argument("--ratings", type=int,
                        help=f"number of ratings, at least {MIN_RATINGS_PER_USER} per user "
                             f"(default {defaults.n_ratings})")
    parser.add_argument("--seed", type=int, default=defaults.seed,
                        help=f"random seed; same arguments give identical files "
                             f"(default {defaults.seed})")
    parser.add_argument("--rank", type=int, default=defaults.rank,
                        help=f"rank of the planted user-movie interaction (default "
                             f"{defaults.rank})")
    parser.add_argument("--noise", type=float, default=defaults.noise,
                        help=f"std of the Gaussian noise on the latent rating (default "
                             f"{defaults.noise})")
    spans = parser.add_argument_group(
        "spans", "--spans N writes the data as N time-ordered spans OUT/span-1 .. OUT/span-N "
                 "(each with the layout's files; its users and movies files list everyone "
                 "who has arrived by then) and OUT/spans.json instead of one data set. Users "
                 "and movies arrive over the spans, each with a rating in its arrival span; "
                 "the spans hold about equal numbers of ratings; timestamps increase from span "
                 "to span; and every movie's appeal drifts a little from span to span. Span "
                 "1's ratings are those of the single data set with the same flags.")
    span_defaults = SpanConfig(count=1)
    spans.add_argument("--spans", type=int, metavar="N",
                       help="write N spans (N >= 1) into OUT, which must be empty or hold "
                            "only spans written before (they are replaced)")
    spans.add_argument("--span-new-users", type=float, default=span_defaults.new_users,
                       metavar="SHARE",
                       help="share of the users arriving after span 1, spread evenly over "
                            f"spans 2..N (default {span_defaults.new_users})")
    spans.add_argument("--span-new-movies", type=float, default=span_defaults.new_movies,
                       metavar="SHARE",
                       help="share of the movies arriving after span 1, spread evenly over "
                            f"spans 2..N (default {span_defaults.new_movies})")
    spans.add_argument("--span-drift", type=float, default=span_defaults.drift,
                       metavar="STD",
                       help="taste drift: each span after the first adds a Gaussian step of "
                            "this standard deviation (rating units) to every movie's bias, a "
                            f"random walk (default {span_defaults.drift}; 0 for none)")
    args = parser.parse_args(argv)
    overrides = {key: value for key, value in (
        ("n_users", args.users), ("n_movies", args.movies), ("n_ratings", args.ratings),
        ("layout", args.layout)) if value is not None}
    overrides.update(rank=args.rank, noise=args.noise)
    try:
        config = (GeneratorConfig.release(args.size, seed=args.seed, **overrides) if args.size
                  else GeneratorConfig(seed=args.seed, **overrides))
        span_config = (SpanConfig(args.spans, args.span_new_users, args.span_new_movies,
                                  args.span_drift) if args.spans is not None else None)
    except ValueError as e:
        parser.error(str(e))
    started = time.perf_counter()
    if span_config is not None:
        try:
            manifest = generate_spans(args.out, config, span_config)
        except ValueError as e:
            parser.error(str(e))
        print(f"{describe_spans(manifest, os.path.abspath(args.out))}\n"
              f"Took {time.perf_counter() - started:.1f} s.")
        return 0
    report = generate(args.out, config)
    print(f"{summary(report)} Took {time.perf_counter() - started:.1f} s.")
    return 0
