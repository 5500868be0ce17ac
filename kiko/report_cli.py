"""`kiko report`: write the HTML report of a run (kiko.report) and print its path.

    kiko report [--home DIR] [--run RUN_ID] [--out FILE]
"""

import argparse
import sys
from typing import List, Optional

from kiko.pipeline import configs


def main(argv: Optional[List[str]] = None) -> int:
    """Writes the page; 0 on success, 2 for a missing or unreadable store, an unknown run or a
    page that cannot be written."""
    parser = argparse.ArgumentParser(
        prog="kiko report",
        description="Write one self-contained HTML page (charts embedded, no network) about a "
                    "pipeline run: data, training, evaluation and lineage; for data that "
                    "arrives as spans, the model over time.")
    parser.add_argument("--home", default="", help=f"pipeline home (default: "
                        f"${configs.HOME_ENV}, else ./{configs.DEFAULT_HOME})")
    parser.add_argument("--run", default=None, metavar="RUN_ID",
                        help="the run to describe (default: the latest; see `kiko inspect runs`)")
    parser.add_argument("--out", default="", metavar="FILE",
                        help=f"where to write the page (default: "
                             f"{configs.Paths('HOME').report_path})")
    args = parser.parse_args(argv)
    from kiko.metadata.store import StoreError, open_store
    from kiko.report import write_report

    home = configs.home_dir(args.home)
    try:
        store = open_store(configs.Paths(home).metadata_path)
        path = write_report(store, args.out or configs.Paths(home).report_path, args.run)
    except (FileNotFoundError, StoreError, LookupError, OSError) as error:
        print(f"kiko report: {error}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
