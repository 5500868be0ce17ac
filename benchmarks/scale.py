"""Benchmark: the whole default pipeline at 1M, 5M and 25M ratings: time and peak memory.

Protocol: for each size, generated data in the CSV layout of ML-20M and later (`kiko generate
--layout ml-csv`; 25M is ML-25M's size: 25,000,095 ratings, 162,541 users, 62,423 movies, of
which ~59k are rated; smaller sizes scale users with the ratings and movies with their square
root) is generated once under benchmarks/_work (not timed). Then `python
pipeline/local_runner.py --data DIR --home HOME` runs in a subprocess with a fresh home (cold,
defaults: DirectRunner in multi-processing mode, one worker per core) while the resident
memory of its whole process tree (runner + Beam workers) is sampled every 0.5 s. Each
component's seconds come from ML Metadata (execution create -> last update) and its peak
memory is the largest tree sample inside that window. `--validate-only` stops after the data
checks. Results go to benchmarks/results/scale.json (sizes not run keep their earlier rows;
each row has its date and the load average at its end); the cost per million ratings is each
number divided by the size in millions.

    .venv/bin/python benchmarks/scale.py [--sizes 1 5 25] [--validate-only]
"""

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time

import psutil

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (this script's folder)

from kiko.data import synthetic  # noqa: E402
from kiko.pipeline import configs  # noqa: E402

REPO = os.path.dirname(common.HERE)
ML25M = synthetic.GeneratorConfig.release("ml-25m")


def config_for(millions: float) -> synthetic.GeneratorConfig:
    """ML-25M's shape at `millions` million ratings (exactly ML-25M at 25)."""
    if millions == 25:
        return ML25M
    fraction = millions * 1e6 / ML25M.n_ratings
    return synthetic.GeneratorConfig(
        n_ratings=int(millions * 1e6), n_users=round(ML25M.n_users * fraction),
        n_movies=round(ML25M.n_movies * math.sqrt(fraction)), layout=ML25M.layout)


def tree_rss(process: psutil.Process) -> int:
    total = 0
    for p in [process] + process.children(recursive=True):
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def run_pipeline(data_dir: str, home: str, validate_only: bool) -> dict:
    args = [sys.executable, os.path.join(REPO, "pipeline", "local_runner.py"),
            "--data", data_dir, "--home", home]
    if validate_only:
        args.append("--validate-only")
    log = open(os.path.join(home, "runner.log"), "w")
    start = time.time()
    process = psutil.Popen(args, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    samples = []
    while process.poll() is None:
        samples.append((time.time(), tree_rss(process)))
        time.sleep(0.5)
    seconds = time.time() - start
    if process.returncode != 0:
        raise SystemExit(f"the pipeline failed (rc {process.returncode}); see {log.name}")
    windows = common.component_windows(configs.Paths(home).metadata_path)
    components = {}
    for node, (begin, end) in windows.items():
        inside = [rss for t, rss in samples if begin <= t <= end]
        components[node] = {"seconds": round(end - begin, 1),
                            "peak_tree_gb": round(max(inside, default=0) / 2 ** 30, 2)}
    return {"seconds": round(seconds, 1),
            "peak_tree_gb": round(max((rss for _, rss in samples), default=0) / 2 ** 30, 2),
            "components": components}


def _earlier_runs(name: str) -> list:
    path = os.path.join(common.RESULTS_DIR, f"{name}.json")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return json.load(f).get("runs", [])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[1, 5, 25],
                        help="millions of ratings (25 = ML-25M's size)")
    parser.add_argument("--validate-only", action="store_true",
                        help="stop after the data checks (ExampleGen .. AnomaliesGate)")
    args = parser.parse_args()
    started = common.machine()
    rows = []
    for millions in args.sizes:
        config = config_for(millions)
        data_dir = os.path.join(common.WORK_DIR, f"scale-{millions:g}m")
        generation = time.time()
        report = synthetic.ensure_generated(data_dir, config)
        print(f"{millions:g}M: data in {data_dir} ({report.n_ratings:,} ratings, "
              f"{report.n_users:,} users, {report.n_movies_rated:,} movies rated; "
              f"{time.time() - generation:.0f} s to generate or check)", flush=True)
        home = os.path.join(common.WORK_DIR, f"scale-home-{millions:g}m")
        shutil.rmtree(home, ignore_errors=True)
        os.makedirs(home)
        result = run_pipeline(data_dir, home, args.validate_only)
        row = {"millions": millions, "n_ratings": report.n_ratings, "n_users": report.n_users,
               "n_movies_rated": report.n_movies_rated, "date": time.strftime("%Y-%m-%d %H:%M"),
               "load_average_at_end": [round(x, 2) for x in os.getloadavg()], **result}
        rows.append(row)
        print(f"{millions:g}M: {result['seconds']} s, peak tree {result['peak_tree_gb']} GB; "
              + ", ".join(f"{node} {c['seconds']} s / {c['peak_tree_gb']} GB"
                          for node, c in result["components"].items()), flush=True)
    name = "scale" + ("_validate_only" if args.validate_only else "")
    # Sizes not run this time keep their earlier rows (each row has its date).
    kept = [row for row in _earlier_runs(name) if row["millions"] not in args.sizes]
    path = common.write_results(name, {
        "benchmark": "scale", "protocol": __doc__, "machine": started,
        "runs": sorted(kept + rows, key=lambda row: row["millions"]),
        "targets": {"peak_tree_gb": 12, "goal_peak_tree_gb": 8}})
    print(f"written to {path}")


if __name__ == "__main__":
    main()
