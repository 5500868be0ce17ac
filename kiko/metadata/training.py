"""The Trainer's own account of a model: the metrics.json it writes into its ModelRun folder
(members, blend, per-epoch history, skipped members, final scores, hyperparameters, how it
started: warm from a base model or cold, and why)."""

import json
import os
from typing import Any, Dict, Optional

from kiko.model import features as fk

# metrics.json's start mode of a warm start: kiko.model.warm_start.START_WARM, which is not
# imported here because that module loads TensorFlow.
START_WARM = "warm"
# The Trainer's input holding the model it warm started from (TFX's Trainer `base_model`).
BASE_MODEL_KEY = "base_model"


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


def training_start(report: Optional[Dict[str, Any]], base_model=None
                   ) -> Optional[Dict[str, Any]]:
    """How the Trainer started the model (metrics.json "start": mode, reason, warm_chain, kept
    and new users and movies, members), with `base_model_id`: the id of the Trainer's
    `base_model` input artifact (None without one). None for a model that has no such record
    (made before warm starts)."""
    start = (report or {}).get("start")
    if not isinstance(start, dict) or not start.get("mode"):
        return None
    return dict(start, base_model_id=base_model.id if base_model is not None else None)


def start_text(start: Dict[str, Any], brief: bool = False) -> str:
    """A training_start in words: `warm from model 6: kept 5,812 of 6,040 users and ...` or
    `cold: no blessed model trained before this data`; `brief` leaves out a warm start's details."""
    mode, reason = str(start.get("mode")), str(start.get("reason") or "")
    if mode != START_WARM:
        return f"{mode}: {reason}" if reason else mode
    head = "warm" + (f" from model {start['base_model_id']}"
                     if start.get("base_model_id") is not None else "")
    chain = start.get("warm_chain")
    if isinstance(chain, int) and chain > 1:
        head += f" ({chain} warm starts in a row)"
    if brief:
        return head
    # The Trainer's sentence begins by saying it warm started; the head says so already.
    if reason.startswith("warm start") and ": " in reason:
        reason = reason.split(": ", 1)[1]
    return f"{head}: {reason}" if reason else head
