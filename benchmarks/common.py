"""Helpers shared by the benchmark scripts (run on demand, never by the test suite)."""


import json
import os
import platform
import statistics
import time
from typing import Dict, List, Tuple

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

HERE = os.path.dirname(os.path.abspath(__file__))
WORK_DIR = os.path.join(HERE, "_work")  # gitignored: generated data, downloads, outputs
RESULTS_DIR = os.path.join(HERE, "results")


def machine() -> Dict[str, object]:
    """What the numbers were measured on (these machines are shared and noisy)."""
    load = os.getloadavg()
    return {"cpus": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "load_average_at_start": [round(x, 2) for x in load],
            "date": time.strftime("%Y-%m-%d %H:%M:%S")}


def component_windows(metadata_path: str) -> Dict[str, Tuple[float, float]]:
    """Node id -> (start, end) in seconds since the epoch of its (last) execution, from ML
    Metadata's timestamps, in execution order."""
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = metadata_path
    store = metadata_store.MetadataStore(config)
    windows = {}
    for context in store.get_contexts_by_type("node"):
        node = context.name.split(".", 1)[1]
        executions = store.get_executions_by_context(context.id)
        if executions:
            last = max(executions, key=lambda e: e.create_time_since_epoch)
            windows[node] = (last.create_time_since_epoch / 1000.0,
                             last.last_update_time_since_epoch / 1000.0)
    return dict(sorted(windows.items(), key=lambda item: item[1][0]))


def component_seconds(metadata_path: str) -> Dict[str, float]:
    """Node id -> seconds of its (last) execution, from ML Metadata's timestamps."""
    return {node: end - start for node, (start, end) in component_windows(metadata_path).items()}


def summarize(runs: List[Dict[str, float]]) -> Dict[str, Dict[str, float]]:
    """Per key: median, min and max over runs."""
    keys = sorted({k for run in runs for k in run})
    return {k: {"median": round(statistics.median(r[k] for r in runs if k in r), 2),
                "min": round(min(r[k] for r in runs if k in r), 2),
                "max": round(max(r[k] for r in runs if k in r), 2)} for k in keys}


def write_results(name: str, payload: Dict[str, object], folder: str = RESULTS_DIR) -> str:
    """``payload`` as ``folder``/``name``.json (a smoke test's go to its work folder: not a
    result)."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(str(folder), f"{name}.json")
    with open(path, "w") as f:
        json.dump(payload, f, indent=2, sort_keys=True, default=str)
        f.write("\n")
    return path
