"""The Trainer's own account of a model: the metrics.json it writes into its ModelRun folder
(members, blend, per-epoch history, skipped members, final scores, hyperparameters)."""

import json
import os
from typing import Any, Dict, Optional

from kiko.model import features as fk


def _read_json_file(path: str) -> Any:
    """A JSON file's content, None when missing or unreadable."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def read_model_run(model_run_uri: Optional[str]) -> Optional[Dict[str, Any]]:
    """The Trainer's metrics.json in its ModelRun folder (None when absent)."""
    if not model_run_uri:
        return None
    report = _read_json_file(os.path.join(model_run_uri, fk.METRICS_FILE))
    return report if isinstance(report, dict) else None


def training_members(report: Dict[str, Any]) -> Dict[str, Any]:
    """The Trainer's model members, blend, per-epoch history and skipped members (metrics.json)."""
    return {"members": list(report.get("members") or []), "blend": report.get("blend") or None,
            "history": list(report.get("history") or []),
            "skipped": dict(report.get("skipped_members") or {})}
