"""One run's account as aligned lines: what `kiko inspect` shows for a run and what a local run
prints at its end."""

from typing import Any, Dict, List, Tuple

from kiko.metadata.training import start_text
from kiko.text import duration, pairs


def _spans(spans: List[int]) -> str:
    if len(spans) > 2 and spans == list(range(spans[0], spans[-1] + 1)):
        return f"{spans[0]}-{spans[-1]}"
    return ", ".join(str(s) for s in spans)


def span_items(run: Dict[str, Any]) -> List[Tuple[str, Any]]:
    """The span lines of a run's account: the span ingested, the window trained on, drift."""
    items: List[Tuple[str, Any]] = []
    if run.get("span") is not None:
        items.append(("span", f"{run['span']} (version {run.get('version') or 0})"))
    if run.get("window"):
        items.append(("trained on spans", _spans(run["window"])))
    drift = run.get("drift")
    if drift:
        if drift.get("baseline_span", -1) < 0:
            items.append(("drift", "first span: nothing earlier to compare with"))
        else:
            measures = "; ".join(
                f"{m['feature']} {m['measure'].replace('_', ' ')} {m['value']:.3g}"
                + (" EXCEEDED" if m["exceeded"] else "") for m in drift.get("measures", []))
            items.append(("drift", f"{drift['verdict'].replace('_', ' ')} against span "
                                   f"{drift['baseline_span']}: {measures}"))
    return items


def summary_lines(run: Dict[str, Any]) -> List[str]:
    """The account of one run (`kiko.metadata.runs.run_summary`) as aligned lines."""
    status = run["status"] + (f" at {run['failed_node']}" if run["failed_node"] else "")
    items = [("run", run["run_id"]), ("status", status), ("started", run["started"]),
             ("duration", duration(run["duration_s"])),
             ("from cache", f"{run['cached']} executions")]
    if run["failure"]:
        items.append(("failure", run["failure"]))
    if run.get("nothing_new"):
        items.append(("new data", "none: this span was ingested before and nothing changed; "
                                  "every step was served from cache"))
    items += span_items(run)
    quality = run.get("data_quality") or {}
    if quality:
        counts = ", ".join(f"{key.replace('_', ' ')} {quality[key]:,}" for key in (
            "lines_read", "examples", "rejected_lines", "duplicates_exact",
            "duplicates_conflicting", "ratings_without_user", "ratings_without_movie")
            if isinstance(quality.get(key), int))
        items.append(("data", counts))
    if run.get("rejected_lines"):
        items.append(("rejected lines", f"{run['rejected_lines']:,} skipped (kept in the "
                                        "Examples artifact's rejected_lines/)"))
    if run.get("start"):
        items.append(("start", start_text(run["start"])))
    items += [("model", run["model_id"]), ("eval RMSE", run["eval_rmse"]),
              ("eval MAE", run["eval_mae"]), ("eval examples", run["eval_example_count"])]
    if run.get("served_rmse") is not None:
        # The live model on the same new data: the monitoring figure of the served model.
        items.append(("served model", f"model {run['served_model_id']}: RMSE "
                                      f"{run['served_rmse']:.4f}, MAE {run['served_mae']:.4f} "
                                      "on the same eval split"))
    blend = run.get("blend")
    if blend:
        names = blend.get("names") or [f"w{i + 1}" for i in range(len(blend["weights"]))]
        text = ", ".join(f"{n} {w:.3f}" for n, w in zip(names, blend["weights"]))
        if blend.get("intercept") is not None:
            text += f", intercept {blend['intercept']:.3f}"
        items.append(("blend", text))
    skipped = run.get("skipped_members")
    if skipped:
        items.append(("not trained", f"{', '.join(skipped)}: "
                                     + "; ".join(dict.fromkeys(skipped.values()))))
    items += [("blessed", run["blessed"]), ("pushed to", run["pushed_path"])]
    if run["not_pushed_reason"]:
        items.append(("not pushed", run["not_pushed_reason"]))
    return pairs(items, "  ").splitlines()
