"""Benchmark: warm start against a cold retrain on the same window, span by span.

Protocol:
* Data: part 1's span sequences (`spans.py`): `--dataset ml100k` is real MovieLens-100K cut by
  timestamp into `--spans` spans of equal rating counts; `--dataset generated` is
  `generate_spans(GeneratorConfig(), SpanConfig(count=N))` (1,000,209 ratings in the ML-1M
  layout; later spans bring new users and movies and a mild taste drift).
* Warm sequence. One fresh pipeline home; for k = 1..N span k joins the feed folder and
  `pipeline/local_runner.py --data FEED --home HOME --drift warn --workers W` runs as a
  subprocess with the defaults: the Trainer warm-starts from the latest blessed model when the
  rules allow (run 1 has none, so it is cold), the window is every span, the Evaluator scores
  the candidate on span k's eval split.
* Cold twin. After warm run k (k >= 2), the home is copied (files hard-linked, the ML Metadata
  database and other top-level files copied) and the runner runs again in the copy with
  `--cold`: ExampleGen and StatisticsGen come from cache, the Trainer retrains from scratch on
  the same window (the same Examples artifacts), the Evaluator scores it on the same eval
  split. The copy is then deleted. Both Trainers run with the machine in the same state (one
  after the other), so their seconds compare.
* Whole cold run. A fresh home whose `--data` is spans 1..N as one data set (the full pipeline):
  its wall seconds against warm run N's (a run that adds the newest span).
* Recorded per span: the warm run's start mode and reason (metrics.json), Trainer seconds of
  both (ML Metadata: execution create -> last update), candidate RMSE/MAE on span k's eval
  split of both (TFMA, the Evaluator's metrics), the run's wall seconds.
* Targets (issue 20), over spans 2..N: median warm/cold Trainer seconds <= 0.40; |warm RMSE -
  cold RMSE| <= 0.003 on every span and mean difference <= 0.001; warm run N's wall seconds
  <= 0.40 of the whole cold run's.

    .venv/bin/python benchmarks/warm_start.py --dataset ml100k|generated [--spans 10]
        [--workers 0] [--hparam KEY=VALUE ...] [--small]

`--small` is a smoke test (tiny generated data in 3 spans, short training), not a measurement:
its results go to benchmarks/_work, not results/.
"""

import argparse
import os
import shutil
import statistics
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (this script's folder)
import spans as span_bench  # noqa: E402

from kiko.data.synthetic import GeneratorConfig  # noqa: E402
from kiko.metadata.runs import list_runs, run_outputs  # noqa: E402
from kiko.metadata.store import open_store  # noqa: E402
from kiko.metadata.training import read_model_run  # noqa: E402
from kiko.pipeline import configs, nodes  # noqa: E402

TARGET_TIME_RATIO = 0.40
TARGET_RMSE_GAP = 0.003
TARGET_MEAN_GAP = 0.001
TARGET_RUN_RATIO = 0.40
_LINKED = ("pipeline_root", "serving_model")  # folders TFX only adds to: hard-linked


def copy_home(home: Path, out: Path) -> None:
    """``home`` as ``out``: its artifact folders hard-linked (no run rewrites a file in them),
    everything else (the ML Metadata database, logs, report) copied."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    for entry in home.iterdir():
        target = out / entry.name
        if entry.is_dir() and entry.name in _LINKED:
            shutil.copytree(entry, target, copy_function=os.link)
        elif entry.is_dir():
            shutil.copytree(entry, target)
        else:
            shutil.copy2(entry, target)


def trainer_start(home: Path) -> dict:
    """The latest run's Trainer account of how it started (metrics.json "start")."""
    store = open_store(configs.Paths(str(home)).metadata_path)
    try:
        run_id = list_runs(store)[-1]["run_id"]
        model_run = run_outputs(store, run_id).get("model_run")
        report = read_model_run(store.local(model_run.uri)) if model_run is not None else None
        start = (report or {}).get("start") or {}
        history = (report or {}).get("members") or []
        return {"mode": start.get("mode"), "reason": start.get("reason"),
                "epochs": {m["name"]: m.get("epochs_run") for m in history},
                **{key: (report or {}).get(key) for key in (
                    "train_seconds", "load_seconds", "score_seconds", "timings")}}
    finally:
        store.handle.__exit__(None, None, None)


def _trainer_s(row: dict):
    return row.get("seconds", {}).get(nodes.TRAINER_ID)


def summarise(pairs: list, warm_last: dict, cold_run: dict) -> dict:
    """The issue's measures over the spans that have both a warm and a cold candidate."""
    ratios = [p["warm_trainer_s"] / p["cold_trainer_s"] for p in pairs
              if p.get("warm_trainer_s") and p.get("cold_trainer_s")]
    gaps = [p["warm_rmse"] - p["cold_rmse"] for p in pairs
            if p.get("warm_rmse") is not None and p.get("cold_rmse") is not None]
    out = {"spans_compared": len(pairs),
           "median_trainer_ratio": statistics.median(ratios) if ratios else None,
           "trainer_ratios": ratios,
           "rmse_gaps": gaps,
           "max_abs_rmse_gap": max((abs(g) for g in gaps), default=None),
           "mean_rmse_gap": statistics.mean(gaps) if gaps else None,
           "run_ratio": (warm_last["wall_s"] / cold_run["wall_s"]
                         if warm_last and cold_run and cold_run.get("wall_s") else None)}
    out["met"] = {
        "trainer_time": out["median_trainer_ratio"] is not None
        and out["median_trainer_ratio"] <= TARGET_TIME_RATIO,
        "rmse_every_span": out["max_abs_rmse_gap"] is not None
        and out["max_abs_rmse_gap"] <= TARGET_RMSE_GAP,
        "rmse_mean": out["mean_rmse_gap"] is not None
        and abs(out["mean_rmse_gap"]) <= TARGET_MEAN_GAP,
        "whole_run": out["run_ratio"] is not None and out["run_ratio"] <= TARGET_RUN_RATIO}
    return out


def markdown(pairs: list, summary: dict, cold_run: dict) -> str:
    cell = span_bench._cell
    head = ["span", "start", "warm Trainer s", "cold Trainer s", "ratio", "warm RMSE",
            "cold RMSE", "RMSE warm - cold", "warm MAE", "cold MAE", "warm run s"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for p in pairs:
        ratio = (p["warm_trainer_s"] / p["cold_trainer_s"]
                 if p.get("warm_trainer_s") and p.get("cold_trainer_s") else None)
        gap = (p["warm_rmse"] - p["cold_rmse"] if p.get("warm_rmse") is not None
               and p.get("cold_rmse") is not None else None)
        lines.append("| " + " | ".join([
            cell(p["span"], "{}"), p.get("mode") or "", cell(p.get("warm_trainer_s"), "{:.1f}"),
            cell(p.get("cold_trainer_s"), "{:.1f}"), cell(ratio, "{:.2f}"),
            cell(p.get("warm_rmse")), cell(p.get("cold_rmse")), cell(gap, "{:+.4f}"),
            cell(p.get("warm_mae")), cell(p.get("cold_mae")),
            cell(p.get("warm_wall_s"), "{:.1f}")]) + " |")
    lines += ["", f"median warm/cold Trainer seconds {cell(summary['median_trainer_ratio'], '{:.2f}')} "
              f"(target <= {TARGET_TIME_RATIO}); largest |RMSE gap| "
              f"{cell(summary['max_abs_rmse_gap'])} (target <= {TARGET_RMSE_GAP}); mean gap "
              f"{cell(summary['mean_rmse_gap'], '{:+.4f}')} (target |.| <= {TARGET_MEAN_GAP}); "
              f"whole cold run {cell(cold_run.get('wall_s'), '{:.1f}')} s, warm run N / cold run "
              f"{cell(summary['run_ratio'], '{:.2f}')} (target <= {TARGET_RUN_RATIO})"]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=["ml100k", "generated"], required=True)
    parser.add_argument("--spans", type=int, default=10,
                        help="spans to cut the data into (default 10; --small: 3)")
    span_bench.add_run_flags(parser)
    args = parser.parse_args(argv)
    count = span_bench.SMALL_SPANS if args.small else args.spans
    if count < 2:
        parser.error("--spans must be >= 2 (span 1 has nothing to warm-start from)")
    hparams = (span_bench.SMALL_HPARAMS if args.small else []) + args.hparam
    name = f"warm_start_{args.dataset}" + ("_small" if args.small else "")
    work = Path(common.WORK_DIR) / name
    started = common.machine()
    # The spans are cut (or generated) once per dataset and shared with spans.py.
    spans_work = Path(common.WORK_DIR) / (f"spans_{args.dataset}"
                                          + ("_small" if args.small else ""))
    if args.dataset == "ml100k" and not args.small:
        info = span_bench.ml100k_spans(spans_work, count)
    else:
        info = span_bench.generated_spans(
            spans_work, span_bench.SMALL_DATA if args.small else GeneratorConfig(), count)
    spans = spans_work / "spans"
    extra = ["--workers", str(args.workers), "--drift", "warn"] + [
        f"--hparam={h}" for h in hparams]

    home, feed, twin = work / "home", work / "feed", work / "twin"
    for folder in (home, feed, twin):
        shutil.rmtree(folder, ignore_errors=True)
    feed.mkdir(parents=True)
    runs, pairs = [], []
    for k in range(1, count + 1):
        shutil.copytree(spans / f"span-{k}", feed / f"span-{k}")
        rc, wall = span_bench.run_runner(feed, home, work / "logs" / f"run-{k}.log", extra)
        row = {"fed_span": k, "rc": rc, "wall_s": wall, **span_bench.read_run(home),
               "start": trainer_start(home)}
        runs.append(row)
        print(f"run {k}: rc {rc}, {wall:.1f} s, {row['start']['mode']} start "
              f"({row['start']['reason']}), Trainer {_trainer_s(row)} s, RMSE "
              f"{span_bench._cell(row.get('rmse'))}", flush=True)
        if k == 1:
            continue
        copy_home(home, twin)
        twin_rc, twin_wall = span_bench.run_runner(
            feed, twin, work / "logs" / f"cold-twin-{k}.log", extra + ["--cold"])
        cold = {"rc": twin_rc, "wall_s": twin_wall, **span_bench.read_run(twin),
                "start": trainer_start(twin)}
        shutil.rmtree(twin, ignore_errors=True)
        pair = {"span": row.get("span"), "mode": row["start"]["mode"],
                "reason": row["start"]["reason"], "warm_epochs": row["start"]["epochs"],
                "cold_epochs": cold["start"]["epochs"], "cold_mode": cold["start"]["mode"],
                "warm_trainer_s": _trainer_s(row), "cold_trainer_s": _trainer_s(cold),
                "warm_rmse": row.get("rmse"), "cold_rmse": cold.get("rmse"),
                "warm_mae": row.get("mae"), "cold_mae": cold.get("mae"),
                "warm_wall_s": wall, "cold_twin_wall_s": twin_wall, "rc": [rc, twin_rc]}
        pairs.append(pair)
        print(f"  cold twin: rc {twin_rc}, Trainer {pair['cold_trainer_s']} s, RMSE "
              f"{span_bench._cell(pair['cold_rmse'])}", flush=True)

    data = span_bench.one_data_set(spans, count, work / "cold-run" / "data")
    cold_home = work / "cold-run" / "home"
    shutil.rmtree(cold_home, ignore_errors=True)
    rc, wall = span_bench.run_runner(data, cold_home, work / "logs" / "cold-run.log", extra)
    cold_run = {"spans": count, "rc": rc, "wall_s": wall, **span_bench.read_run(cold_home)}
    print(f"whole cold run on spans 1..{count}: rc {rc}, {wall:.1f} s", flush=True)

    summary = summarise(pairs, runs[-1], cold_run)
    payload = {"benchmark": "warm_start", "protocol": __doc__, "machine": started,
               "dataset": args.dataset, "data": info, "spans": count, "workers": args.workers,
               "hparams": hparams, "small": args.small, "runs": runs, "pairs": pairs,
               "cold_run": cold_run, "summary": summary,
               "targets": {"trainer_ratio": TARGET_TIME_RATIO, "rmse_gap": TARGET_RMSE_GAP,
                           "mean_rmse_gap": TARGET_MEAN_GAP, "run_ratio": TARGET_RUN_RATIO}}
    path = common.write_results(name, payload, work if args.small else common.RESULTS_DIR)
    print("\n" + markdown(pairs, summary, cold_run))
    print(f"\nwritten to {path}")
    every = runs + [cold_run] + [{"rc": max(p["rc"])} for p in pairs]
    return 0 if all(r["rc"] == 0 for r in every) else 1


if __name__ == "__main__":
    sys.exit(main())
