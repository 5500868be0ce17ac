"""Benchmark: the whole default pipeline on the ML-1M-size generated set, cold and cached.

Protocol: `python pipeline/local_runner.py --home H` runs as a subprocess with a fresh home
(cold: the embedded data set is pre-generated into H first, so generation is not timed), then
the identical command runs again (cached re-run). Wall time is the whole process; memory is
the peak of the summed RSS of the process tree (runner + Beam workers), sampled every 0.2 s,
and the peak RSS of the runner process alone. Per-component seconds come from ML Metadata.
Targets (issue 4, 2 cores): <= 150 s cold, <= 15 s cached, peak RSS <= 3 GB.

    .venv/bin/python benchmarks/full_pipeline.py [--repeats 1]
"""

import argparse
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


def _run(home: str, kind: str):
    """Runs the local runner once; returns (seconds, peak tree RSS, peak runner RSS, rc)."""
    start = time.time()
    process = psutil.Popen([sys.executable, os.path.join(REPO, "pipeline", "local_runner.py"),
                            "--home", home], cwd=REPO, stdout=subprocess.DEVNULL,
                           stderr=open(os.path.join(home, f"runner-{kind}.log"), "w"))
    peak_tree = peak_main = 0
    while process.poll() is None:
        try:
            main = process.memory_info().rss
            tree = main + sum(c.memory_info().rss for c in process.children(recursive=True))
        except psutil.Error:
            continue
        peak_tree, peak_main = max(peak_tree, tree), max(peak_main, main)
        time.sleep(0.2)
    return time.time() - start, peak_tree, peak_main, process.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    started = common.machine()
    runs = []
    for repeat in range(args.repeats):
        home = os.path.join(common.WORK_DIR, "full_pipeline_home")
        shutil.rmtree(home, ignore_errors=True)
        os.makedirs(home)
        synthetic.ensure_generated(configs.Paths(home).embedded_data_dir, configs.EMBEDDED_DATA)
        for kind in ("cold", "cached"):
            seconds, tree, main_rss, rc = _run(home, kind)
            if rc != 0:
                raise SystemExit(f"{kind} run failed (rc {rc}); see {home}/runner-{kind}.log")
            entry = {"kind": kind, "seconds": seconds, "peak_tree_rss_gb": tree / 2 ** 30,
                     "peak_runner_rss_gb": main_rss / 2 ** 30,
                     "components_s": common.component_seconds(
                         configs.Paths(home).metadata_path)}
            runs.append(entry)
            print(f"run {repeat + 1} {kind}: {seconds:.1f} s, peak RSS tree "
                  f"{entry['peak_tree_rss_gb']:.2f} GB (runner {entry['peak_runner_rss_gb']:.2f}"
                  f" GB); components: "
                  + ", ".join(f"{k} {v:.1f}s" for k, v in entry["components_s"].items()),
                  flush=True)
    summary = {kind: common.summarize([{k: v for k, v in r.items() if isinstance(v, float)}
                                       for r in runs if r["kind"] == kind])
               for kind in ("cold", "cached")}
    path = common.write_results("full_pipeline", {
        "benchmark": "full_pipeline", "protocol": __doc__, "machine": started, "runs": runs,
        "summary": summary, "targets": {"cold_s": 150, "cached_s": 15, "peak_rss_gb": 3}})
    print(f"written to {path}")


if __name__ == "__main__":
    main()
