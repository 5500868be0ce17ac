"""`kiko inspect`: a pipeline home's ML Metadata as tables (or JSON).

    kiko inspect [--home DIR | --metadata PATH] [--json] [COMMAND]

Commands: summary (default: a run, the latest unless --run, and the pushed model), runs,
artifacts [--run ID], models, slices [--model ID], pushed, lineage [--model ID], spans. The data
comes from kiko.metadata (see kiko.inspect_views), so `--json` prints exactly what the tables
show.
"""

import argparse
import json
import sys
from typing import List, Optional

from kiko.pipeline import configs
from kiko.text import IDS_NOTE

# command -> help; kiko.inspect_views.VIEWS has what each one reads and prints.
_COMMANDS = {
    "summary": "a run (default: the latest) and the pushed model (default command)",
    "runs": "every pipeline run: status, cache use, timing, each node's state",
    "artifacts": "the artifacts each node output, per run",
    "models": "each Model: evaluation metrics, blessed, pushed",
    "slices": "TFMA metrics per slice for a model (default: the latest evaluated)",
    "pushed": "the currently pushed model, or why there is none",
    "lineage": "a model's inputs and what became of it (default: the pushed one, else the "
               "latest)",
    "spans": "each span ingested (newest first): version, examples, the data gate's drift "
             "verdict, the runs that trained on it (warm or cold start)",
}


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    common.add_argument("--home", metavar="DIR", help=f"pipeline home (default: "
                        f"${configs.HOME_ENV}, else ./{configs.DEFAULT_HOME})")
    common.add_argument("--metadata", metavar="PATH", help="ML Metadata SQLite file (default: "
                        "DIR/metadata.sqlite; overrides --home)")
    common.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser = argparse.ArgumentParser(
        prog="kiko inspect", parents=[common], epilog=IDS_NOTE,
        description="Inspect the kiko pipeline's ML Metadata: runs, artifacts, models, "
                    "slice metrics, pushes, lineage and spans.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_ in _COMMANDS.items():
        sub = commands.add_parser(name, help=help_, description=help_, parents=[common],
                                  epilog=IDS_NOTE)
        if name in ("artifacts", "summary"):
            sub.add_argument("--run", default=None, metavar="RUN_ID",
                             help="only this run (default: every run; summary: the latest)")
        if name in ("slices", "lineage"):
            sub.add_argument("--model", type=int, default=None, metavar="ID",
                             help="Model artifact id (see `models`)")
    return parser


def _store_path(args: argparse.Namespace) -> str:
    return getattr(args, "metadata", None) or configs.Paths(
        configs.home_dir(getattr(args, "home", ""))).metadata_path


def main(argv: Optional[List[str]] = None) -> int:
    """Runs one inspect command; 0 on success, 2 for a missing or unreadable store or an
    unknown run or model id."""
    args = _parser().parse_args(argv)
    from kiko.inspect_views import VIEWS
    from kiko.metadata.store import StoreError, open_store

    try:
        store = open_store(_store_path(args))
        gather, show = VIEWS[args.command or "summary"]
        data = gather(store, args)
    except (FileNotFoundError, StoreError, LookupError) as error:
        print(f"kiko inspect: {error}", file=sys.stderr)
        return 2
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2))
    else:
        show(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
