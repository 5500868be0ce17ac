"""Benchmark: the Beam components on kiko's DaskRunner vs the DirectRunner, ML-1M-size data.

Protocol: the embedded default data set (1,000,209 ratings) is generated once under
benchmarks/_work. The whole pipeline runs under LocalDagRunner with caching off and short
training (the Trainer is no Beam component; 2 epochs, 1 AutoRec epoch): with the DirectRunner in
multi-processing mode (one worker per core), and with --dask-scheduler on a dask.distributed
LocalCluster on the same machine (a scheduler and two single-threaded worker processes,
kiko preloaded), alternating, `--repeats` times each. Component wall times come from ML
Metadata (execution create -> last update). Medians are reported. The machine has 2 shared
cores: the numbers show what the cluster costs in overhead here, not what many machines gain.

    .venv/bin/python benchmarks/dask_runner.py [--repeats 1]
"""

import argparse
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (this script's folder)

from kiko.data import synthetic  # noqa: E402
from kiko.pipeline import nodes  # noqa: E402
from kiko.pipeline import configs, local_runner  # noqa: E402
from tfx import v1 as tfx  # noqa: E402  (after kiko: it selects Keras 2)

BEAM_NODES = (nodes.EXAMPLE_GEN_ID, nodes.STATISTICS_GEN_ID, nodes.EVALUATOR_ID)
HPARAMS = ("epochs=2", "autorec_epochs=1")


def _run(data_dir: str, home: str, *extra: str):
    shutil.rmtree(home, ignore_errors=True)
    argv = ["--data", data_dir, "--home", home, "--no-cache", "--rmse-upper-bound", "2.0"]
    for hparam in HPARAMS:
        argv += ["--hparam", hparam]
    start = time.time()
    tfx.orchestration.LocalDagRunner().run(local_runner.build(
        local_runner.parse_args(argv + list(extra))))
    seconds = common.component_seconds(configs.Paths(home).metadata_path)
    seconds["whole_run"] = time.time() - start
    return seconds


def main() -> None:
    from dask.distributed import LocalCluster

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    started = common.machine()
    data = synthetic.ensure_generated(os.path.join(common.WORK_DIR, "synthetic-ml1m"),
                                      configs.EMBEDDED_DATA)
    home = os.path.join(common.WORK_DIR, "dask_runner_home")
    runs = {"direct": [], "dask": []}
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0", preload=["kiko"]) as cluster:
        for repeat in range(args.repeats):
            for kind, extra in (("direct", ()),
                                ("dask", ("--dask-scheduler", cluster.scheduler_address))):
                seconds = _run(data.out_dir, home, *extra)
                runs[kind].append(seconds)
                print(f"run {repeat + 1} {kind}: " + ", ".join(
                    f"{k} {seconds[k]:.1f}s" for k in BEAM_NODES + ("whole_run",)), flush=True)
    summary = {kind: common.summarize(values) for kind, values in runs.items()}
    path = common.write_results("dask_runner", {
        "benchmark": "dask_runner", "protocol": __doc__, "machine": started,
        "machine_at_end": common.machine(), "n_ratings": data.n_ratings, "hparams": HPARAMS,
        "runs": runs, "summary": summary})
    for node in BEAM_NODES + ("whole_run",):
        print(f"{node}: DirectRunner {summary['direct'][node]['median']} s, "
              f"Dask {summary['dask'][node]['median']} s (medians)")
    print(f"written to {path}")


if __name__ == "__main__":
    main()
