"""Benchmark: the whole default pipeline against a tuned Surprise SVD on the same ratings.

Protocol:
* Data. `--dataset generated`: the embedded default generated set (`configs.EMBEDDED_DATA`,
  ML-1M layout with side files), generated once under benchmarks/_work and reused (not timed).
  `--dataset ml100k`: real MovieLens-100K ratings from the recbole==1.2.1 wheel written as an
  ml-100k layout folder (`spans.ml100k_spans`, the same data as spans.py; ratings only).
* The SVD: scikit-surprise 1.1.4 (the `bench` extra: `pip install -c constraints.txt -e
  '.[bench]'`), `SVD(n_factors=100, n_epochs=40, lr_all=0.005, reg_all=0.05,
  random_state=0)`, ratings read with `Reader(rating_scale=(lowest, highest train rating))`,
  so its predictions are clipped to that range.
* Each of `--repeats` rounds (default 3) runs, one after the other, the pipeline and then the
  SVD:
  - the pipeline cold: `pipeline/local_runner.py --data DATA --home HOME` as a subprocess with
    a fresh home and the runner's defaults; its wall seconds are the whole process (imports
    and launch included); per-component seconds come from ML Metadata (execution create ->
    last update); RMSE/MAE are the Evaluator's (TFMA, the candidate on the run's eval split),
    and the Trainer's own final eval scores (its metrics.json) are kept beside them;
  - the SVD in this process, on exactly that run's splits: the Trainer's train split and the
    run's eval split are read from the run's Examples artifact with the run's schema
    (`kiko.model.data.load_examples`, as the Trainer does; not timed). Timed: building its
    trainset from the in-memory columns, the fit, and predicting every eval example. RMSE/MAE
    over the eval split.
  The SVD is single-threaded; the pipeline keeps about two cores busy.
* Per round: pipeline wall seconds, per-component seconds, SVD seconds (trainset, fit,
  predict, total), ratio = pipeline wall seconds / SVD seconds, both models' RMSE and MAE.
  Summary: median ratio (and range); target (issue 22): median ratio <= 4.0 on the generated
  1M data.
* Results: `results/versus_svd_<dataset>.json` (machine, protocol, rounds, summary) and a
  markdown table on stdout.

    .venv/bin/python benchmarks/versus_svd.py --dataset generated|ml100k [--repeats 3]
    .venv/bin/python benchmarks/versus_svd.py --small

`--small` is a smoke test, not a measurement: generated data of 150 users, 200 movies and 9,000
ratings, short training, one round; its results go to benchmarks/_work, not results/.
"""

import argparse
import importlib.util
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (this script's folder)
import spans as span_bench  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from tfx.types import artifact_utils  # noqa: E402
from tfx.utils import io_utils  # noqa: E402

from kiko.data import synthetic  # noqa: E402
from kiko.metadata.runs import list_runs, run_outputs  # noqa: E402
from kiko.metadata.store import open_store, succeeded  # noqa: E402
from kiko.metadata.training import read_model_run  # noqa: E402
from kiko.model import data  # noqa: E402
from kiko.model import features as fk  # noqa: E402
from kiko.pipeline import configs, nodes  # noqa: E402

SVD_PARAMS = {"n_factors": 100, "n_epochs": 40, "lr_all": 0.005, "reg_all": 0.05}
SVD_SEED = 0
TARGET_RATIO = 4.0
TRAIN, EVAL = "train", "eval"
TABLE_NODES = (nodes.EXAMPLE_GEN_ID, nodes.STATISTICS_GEN_ID, nodes.TRAINER_ID,
               nodes.EVALUATOR_ID)
INSTALL_HINT = ("scikit-surprise is not installed: pip install -c constraints.txt -e "
                "'.[bench]' (the bench extra)")


# --- pure parts: conversion, scores, summary --------------------------------------------------

def surprise_frame(columns: dict) -> pd.DataFrame:
    """Rating rows as the (user, item, rating) frame `surprise.Dataset.load_from_df` takes."""
    return pd.DataFrame({"user": np.asarray(columns[fk.USER_ID], np.int64),
                         "item": np.asarray(columns[fk.MOVIE_ID], np.int64),
                         "rating": np.asarray(columns[fk.RATING], np.float64)})


def surprise_testset(columns: dict) -> list:
    """Rating rows as Surprise's testset: (raw user id, raw item id, rating) tuples, ids as the
    Python ints `load_from_df` keys its trainset by."""
    return list(zip(np.asarray(columns[fk.USER_ID], np.int64).tolist(),
                    np.asarray(columns[fk.MOVIE_ID], np.int64).tolist(),
                    np.asarray(columns[fk.RATING], np.float64).tolist()))


def rating_scale(columns: dict) -> tuple:
    """(lowest, highest) rating of a split: the Reader's scale, which clips predictions."""
    ratings = np.asarray(columns[fk.RATING], np.float64)
    return float(ratings.min()), float(ratings.max())


def scores(predicted, actual) -> dict:
    """RMSE and MAE of predictions against ratings."""
    error = np.asarray(predicted, np.float64) - np.asarray(actual, np.float64)
    if error.size == 0:
        raise ValueError("no predictions to score")
    return {"rmse": float(np.sqrt(np.mean(error ** 2))), "mae": float(np.mean(np.abs(error))),
            "examples": int(error.size)}


def ratio(pipeline_s, svd_s):
    """Whole pipeline seconds over SVD seconds; None when either is missing or the SVD took
    no measurable time."""
    if pipeline_s is None or not svd_s:
        return None
    return pipeline_s / svd_s


def _spread(values: list) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def summarise(rounds: list, target: float = TARGET_RATIO) -> dict:
    """Median (and range) over rounds of the ratio, the seconds and the scores; `met` is
    whether the median ratio is at most the target (None without any ratio)."""
    found = {}
    for key, get in (("ratio", lambda r: r.get("ratio")),
                     ("pipeline_s", lambda r: r.get("pipeline_s")),
                     ("svd_s", lambda r: r.get("svd", {}).get("seconds")),
                     ("pipeline_rmse", lambda r: r.get("pipeline", {}).get("rmse")),
                     ("pipeline_mae", lambda r: r.get("pipeline", {}).get("mae")),
                     ("svd_rmse", lambda r: r.get("svd", {}).get("rmse")),
                     ("svd_mae", lambda r: r.get("svd", {}).get("mae"))):
        values = [v for v in map(get, rounds) if v is not None]
        found[key] = _spread(values) if values else None
    components = [r["components_s"] for r in rounds if r.get("components_s")]
    found["components_s"] = common.summarize(components) if components else {}
    median = found["ratio"]["median"] if found["ratio"] else None
    found.update(rounds=len(rounds), target_ratio=target,
                 met=None if median is None else median <= target)
    return found


# --- the two sides ----------------------------------------------------------------------------

def fit_and_score(train: dict, evaluation: dict, seed: int = SVD_SEED) -> dict:
    """The tuned SVD fit on `train`'s rating columns and scored on `evaluation`'s; seconds of
    building the trainset, the fit and predicting, and RMSE/MAE."""
    try:
        from surprise import SVD, Dataset, Reader
    except ImportError as error:
        raise SystemExit(INSTALL_HINT) from error
    start = time.perf_counter()
    trainset = Dataset.load_from_df(surprise_frame(train), Reader(
        rating_scale=rating_scale(train))).build_full_trainset()
    built = time.perf_counter()
    model = SVD(**SVD_PARAMS, random_state=seed).fit(trainset)
    fitted = time.perf_counter()
    predictions = model.test(surprise_testset(evaluation))
    done = time.perf_counter()
    found = scores([p.est for p in predictions], evaluation[fk.RATING])
    found.update(trainset_s=built - start, fit_s=fitted - built, predict_s=done - fitted,
                 seconds=done - start, train_examples=trainset.n_ratings)
    return found


def _split_files(examples: list, split: str) -> list:
    """The file patterns of one split of Examples artifacts, as TFX gives them to the Trainer."""
    return [io_utils.all_files_pattern(uri)
            for uri in artifact_utils.get_split_uris(examples, split)]


def pipeline_splits(home: Path) -> tuple:
    """(train, eval) Examples of the home's latest run, read with its schema: the Trainer's
    train split and the run's eval split, which for a cold run on one data set come from the
    same Examples artifact (checked)."""
    store = open_store(configs.Paths(str(home)).metadata_path)
    try:
        run_id = list_runs(store)[-1]["run_id"]
        examples = run_outputs(store, run_id)["examples"]
        trainers = [x for x in store.executions(node=nodes.TRAINER_ID, run=run_id)
                    if succeeded(x)]
        if examples is None or not trainers:
            raise SystemExit(f"run {run_id} in {home} has no Examples or no finished Trainer")
        inputs = store.inputs(trainers[-1].id)
    finally:
        store.handle.__exit__(None, None, None)
    window = inputs.get("examples", [])
    if [a.id for a in window] != [examples.id]:
        raise SystemExit(f"run {run_id}: the Trainer read Examples {[a.id for a in window]}, "
                         f"not the run's Examples {examples.id} alone")
    schema = data.read_schema(io_utils.get_only_uri_in_dir(inputs["schema"][0].uri))
    return (data.load_examples(_split_files([examples], TRAIN), schema),
            data.load_examples(_split_files([examples], EVAL), schema))


def trainer_eval(home: Path) -> dict:
    """The Trainer's own final scores on the eval split (its metrics.json), of the latest run."""
    store = open_store(configs.Paths(str(home)).metadata_path)
    try:
        model_run = run_outputs(store, list_runs(store)[-1]["run_id"]).get("model_run")
        report = read_model_run(store.local(model_run.uri)) if model_run is not None else None
    finally:
        store.handle.__exit__(None, None, None)
    final = ((report or {}).get("final") or {}).get(EVAL) or {}
    return {key: final.get(key) for key in ("rmse", "mae", "examples")}


def run_pipeline(data_dir: Path, home: Path, log: Path, extra: list) -> dict:
    """The local runner cold in a fresh home: wall seconds, per-component seconds, the
    Evaluator's and the Trainer's eval scores."""
    shutil.rmtree(home, ignore_errors=True)
    rc, wall = span_bench.run_runner(data_dir, home, log, extra)
    if rc != 0:
        raise SystemExit(f"the pipeline failed (rc {rc}); see {log}")
    run = span_bench.read_run(home)
    return {"pipeline_s": wall,
            "components_s": common.component_seconds(configs.Paths(str(home)).metadata_path),
            "pipeline": {"rmse": run.get("rmse"), "mae": run.get("mae"),
                         "examples": run.get("eval_examples"), "status": run.get("status"),
                         "trainer_eval": trainer_eval(home)}}


# --- data, table, main ------------------------------------------------------------------------

def dataset(name: str, work: Path, small: bool) -> tuple:
    """(data folder for --data, description) of the benchmark's data set."""
    if name == "ml100k":
        info = span_bench.ml100k_spans(work, 1)
        return work / "release" / "ml-100k", {k: info[k] for k in ("name", "source", "ratings")}
    config = span_bench.SMALL_DATA if small else configs.EMBEDDED_DATA
    report = synthetic.ensure_generated(work / "data", config)
    return Path(report.out_dir), {"name": f"generated ({config.n_ratings} ratings)",
                                  "generator": config.to_dict()}


def _cell(value, fmt: str = "{:.1f}") -> str:
    return "" if value is None else fmt.format(value)


def markdown(rounds: list, summary: dict) -> str:
    head = (["round", "pipeline s"] + [f"{node} s" for node in TABLE_NODES]
            + ["SVD s (trainset / fit / predict)", "ratio", "pipeline RMSE", "pipeline MAE",
               "SVD RMSE", "SVD MAE"])
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for number, row in enumerate(rounds, 1):
        svd, pipe = row["svd"], row["pipeline"]
        cells = [str(number), _cell(row["pipeline_s"])]
        cells += [_cell(row["components_s"].get(node)) for node in TABLE_NODES]
        cells += [f"{svd['seconds']:.2f} ({svd['trainset_s']:.2f} / {svd['fit_s']:.2f} / "
                  f"{svd['predict_s']:.2f})", _cell(row["ratio"], "{:.2f}"),
                  _cell(pipe["rmse"], "{:.4f}"), _cell(pipe["mae"], "{:.4f}"),
                  _cell(svd["rmse"], "{:.4f}"), _cell(svd["mae"], "{:.4f}")]
        lines.append("| " + " | ".join(cells) + " |")
    found = summary["ratio"]
    lines.append("")
    lines.append("median ratio " + (
        f"{found['median']:.2f} (range {found['min']:.2f}-{found['max']:.2f}) over "
        f"{summary['rounds']} round(s); target <= {summary['target_ratio']}: "
        f"{'met' if summary['met'] else 'not met'}" if found else "not measured"))
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=["generated", "ml100k"], default="generated",
                        help="generated: the embedded default generated set (default); "
                             "ml100k: real MovieLens-100K")
    parser.add_argument("--repeats", type=int, default=3,
                        help="rounds of pipeline then SVD (default 3; --small: 1)")
    parser.add_argument("--small", action="store_true",
                        help="smoke test: tiny generated data, short training, one round; "
                             "results under benchmarks/_work")
    args = parser.parse_args(argv)
    if args.small and args.dataset != "generated":
        parser.error("--small is a smoke test on tiny generated data: use --dataset generated")
    repeats = 1 if args.small else args.repeats
    if repeats < 1:
        parser.error("--repeats must be >= 1")
    if importlib.util.find_spec("surprise") is None:  # before the first pipeline run
        parser.error(INSTALL_HINT)
    name = f"versus_svd_{args.dataset}" + ("_small" if args.small else "")
    work = Path(common.WORK_DIR) / name
    started = common.machine()
    data_dir, info = dataset(args.dataset, work, args.small)
    extra = [f"--hparam={h}" for h in span_bench.SMALL_HPARAMS] if args.small else []

    rounds = []
    for number in range(1, repeats + 1):
        row = run_pipeline(data_dir, work / "home", work / "logs" / f"run-{number}.log", extra)
        train, evaluation = pipeline_splits(work / "home")
        row["svd"] = fit_and_score(train.columns, evaluation.columns)
        row["ratio"] = ratio(row["pipeline_s"], row["svd"]["seconds"])
        row["splits"] = {TRAIN: len(train), EVAL: len(evaluation)}
        # Both models scored on the same examples: the Evaluator's count is the split's.
        row["same_eval_examples"] = row["pipeline"]["examples"] == len(evaluation)
        rounds.append(row)
        print(f"round {number}: pipeline {row['pipeline_s']:.1f} s (RMSE "
              f"{_cell(row['pipeline']['rmse'], '{:.4f}')}), SVD {row['svd']['seconds']:.1f} s "
              f"(RMSE {row['svd']['rmse']:.4f}), ratio {_cell(row['ratio'], '{:.2f}')}",
              flush=True)

    summary = summarise(rounds)
    payload = {"benchmark": "versus_svd", "protocol": __doc__, "machine": started,
               "dataset": args.dataset, "data": info, "small": args.small,
               "runner_flags": extra, "svd": {**SVD_PARAMS, "random_state": SVD_SEED},
               "rounds": rounds, "summary": summary}
    path = common.write_results(name, payload, work if args.small else common.RESULTS_DIR)
    print("\n" + markdown(rounds, summary))
    print(f"\nwritten to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
