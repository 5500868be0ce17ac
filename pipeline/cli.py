"""`kiko` console script: one entry for the project's command-line tools.

    kiko download --dest DIR     fetch ml-1m.zip from GroupLens, verify, extract safely
    kiko generate --out DIR      write a synthetic data set in MovieLens-1M format
    kiko run [runner flags]      run the pipeline (same as python pipeline/local_runner.py)
    kiko inspect [...]           runs, artifacts, metrics, pushed model, lineage (ML Metadata)
"""

import importlib
import sys
from typing import List, Optional

_COMMANDS = {
    "download": ("kiko_data.download", "fetch ml-1m.zip, verify its checksum, extract safely"),
    "generate": ("kiko_data.synthetic", "generate synthetic data in MovieLens-1M format"),
    "run": ("pipeline.local_runner", "run the pipeline locally (LocalDagRunner)"),
    "inspect": ("pipeline.inspect_metadata", "runs, artifacts, metrics, pushed model and lineage"),
}


def _usage() -> str:
    lines = ["usage: kiko COMMAND [ARGS...]   (kiko COMMAND --help for its flags)", "",
             "commands:"]
    lines += [f"  {name:<10} {help_}" for name, (_, help_) in _COMMANDS.items()]
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in _COMMANDS:
        print(f"kiko: unknown command {command!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(_COMMANDS[command][0])
    result = module.main(rest)
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
