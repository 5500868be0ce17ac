"""Progress of the workers, seen from the launcher through the shared output folder.

Beam's runners report nothing while a stage runs, and worker log lines do not reach the
console: every finished byte range leaves a small file (`<kind>-<range>` holding a count) in
its input split's progress folder, and a thread of the launcher sums them periodically.
"""

import threading
from typing import Optional

from absl import logging
from tfx.dsl.io import fileio

from kiko.components.movielens_example_gen.outputs import PROGRESS_DIR
from kiko.data.movielens.files import join

SCANNED, PARSED, TOTAL = "scanned", "parsed", "total"  # kinds of marks
EVERY_S = 10.0  # seconds between two progress lines


def progress_folder(examples_uri: str, input_name: str) -> str:
    """Where the ranges of one input split leave their marks."""
    return join(join(examples_uri, PROGRESS_DIR), input_name)


def mark(folder: str, kind: str, index: int, count: int) -> None:
    """Range `index` is done with `kind` (SCANNED: `count` lines, PARSED: `count` examples);
    TOTAL (index 0): the input split has `count` ranges."""
    with fileio.open(join(folder, f"{kind}-{index}"), "w") as f:
        f.write(str(count))


def summary(root: str) -> Optional[str]:
    """One line over every input split's marks under `root`, None before there are any."""
    if not fileio.exists(root):
        return None
    totals = {TOTAL: 0, SCANNED: 0, PARSED: 0, "examples": 0, "lines": 0}
    for folder in fileio.listdir(root):
        folder = join(root, folder.rstrip("/"))
        for name in fileio.listdir(folder):
            kind = name.split("-", 1)[0]
            with fileio.open(join(folder, name), "r") as f:
                count = int(f.read() or 0)
            if kind == TOTAL:
                totals[TOTAL] += count
            else:
                totals[kind] += 1
                totals["examples" if kind == PARSED else "lines"] += count
    if not totals[TOTAL]:
        return None
    return (f"MovieLensExampleGen: {totals[SCANNED]}/{totals[TOTAL]} ranges scanned "
            f"({totals['lines']:,} lines), {totals[PARSED]}/{totals[TOTAL]} parsed "
            f"({totals['examples']:,} examples)")


class ProgressReporter:
    """While entered, logs the summary of the marks under an Examples artifact every EVERY_S;
    on exit, removes the marks."""

    def __init__(self, examples_uri: str):
        self._root = join(examples_uri, PROGRESS_DIR)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._report, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *unused):
        self._stop.set()
        self._thread.join()
        if fileio.exists(self._root):
            fileio.rmtree(self._root)

    def _report(self):
        while not self._stop.wait(EVERY_S):
            try:
                line = summary(self._root)
            except (OSError, ValueError):  # a file being written: next time
                continue
            if line:
                logging.info(line)
