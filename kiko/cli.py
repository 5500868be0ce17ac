"""`kiko` console script: one entry for the project's command-line tools.

    kiko download --dest DIR      fetch ml-1m.zip from GroupLens, verify, extract safely
    kiko generate --out DIR       write a synthetic data set in MovieLens-1M format
    kiko spans --data R --out DIR cut a MovieLens release into time-ordered spans
    kiko run [runner flags]       run the pipeline (same as python pipeline/local_runner.py)
    kiko inspect [...]            runs, artifacts, metrics, pushed model, lineage (ML Metadata)
    kiko report [--out FILE]      one self-contained HTML page about a run
    kiko predict --user U --movie M     the pushed model's predicted ratings
    kiko recommend --user U [-k 10]     the pushed model's top-k movies for a user
"""

import importlib
import logging
import os
import sys
import warnings
from typing import List, Optional

# command -> (module, function, help). Each function takes argv and returns an exit code; each
# module imports TensorFlow and the libraries that load it only when a command runs, so that
# `kiko COMMAND --help` answers at once.
_COMMANDS = {
    "download": ("kiko.data.download", "main",
                 "fetch ml-1m.zip, verify its checksum, extract safely"),
    "generate": ("kiko.data.synthetic.cli", "main",
                 "generate synthetic data in MovieLens-1M format"),
    "spans": ("kiko.data.spans_cut", "main",
              "cut a MovieLens release into time-ordered spans (span-1, span-2, ...)"),
    "run": ("kiko.pipeline.local_runner", "main", "run the pipeline locally (LocalDagRunner)"),
    "inspect": ("kiko.inspect_cli", "main",
                "runs, artifacts, metrics, pushed model and lineage"),
    "report": ("kiko.report_cli", "main", "write an HTML report of a run (data, training, "
               "evaluation, lineage)"),
    "predict": ("kiko.ask_cli", "predict_main",
                "predicted ratings of a user for movies, from the pushed model"),
    "recommend": ("kiko.ask_cli", "recommend_main",
                  "top-k movie recommendations for a user, from the pushed model"),
}
# Commands whose output is their own: TensorFlow's start-up chatter stays off it.
_QUIET = ("inspect", "report", "predict", "recommend", "spans")


def _usage() -> str:
    lines = ["usage: kiko COMMAND [ARGS...]   (kiko COMMAND --help for its flags)", "",
             "commands:"]
    lines += [f"  {name:<10} {help_}" for name, (_, _, help_) in _COMMANDS.items()]
    return "\n".join(lines)


def _quiet_libraries() -> None:
    """Before TensorFlow loads (TFX, TFMA and the SavedModel loader all bring it in)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    for category in (FutureWarning, DeprecationWarning, UserWarning):
        warnings.filterwarnings("ignore", category=category)


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in _COMMANDS:
        print(f"kiko: unknown command {command!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    if command in _QUIET:
        _quiet_libraries()
    module_name, function, _ = _COMMANDS[command]
    # argparse names the program after sys.argv[0]: make usage and errors say `kiko COMMAND`.
    sys.argv[0] = f"kiko {command}"
    result = getattr(importlib.import_module(module_name), function)(rest)
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
