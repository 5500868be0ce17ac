"""`kiko inspect`: a pipeline home's ML Metadata as tables (or JSON).

    kiko inspect [--home DIR | --metadata PATH] [--json] [COMMAND]

Commands: summary (default: a run, the latest unless --run, and the pushed model), runs,
artifacts [--run ID], models, slices [--model ID], pushed, lineage [--model ID]. The data comes
from pipeline.metadata_reader, so `--json` prints exactly what the tables show.
"""

import argparse
import json
import sys
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from tabulate import tabulate

from pipeline import configs
from pipeline.metadata_reader import (  # noqa: F401  (re-exported for scripts and tests)
    COMPLETE, EXAMPLE_COUNT, FAILED, MAE, MSE, NO_RUNS, OVERALL, RMSE, RUNNING, StoreError,
    lineage, list_artifacts, list_models, list_runs, model_slices, open_store, pushed_model,
    run_summary)

IDS_NOTE = ("Ids are ML Metadata ids; an artifact's folder is numbered by the execution that "
            "wrote it (Model 11 may live in Trainer/model/15).")


def fmt(value: Any, digits: int = 4) -> str:
    """A cell: '-' for None, yes/no for booleans, fixed decimals for floats."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def duration(seconds: Optional[float]) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes}m{rest:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], indent: str = "") -> str:
    """An aligned plain-text table (tabulate), every cell formatted by `fmt`."""
    text = tabulate([[fmt(c) for c in row] for row in rows], headers=list(headers),
                    tablefmt="plain", disable_numparse=True)
    return "\n".join(indent + line.rstrip() for line in text.splitlines())


def pairs(items: Sequence[Tuple[str, Any]], indent: str = "") -> str:
    return table(["", ""], items, indent).split("\n", 1)[1]


def _metric(metrics: Optional[Dict[str, float]], name: str) -> Any:
    value = (metrics or {}).get(name)
    return int(value) if value is not None and name == EXAMPLE_COUNT else value


def _print_runs(runs: List[Dict[str, Any]]) -> None:
    if not runs:
        print("no pipeline runs")
    for i, run in enumerate(runs):
        print(("\n" if i else "") + f"run {run['run_id']}  {run['status']}  started "
              f"{fmt(run['started'])}  took {duration(run['duration_s'])}  ({run['executions']} "
              f"executions, {run['cached']} from cache)")
        print(table(["NODE", "STATE", "EXECUTION", "STARTED", "DURATION"],
                    [[n["node_id"], n["state"], n["execution_id"], n["started"],
                      duration(n["duration_s"])] for n in run["nodes"]], "  "))
        if run["not_run"]:
            print(f"  not run: {', '.join(run['not_run'])}")


def _details(row: Dict[str, Any]) -> str:
    return " ".join(f"{key}={fmt(row[key])}" for key in (
        "splits", "rejected_lines", "blessed", "model_id", "pushed", "destination")
        if row.get(key) is not None)


def _print_artifacts(rows: List[Dict[str, Any]]) -> None:
    if not rows:
        print("no artifacts")
        return
    for i, run_id in enumerate(dict.fromkeys(r["run_id"] for r in rows)):
        print(("\n" if i else "") + f"run {run_id}")
        print(table(["NODE", "KEY", "TYPE", "ID", "STATE", "ORIGIN", "URI", "DETAILS"],
                    [[r["node_id"], r["key"], r["type"], r["artifact_id"], r["state"],
                      r["origin"], r["uri"], _details(r)] for r in rows if r["run_id"] == run_id],
                    "  "))
    print(f"\n{IDS_NOTE}")


def _print_models(models: List[Dict[str, Any]]) -> None:
    if not models:
        print("no models")
        return
    print(table(
        ["MODEL", "RUN", "RMSE", "MAE", "MSE", "EXAMPLES", "BASELINE", "BASE RMSE", "VALID",
         "BLESSED", "PUSHED", "PUSHED TO", "URI"],
        [[m["model_id"], m["run_id"], _metric(m["metrics"], RMSE), _metric(m["metrics"], MAE),
          _metric(m["metrics"], MSE), _metric(m["metrics"], EXAMPLE_COUNT),
          m["baseline_model_id"], _metric(m["baseline_metrics"], RMSE), m["validation_ok"],
          m["blessed"], m["pushed"], m["pushed_destination"], m["uri"]] for m in models]))
    print(f"\n{IDS_NOTE}")


def _print_slices(result: Dict[str, Any]) -> None:
    print(f"model {result['model_id']}  evaluation {result['evaluation_id']}  "
          f"run {result['run_id']}  {result['evaluation_uri']}")
    slices = result.get("slices") or []
    baseline = any(s["baseline_metrics"] for s in slices)
    print(table(["SLICE", "EXAMPLES", "RMSE", "MAE", "MSE"] + (["BASE RMSE"] if baseline else []),
                [[s["slice"]] + [_metric(s["metrics"], m) for m in (EXAMPLE_COUNT, RMSE, MAE, MSE)]
                 + ([_metric(s["baseline_metrics"], RMSE)] if baseline else []) for s in slices]))
    if result.get("metrics_error"):
        print(f"could not read the evaluation: {result['metrics_error']}")


def _print_pushed(result: Dict[str, Any]) -> None:
    if not result["pushed"]:
        print(f"no model has been pushed: {result['reason']}")
        return
    print(pairs([("destination", result["destination"]), ("version", result["version"]),
                 ("model", result["model_id"]), ("model uri", result["model_uri"]),
                 ("run", result["run_id"]), ("pushed at", result["pushed_at"])]))
    if not result["destination_exists"]:
        print("warning: the destination folder no longer exists")
    if result["latest_attempt"]:
        print(f"not replaced by the latest attempt: {result['latest_attempt']}")


def _print_lineage(result: Dict[str, Any]) -> None:
    model, trainer = result["model"], result["trainer"]
    if result["chosen"].startswith("latest"):
        print(f"No model has been pushed: showing the latest model, {model['id']}.")
    print(f"Model {model['id']}  {model['uri']}  (created {model['created']})")
    if trainer:
        print(f"  <- Trainer execution {trainer['execution_id']}"
              f"  run {trainer['run_id']}  {trainer['state']}  took "
              f"{duration(trainer['duration_s'])}")
        overrides = ", ".join(f"{k}={v}" for k, v in (trainer["hparam_overrides"] or {}).items())
        print(f"       hparam overrides: {overrides or 'none'}")
        if trainer["hparams"]:
            print("       hparams: " + ", ".join(f"{k}={v}" for k, v in trainer["hparams"].items()))
        print(f"       model code {trainer['model_code']}  run_fn {trainer['run_fn']}")
        for split, values in (trainer["final_metrics"] or {}).items():
            print(f"       trainer {split}: RMSE {fmt(values.get('rmse'))}  MAE "
                  f"{fmt(values.get('mae'))}  ({values.get('examples')} examples)")
    examples, gen, schema = result["examples"], result["example_gen"], result["schema"]
    if examples:
        print(f"  <- Examples {examples['id']}  {examples['uri']}  splits "
              f"{fmt(examples.get('splits'))}  rejected_lines "
              f"{fmt(examples.get('rejected_lines'))}")
    if gen:
        patterns = ", ".join(f"{k}: {v}" for k, v in gen["input_patterns"].items())
        print(f"  <- {gen['node_id']} execution {gen['execution_id']}  run {gen['run_id']}  "
              f"input_base {gen['input_base']}  pattern {patterns or '-'}  "
              f"malformed_lines {fmt(gen['malformed_lines'])}")
    if schema:
        print(f"  <- Schema {schema['id']}  {schema['uri']}  (from {schema['schema_file']} by "
              f"{schema['node_id']})")
    for e in result["evaluations"]:
        print(f"  -> Evaluator execution {e['evaluator_execution_id']}  run {e['run_id']}  "
              f"ModelEvaluation {fmt(e['evaluation_id'])}  RMSE {fmt(_metric(e['metrics'], RMSE))}"
              f"  baseline {fmt(e['baseline_model_id'])}  ModelBlessing {fmt(e['blessing_id'])} "
              f"blessed {fmt(e['blessed'])}")
    for push in result["pushes"]:
        where = f" to {push['destination']}" if push["pushed"] else ""
        print(f"  -> Pusher execution {push['pusher_execution_id']}  run {push['run_id']}  "
              f"PushedModel {push['pushed_model_id']}  pushed {fmt(push['pushed'])}{where}")
    if not result["evaluations"]:
        print("  (never evaluated)")


def summary_lines(run: Dict[str, Any]) -> List[str]:
    """The account of one run (metadata_reader.run_summary) as aligned lines; also the end of
    a pipeline run."""
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


def _print_summary(result: Dict[str, Any]) -> None:
    run = result["run"]
    print("run")
    print("\n".join(summary_lines(run)))
    print("serving")
    current = result["pushed"]
    if current["pushed"]:
        print(pairs([("model", current["model_id"]), ("destination", current["destination"]),
                     ("pushed at", current["pushed_at"]), ("run", current["run_id"])], "  "))
    elif run["not_pushed_reason"] and current["reason"].endswith(run["not_pushed_reason"]):
        print("  no model has been pushed (see above)")
    else:
        print(f"  no model has been pushed: {current['reason']}")


def _summary(store, args) -> Dict[str, Any]:
    return {"run": run_summary(store, getattr(args, "run", None)),
            "pushed": pushed_model(store)}


_COMMANDS: Dict[str, Tuple[str, Callable[..., Any], Callable[[Any], None]]] = {
    "summary": ("a run (default: the latest) and the pushed model (default command)",
                _summary, _print_summary),
    "runs": ("every pipeline run: status, cache use, timing, each node's state",
             lambda store, args: list_runs(store), _print_runs),
    "artifacts": ("the artifacts each node output, per run",
                  lambda store, args: list_artifacts(store, args.run), _print_artifacts),
    "models": ("each Model: evaluation metrics, blessed, pushed",
               lambda store, args: list_models(store), _print_models),
    "slices": ("TFMA metrics per slice for a model (default: the latest evaluated)",
               lambda store, args: model_slices(store, args.model), _print_slices),
    "pushed": ("the currently pushed model, or why there is none",
               lambda store, args: pushed_model(store), _print_pushed),
    "lineage": ("a model's inputs and what became of it (default: the pushed one, else the "
                "latest)", lambda store, args: lineage(store, args.model), _print_lineage),
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
                    "slice metrics, pushes and lineage.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_, _, _) in _COMMANDS.items():
        sub = commands.add_parser(name, help=help_, description=help_, parents=[common],
                                  epilog=IDS_NOTE)
        if name in ("artifacts", "summary"):
            sub.add_argument("--run", default=None, metavar="RUN_ID",
                             help="only this run (default: every run; summary: the latest)")
        if name in ("slices", "lineage"):
            sub.add_argument("--model", type=int, default=None, metavar="ID",
                             help="Model artifact id (see `models`)")
    return parser


def store_path(args: argparse.Namespace) -> str:
    return getattr(args, "metadata", None) or configs.Paths(
        configs.home_dir(getattr(args, "home", ""))).metadata_path


def main(argv: Optional[List[str]] = None) -> int:
    """Runs one inspect command; 0 on success, 2 for a missing or unreadable store or an
    unknown run or model id."""
    args = _parser().parse_args(argv)
    try:
        store = open_store(store_path(args))
        _, gather, show = _COMMANDS[args.command or "summary"]
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
