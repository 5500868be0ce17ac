"""Benchmark: MovieLensExampleGen and StatisticsGen on the default ML-1M-size generated set.

Protocol: the embedded default data set (1,000,209 ratings) is generated once under
benchmarks/_work; the data slice of the pipeline runs under LocalDagRunner with caching off,
Beam DirectRunner in multi-processing mode with one worker per core, `--repeats` times; each
component's wall time is read from ML Metadata (execution create -> last update). Medians are
reported: these machines are shared and noisy. Targets (issue 2, 2 cores): ExampleGen <= 45 s,
StatisticsGen <= 15 s.

    .venv/bin/python benchmarks/data_pipeline.py [--repeats 3]
"""

import argparse
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (this script's folder)

from kiko.components.movielens_example_gen.component import (  # noqa: E402
    locate_input, make_input_config)
from kiko.pipeline import nodes  # noqa: E402
from kiko.data import synthetic  # noqa: E402
from kiko.data.movielens.source import resolve_source  # noqa: E402
from kiko.pipeline import configs  # noqa: E402
from kiko.pipeline.kiko_pipeline import create_pipeline  # noqa: E402
from tfx import v1 as tfx  # noqa: E402  (after kiko: it selects Keras 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=0, help="0: one per core")
    args = parser.parse_args()

    started = common.machine()
    data = synthetic.ensure_generated(os.path.join(common.WORK_DIR, "synthetic-ml1m"),
                                      configs.EMBEDDED_DATA)
    source = resolve_source(data.out_dir)
    input_base, pattern = locate_input(source)
    runs = []
    for repeat in range(args.repeats):
        home = os.path.join(common.WORK_DIR, "data_pipeline_home")
        shutil.rmtree(home, ignore_errors=True)
        pipeline = create_pipeline(
            pipeline_name="kiko-bench", pipeline_root=os.path.join(home, "root"),
            input_base=input_base, input_config=make_input_config({"single_split": pattern}),
            schema_path=configs.schema_path(source.users is not None, source.movies is not None),
            metadata_path=os.path.join(home, "md.sqlite"),
            beam_pipeline_args=configs.beam_pipeline_args(args.workers),
            enable_cache=False, validate_only=True)
        start = time.time()
        tfx.orchestration.LocalDagRunner().run(pipeline)
        seconds = common.component_seconds(os.path.join(home, "md.sqlite"))
        seconds["whole_run"] = time.time() - start
        runs.append(seconds)
        print(f"run {repeat + 1}: " + ", ".join(f"{k} {v:.1f}s" for k, v in seconds.items()),
              flush=True)
    summary = common.summarize(runs)
    result = {"benchmark": "data_pipeline", "protocol": __doc__, "machine": started,
              "n_ratings": data.n_ratings, "runs": runs, "summary": summary,
              "targets_s": {nodes.EXAMPLE_GEN_ID: 45, nodes.STATISTICS_GEN_ID: 15}}
    path = common.write_results("data_pipeline", result)
    for key in (nodes.EXAMPLE_GEN_ID, nodes.STATISTICS_GEN_ID, "whole_run"):
        print(f"{key}: median {summary[key]['median']} s "
              f"(min {summary[key]['min']}, max {summary[key]['max']})")
    print(f"written to {path}")


if __name__ == "__main__":
    main()
