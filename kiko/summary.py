"""One run's account as aligned lines: what `kiko inspect` shows for a run and what a local run
prints at its end."""

from typing import Any, Dict, List

from kiko.text import duration, pairs


def summary_lines(run: Dict[str, Any]) -> List[str]:
    """The account of one run (`kiko.metadata.runs.run_summary`) as aligned lines."""
    status = run["status"] + (f" at {run['failed_node']}" if run["failed_node"] else "")
    items = [("run", run["run_id"]), ("status", status), ("started", run["started"]),
             ("duration", duration(run["duration_s"])),
             ("from cache", f"{run['cached']} executions")]
    if run["failure"]:
        items.append(("failure", run["failure"]))
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
    items += [("model", run["model_id"]), ("eval RMSE", run["eval_rmse"]),
              ("eval MAE", run["eval_mae"]), ("eval examples", run["eval_example_count"])]
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
