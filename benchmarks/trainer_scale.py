"""Trainer scaling benchmark: the Trainer's run_fn alone on generated data of a given size.

Run on demand (not a test), e.g. for the three sizes of issue 10:

    .venv/bin/python benchmarks/trainer_scale.py --ratings 1000209
    .venv/bin/python benchmarks/trainer_scale.py --ratings 5000000
    .venv/bin/python benchmarks/trainer_scale.py --ratings 25000000 --users 162541 --movies 59047

Protocol:
* Data: `kiko_data.synthetic` with `GeneratorConfig.scaled(ratings)` (or the given users and
  movies), seed 0, under benchmarks/_work/scale/ (reused when already generated). The
  generator runs in its own process, measured apart.
* Examples: the ratings joined with movies.dat (title, year, genres) and, unless --no-users,
  users.dat, encoded with ExampleGen's own encoder into gzip TFRecords, split train 9 : eval 1
  by a hash of (user, movie): ExampleGen's output layout (Split-train/, Split-eval/).
* Trainer: `kiko_model.trainer.run_fn` with the default hyperparameters (--hparam KEY=VALUE to
  override), in a child process, plus the phases the Trainer logs in its metrics.json.
* Measured: wall time of each child process; with --peak-rss PATH (a sampler script that runs
  a command and writes its whole-process-tree peak RSS as JSON: `PATH --every 0.5 --json FILE
  -- COMMAND`), also its peak memory, sampled every 0.5 s.
* Results are appended to benchmarks/results/trainer_scale.json.
"""

from __future__ import annotations

import kiko_model  # noqa: F401  (selects Keras 2; must precede TensorFlow)

import argparse
import json
import os
import subprocess
import sys
import time
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORK = HERE / "_work" / "scale"
RESULTS = HERE / "results" / "trainer_scale.json"
SCHEMA = REPO / "pipeline" / "schema" / "schema.pbtxt"
_SHARDS = 8


def _peak_rss(peak_rss: str | None, command: list, json_path: Path) -> tuple[dict, int]:
    """Run ``command`` (under peak_rss.py when given); (its measurement, exit code)."""
    start = time.perf_counter()
    if peak_rss:
        command = [sys.executable, peak_rss, "--every", "0.5", "--json", str(json_path), "--",
                   *command]
    code = subprocess.run(command, cwd=REPO).returncode
    measured = {"wall_seconds": round(time.perf_counter() - start, 1)}
    if peak_rss and json_path.exists():
        measured.update(json.loads(json_path.read_text()))
    return measured, code


def generate(args, folder: Path) -> dict:
    """The generated data in ``folder`` (generated in a measured child process if missing)."""
    from kiko_data import synthetic

    overrides = {k: v for k, v in (("n_users", args.users), ("n_movies", args.movies)) if v}
    config = synthetic.GeneratorConfig.scaled(args.ratings, **overrides)
    try:
        if synthetic.load_report(folder).config == config:
            return {"reused": True, "config": config.to_dict()}
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        pass
    folder.mkdir(parents=True, exist_ok=True)
    measured, code = _peak_rss(args.peak_rss, [
        sys.executable, "-m", "kiko_data.synthetic", "--out", str(folder),
        "--ratings", str(config.n_ratings), "--users", str(config.n_users),
        "--movies", str(config.n_movies)], folder / "generate_rss.json")
    if code:
        raise SystemExit(f"the generator failed with exit code {code}")
    return {"reused": False, "config": config.to_dict(), **measured}


def write_examples(data_dir: Path, out: Path, with_users: bool) -> dict:
    """ExampleGen-style gzip TFRecords (Split-train/, Split-eval/) of the generated data."""
    import tensorflow as tf

    from components.movielens_example_gen.example_encoder import RatingEncoder
    from kiko_data import movielens
    from kiko_model import features as fk

    done = out / "done.json"
    if done.exists():
        return json.loads(done.read_text())
    start = time.perf_counter()
    movies = movielens.read_movies(movielens.FileRef(str(data_dir / fk.MOVIES_FILE)))
    users = (movielens.read_users(movielens.FileRef(str(data_dir / fk.USERS_FILE)))
             if with_users else None)
    encoder = RatingEncoder(users, movies)
    writers = {}
    for split in (fk.TRAIN_SPLIT, fk.EVAL_SPLIT):
        (out / f"Split-{split}").mkdir(parents=True, exist_ok=True)
        writers[split] = [tf.io.TFRecordWriter(
            str(out / f"Split-{split}" / f"data_tfrecord-{i:05d}-of-{_SHARDS:05d}.gz"), "GZIP")
            for i in range(_SHARDS)]
    counts = {fk.TRAIN_SPLIT: 0, fk.EVAL_SPLIT: 0}
    ratings_path = str(data_dir / fk.RATINGS_FILE)
    with open(ratings_path, encoding=fk.ML1M_ENCODING) as f:
        for i, rating in enumerate(movielens.iter_ratings(f, ratings_path)):
            key = zlib.crc32(f"{rating.user_id}:{rating.movie_id}".encode())
            split = fk.EVAL_SPLIT if key % 10 == 0 else fk.TRAIN_SPLIT
            writers[split][i % _SHARDS].write(encoder.encode(rating))
            counts[split] += 1
    for shards in writers.values():
        for writer in shards:
            writer.close()
    result = {"examples": counts, "with_users": with_users,
              "seconds": round(time.perf_counter() - start, 1)}
    done.write_text(json.dumps(result))
    return result


def run_trainer(examples: Path, run_dir: Path, hparams: dict) -> None:
    """In this process: the Trainer's run_fn as TFX's generic executor would call it."""
    from tfx import v1 as tfx

    from kiko_model import features as fk
    from kiko_model import trainer
    from kiko_model.hparams import TRAINER_HPARAMS_KEY

    trainer.run_fn(tfx.components.FnArgs(
        train_files=[str(examples / f"Split-{fk.TRAIN_SPLIT}" / "*")],
        eval_files=[str(examples / f"Split-{fk.EVAL_SPLIT}" / "*")],
        schema_path=str(SCHEMA),
        serving_model_dir=str(run_dir / "serving"),
        model_run_dir=str(run_dir / "model_run"),
        custom_config={TRAINER_HPARAMS_KEY: hparams}))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ratings", type=int, required=True)
    parser.add_argument("--users", type=int, default=0, help="default: scaled with ratings")
    parser.add_argument("--movies", type=int, default=0, help="default: scaled with ratings")
    parser.add_argument("--no-users", action="store_true",
                        help="no user side features (as ML-10M and later)")
    parser.add_argument("--hparam", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--peak-rss", default=os.environ.get("PEAK_RSS"),
                        help="path of peak_rss.py (or $PEAK_RSS); without it no memory figures")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--child", help=argparse.SUPPRESS)  # run the Trainer in this process
    args = parser.parse_args(argv)
    hparams = dict(kv.split("=", 1) for kv in args.hparam)
    if args.child:
        import logging
        # The Trainer's progress (absl INFO, as under TFX), with times.
        logging.basicConfig(format="%(asctime)s %(message)s", level=logging.INFO, force=True)
        run_trainer(Path(args.child), Path(args.child).parent / "run", hparams)
        return 0

    name = f"{args.ratings}-{args.users or 'scaled'}-{args.movies or 'scaled'}"
    folder = WORK / name
    generated = generate(args, folder / "data")
    examples_dir = folder / ("examples-no-users" if args.no_users else "examples")
    examples = write_examples(folder / "data", examples_dir, not args.no_users)
    load = os.getloadavg()
    command = [sys.executable, str(Path(__file__).resolve()), "--ratings", str(args.ratings),
               "--child", str(examples_dir), *sum((["--hparam", h] for h in args.hparam), [])]
    measured, code = _peak_rss(args.peak_rss, command, folder / "trainer_rss.json")
    if code:
        raise SystemExit(f"the Trainer failed with exit code {code}")
    with open(examples_dir.parent / "run" / "model_run" / "metrics.json") as f:
        metrics = json.load(f)
    row = {"name": name, "ratings": args.ratings, "generated": generated,
           "examples": examples, "trainer": measured, "load_average_before": load,
           "load_average_after": os.getloadavg(), "hparams": hparams,
           "trainer_phases": {"load_seconds": metrics["load_seconds"],
                              "train_seconds": metrics["train_seconds"],
                              "score_seconds": metrics["score_seconds"],
                              **metrics["timings"]},
           "members": metrics["members"], "blend": metrics["blend"],
           "eval": metrics["final"]["eval"], "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    out = Path(args.out)
    rows = json.loads(out.read_text()) if out.exists() else []
    rows.append(row)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2) + "\n")
    print(json.dumps(row, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
