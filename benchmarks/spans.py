"""Benchmark: continuous training over spans, span by span, against cold runs on the same data.

Protocol:
* Data. `--dataset ml100k`: real MovieLens-100K ratings (`model_quality.ml100k_data`: the
  recbole==1.2.1 wheel, ratings only) written as an ml-100k layout folder (`u.data`) under
  benchmarks/_work, then cut by timestamp into `--spans` spans of equal rating counts
  (`kiko.data.spans_cut.cut`, what `kiko spans --count N` does). `--dataset generated`:
  `generate_spans(GeneratorConfig(), SpanConfig(count=N))` (1,000,209 ratings in the ML-1M
  layout with side files; later spans bring new users and movies and a mild taste drift),
  written once under benchmarks/_work and reused while its spans.json matches.
* Incremental runs. One fresh pipeline home. For k = 1..N, span k is copied into a feed folder
  (which then holds spans 1..k) and `pipeline/local_runner.py --data FEED --home HOME
  --drift warn --workers W [--hparam ...]` runs as a subprocess: it ingests the newest span,
  the gate compares it with the previous validated span (warn: a drifted natural span is
  measured, not stopped), the Trainer reads the window (default: every span), the Evaluator
  judges the candidate against the served model on span k's eval split. Caching stays on, as
  in production. Recorded per run: the process's wall seconds; each component's seconds from
  ML Metadata (execution create -> last update, that run's executions only); examples and
  bytes read (the run's Examples `data_quality`); the gate's verdict and drift measures;
  candidate and served (baseline) RMSE/MAE on the new span; blessed.
* Cold runs. For each K of `--cold-at` (default: the last span), a fresh home whose `--data`
  is one data set holding spans 1..K's ratings (the spans' ratings files concatenated, side
  files from span K), run with `--validate-only` (ExampleGen, StatisticsGen and the gate: what
  a run costs before training). Ratio: incremental run K's ExampleGen + StatisticsGen seconds
  over the cold run's. Target (issue 19): <= 0.40 for a run adding a 10 % span.

    .venv/bin/python benchmarks/spans.py --dataset ml100k|generated [--spans 10]
        [--cold-at K ...] [--workers 0] [--hparam KEY=VALUE ...] [--small]

`--small` is a smoke test, not a measurement: generated data of 150 users, 200 movies and 9,000
ratings in 3 spans (`--spans` still applies to ml100k), short training; its results go to
benchmarks/_work, not results/.
"""

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (this script's folder)
import model_quality  # noqa: E402

import numpy as np  # noqa: E402

from kiko.data.movielens.source import resolve_source  # noqa: E402
from kiko.data.spans_cut import cut, read_manifest  # noqa: E402
from kiko.data.synthetic import GeneratorConfig  # noqa: E402
from kiko.data.synthetic.spans import SpanConfig, generate_spans  # noqa: E402
from kiko.metadata.runs import failure_message, list_runs  # noqa: E402
from kiko.metadata.spans import model_over_time, span_rows  # noqa: E402
from kiko.metadata.store import open_store  # noqa: E402
from kiko.model import features as fk  # noqa: E402
from kiko.pipeline import configs, nodes  # noqa: E402

REPO = os.path.dirname(common.HERE)
RUNNER = os.path.join(REPO, "pipeline", "local_runner.py")
TARGET_RATIO = 0.40
SMALL_DATA = GeneratorConfig(n_users=150, n_movies=200, n_ratings=9000)
SMALL_SPANS = 3
SMALL_HPARAMS = ["epochs=3", "autorec_epochs=2", "embedding_dim=8", "autorec_units=16"]
EG_SG = (nodes.EXAMPLE_GEN_ID, nodes.STATISTICS_GEN_ID)
# The gate's drift measures shown in the table: (feature, measure) -> column.
DRIFT_COLUMNS = {("rating", "jensen_shannon_divergence"): "rating_jsd",
                 ("user_id", "unseen_fraction"): "unseen_users",
                 ("movie_id", "unseen_fraction"): "unseen_movies",
                 ("(examples)", "count_ratio"): "count_ratio"}
_UTF8_BOM = b"\xef\xbb\xbf"


# --- the spans ------------------------------------------------------------------------------

def ml100k_spans(work: Path, count: int) -> dict:
    """ML-100K's ratings as an ml-100k layout folder, cut into `count` spans under work/spans."""
    examples, info = model_quality.ml100k_data()
    columns = examples.columns
    release = work / "release" / "ml-100k"
    release.mkdir(parents=True, exist_ok=True)
    rows = np.column_stack([columns[fk.USER_ID], columns[fk.MOVIE_ID],
                            columns[fk.RATING].astype(np.int64), columns[fk.TIMESTAMP]])
    np.savetxt(release / "u.data", rows, fmt="%d", delimiter="\t")
    manifest = cut(str(release), work / "spans", count=count, force=True)
    return {**info, "ratings": manifest["source"]["ratings"], "spans": manifest["spans"]}


def generated_spans(work: Path, config: GeneratorConfig, count: int) -> dict:
    """`generate_spans` into work/spans, reused while its spans.json matches the request."""
    out = work / "spans"
    spans = SpanConfig(count=count)
    try:
        manifest = read_manifest(out)
        source = manifest["source"]
        fresh = source["generator"] != config.to_dict() or source["spans"]["count"] != count
    except (OSError, KeyError, ValueError):
        fresh = True
    if fresh:
        print(f"generating {config.n_ratings} ratings as {count} spans into {out}", flush=True)
        manifest = generate_spans(out, config, spans)
    return {"name": f"generated ({config.n_ratings} ratings)", "generator": config.to_dict(),
            "ratings": manifest["source"]["ratings"], "spans": manifest["spans"]}


def one_data_set(spans: Path, last: int, out: Path) -> Path:
    """Spans 1..last as one data set in their layout under `out`: the ratings files
    concatenated (a CSV header and byte-order mark kept from span 1 only), side files of
    span `last`."""
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(spans / f"span-{last}", out)
    layout = resolve_source(str(out)).layout
    with open(out / layout.ratings_file, "wb") as joined:
        for k in range(1, last + 1):
            with open(spans / f"span-{k}" / layout.ratings_file, "rb") as part:
                body = part.read()
            if k > 1:
                body = body[len(_UTF8_BOM):] if body.startswith(_UTF8_BOM) else body
                if layout.ratings_header is not None:
                    body = body.split(b"\n", 1)[1] if b"\n" in body else b""
            if body and not body.endswith(b"\n"):
                body += b"\n"
            joined.write(body)
    return out


# --- one run --------------------------------------------------------------------------------

def run_runner(data: Path, home: Path, log: Path, extra: list) -> tuple:
    """The local runner as a subprocess; (return code, wall seconds)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    start = time.time()
    with open(log, "w") as out:
        rc = subprocess.call([sys.executable, RUNNER, "--data", str(data), "--home", str(home),
                              *extra], cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    return rc, time.time() - start


def read_run(home: Path) -> dict:
    """What the home's latest run did: per-component seconds, its Examples (span, examples,
    bytes read), the gate's verdict and drift measures, the evaluation on the new span."""
    store = open_store(configs.Paths(str(home)).metadata_path)
    try:
        run = list_runs(store)[-1]
        found = {"run_id": run["run_id"], "status": run["status"],
                 "seconds": {r["node_id"]: r["duration_s"] for r in run["nodes"]}}
        if run["failed_node"]:
            found["failed_node"] = run["failed_node"]
            found["failure"] = failure_message(store, run["run_id"], run["failed_node"])
        made = [r for r in span_rows(store) if r["run_id"] == run["run_id"]]
        if made:
            row = made[0]
            drift = {DRIFT_COLUMNS[(m.get("feature"), m.get("measure"))]: m.get("value")
                     for m in row["drift"] if (m.get("feature"), m.get("measure")) in DRIFT_COLUMNS}
            found.update(span=row["span"], version=row["version"], examples=row["examples"],
                         bytes_read=row["bytes_read"], verdict=row["verdict"],
                         baseline_span=row["baseline_span"], drift=drift,
                         drift_measures=row["drift"])
        judged = [r for r in model_over_time(store) if r["run_id"] == run["run_id"]]
        if judged:
            row = judged[-1]
            found.update({key: row[key] for key in (
                "eval_examples", "rmse", "mae", "baseline_rmse", "baseline_mae", "blessed",
                "pushed")})
        return found
    finally:
        store.handle.__exit__(None, None, None)


def eg_sg_seconds(row: dict):
    """ExampleGen + StatisticsGen seconds of a run; None unless both ran to completion."""
    if any(row["seconds"].get(node) is None for node in EG_SG) or \
            row.get("failed_node") in EG_SG:
        return None
    return sum(row["seconds"][node] for node in EG_SG)


# --- the table ------------------------------------------------------------------------------

def _cell(value, fmt: str = "{:.4f}") -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return fmt.format(value) if isinstance(value, (int, float)) else str(value)


def markdown(runs: list, cold: list) -> str:
    head = ["run", "span", "examples read", "bytes read", "ExampleGen s", "StatisticsGen s",
            "Trainer s", "Evaluator s", "total s", "rating JSD", "unseen users",
            "unseen movies", "count ratio", "verdict", "candidate RMSE", "served RMSE",
            "blessed"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for number, row in enumerate(runs, 1):
        seconds, drift = row.get("seconds", {}), row.get("drift", {})
        cells = [str(number), _cell(row.get("span"), "{}"), _cell(row.get("examples"), "{:,}"),
                 _cell(row.get("bytes_read"), "{:,}")]
        cells += [_cell(seconds.get(node), "{:.1f}") for node in (
            nodes.EXAMPLE_GEN_ID, nodes.STATISTICS_GEN_ID, nodes.TRAINER_ID,
            nodes.EVALUATOR_ID)]
        cells.append(_cell(row["wall_s"], "{:.1f}"))
        cells += [_cell(drift.get(key)) for key in DRIFT_COLUMNS.values()]
        verdict = row.get("verdict") or ""
        cells += [verdict + (f" (runner rc {row['rc']})" if row["rc"] else ""),
                  _cell(row.get("rmse")), _cell(row.get("baseline_rmse")),
                  _cell(row.get("blessed"))]
        lines.append("| " + " | ".join(cells) + " |")
    if cold:
        lines += ["", "| cold run on spans 1..K | examples read | ExampleGen s | StatisticsGen s "
                  "| EG+SG s | incremental run K's EG+SG s | ratio |", "|" + " --- |" * 7]
        for row in cold:
            lines.append(
                f"| K = {row['spans']} | {_cell(row.get('examples'), '{:,}')} | "
                f"{_cell(row['seconds'].get(nodes.EXAMPLE_GEN_ID), '{:.1f}')} | "
                f"{_cell(row['seconds'].get(nodes.STATISTICS_GEN_ID), '{:.1f}')} | "
                f"{_cell(row['eg_sg_s'], '{:.1f}')} | "
                f"{_cell(row.get('incremental_eg_sg_s'), '{:.1f}')} | "
                f"{_cell(row.get('ratio'), '{:.3f}')} |")
    return "\n".join(lines)


# --- the benchmark --------------------------------------------------------------------------

def add_run_flags(parser: argparse.ArgumentParser) -> None:
    """--workers, --hparam and --small, shared with warm_start.py."""
    parser.add_argument("--workers", type=int, default=0,
                        help="the runner's Beam worker processes (default 0: one per core)")
    parser.add_argument("--hparam", action="append", default=[], metavar="KEY=VALUE",
                        help="passed to the runner (repeatable; after --small's)")
    parser.add_argument("--small", action="store_true",
                        help="smoke test: tiny generated data (3 spans), short training; "
                             "results under benchmarks/_work")



def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=["ml100k", "generated"], required=True)
    parser.add_argument("--spans", type=int, default=10, help="spans to cut the data into "
                        "(default 10; --small generates 3 spans of generated data)")
    parser.add_argument("--cold-at", type=int, nargs="+", default=None, metavar="K",
                        help="cold runs on spans 1..K for each K (default: the last span)")
    add_run_flags(parser)
    args = parser.parse_args(argv)
    count = SMALL_SPANS if args.small and args.dataset == "generated" else args.spans
    if count < 1:
        parser.error("--spans must be >= 1")
    cold_at = args.cold_at or [count]
    if any(not 1 <= k <= count for k in cold_at):
        parser.error(f"--cold-at: each K must be a span in 1..{count}, got {cold_at}")
    hparams = (SMALL_HPARAMS if args.small else []) + args.hparam
    name = f"spans_{args.dataset}" + ("_small" if args.small else "")
    work = Path(common.WORK_DIR) / name
    started = common.machine()

    if args.dataset == "ml100k":
        info = ml100k_spans(work, count)
    else:
        info = generated_spans(work, SMALL_DATA if args.small else GeneratorConfig(), count)
    spans = work / "spans"
    extra = ["--workers", str(args.workers)] + [f"--hparam={h}" for h in hparams]

    home, feed = work / "home", work / "feed"
    for folder in (home, feed):
        shutil.rmtree(folder, ignore_errors=True)
    feed.mkdir(parents=True)
    runs = []
    for k in range(1, count + 1):
        shutil.copytree(spans / f"span-{k}", feed / f"span-{k}")
        rc, wall = run_runner(feed, home, work / "logs" / f"run-{k}.log",
                              extra + ["--drift", "warn"])
        row = {"fed_span": k, "rc": rc, "wall_s": wall, **read_run(home)}
        runs.append(row)
        print(f"run {k}: rc {rc}, {wall:.1f} s, span {row.get('span')}, examples "
              f"{row.get('examples')}, verdict {row.get('verdict')}, candidate RMSE "
              f"{_cell(row.get('rmse'))}, served RMSE {_cell(row.get('baseline_rmse'))}"
              + (f"; failed: {row['failure']}" if row.get("failure") else ""), flush=True)

    cold = []
    for k in sorted(set(cold_at)):
        data = one_data_set(spans, k, work / f"cold-{k}" / "data")
        cold_home = work / f"cold-{k}" / "home"
        shutil.rmtree(cold_home, ignore_errors=True)
        rc, wall = run_runner(data, cold_home, work / "logs" / f"cold-{k}.log",
                              extra + ["--validate-only"])
        row = {"spans": k, "rc": rc, "wall_s": wall, **read_run(cold_home)}
        # The ratio needs both runs' ExampleGen and StatisticsGen done (the runner's exit
        # status also counts what came after them).
        row["eg_sg_s"] = eg_sg_seconds(row)
        row["incremental_eg_sg_s"] = eg_sg_seconds(runs[k - 1])
        if row["eg_sg_s"] and row["incremental_eg_sg_s"] is not None:
            row["ratio"] = row["incremental_eg_sg_s"] / row["eg_sg_s"]
        cold.append(row)
        print(f"cold run on spans 1..{k}: rc {rc}, {wall:.1f} s, EG+SG "
              f"{_cell(row['eg_sg_s'], '{:.1f}')} s, ratio {_cell(row.get('ratio'), '{:.3f}')}",
              flush=True)

    ratios = {str(row["spans"]): row.get("ratio") for row in cold}
    payload = {"benchmark": "spans", "protocol": __doc__, "machine": started,
               "dataset": args.dataset, "data": info, "spans": count, "workers": args.workers,
               "hparams": hparams, "small": args.small, "runs": runs, "cold": cold,
               "ratios": ratios, "target_ratio": TARGET_RATIO}
    path = common.write_results(name, payload, work if args.small else common.RESULTS_DIR)
    print("\n" + markdown(runs, cold))
    print(f"\nwritten to {path}")
    return 0 if all(r["rc"] == 0 for r in runs + cold) else 1


if __name__ == "__main__":
    sys.exit(main())
