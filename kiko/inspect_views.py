"""What each `kiko inspect` command reads from ML Metadata (plain data, printed as is by
`--json`) and how it prints it as tables, every line made safe for a terminal (`echo`)."""

from typing import Any, Callable, Dict, List, Optional, Tuple

from kiko.metadata.artifacts import list_artifacts
from kiko.metadata.evaluation import EXAMPLE_COUNT, MAE, MSE, RMSE, model_slices
from kiko.metadata.lineage import lineage
from kiko.metadata.models import list_models, pushed_model
from kiko.metadata.runs import list_runs, run_summary
from kiko.metadata.spans import (
    STOPPED, largest_measure, measure_text, span_rows, trained_in_text)
from kiko.metadata.training import start_text
from kiko.summary import summary_lines
from kiko.text import IDS_NOTE, duration, echo, fmt, pairs, table


def _metric(metrics: Optional[Dict[str, float]], name: str) -> Any:
    value = (metrics or {}).get(name)
    return int(value) if value is not None and name == EXAMPLE_COUNT else value


def _print_runs(runs: List[Dict[str, Any]]) -> None:
    if not runs:
        echo("no pipeline runs")
    for i, run in enumerate(runs):
        echo(("\n" if i else "") + f"run {run['run_id']}  {run['status']}  started "
              f"{fmt(run['started'])}  took {duration(run['duration_s'])}  ({run['executions']} "
              f"executions, {run['cached']} from cache)")
        echo(table(["NODE", "STATE", "EXECUTION", "STARTED", "DURATION"],
                    [[n["node_id"], n["state"], n["execution_id"], n["started"],
                      duration(n["duration_s"])] for n in run["nodes"]], "  "))
        if run["not_run"]:
            echo(f"  not run: {', '.join(run['not_run'])}")


def _details(row: Dict[str, Any]) -> str:
    return " ".join(f"{key}={fmt(row[key])}" for key in (
        "splits", "rejected_lines", "blessed", "model_id", "pushed", "destination")
        if row.get(key) is not None)


def _print_artifacts(rows: List[Dict[str, Any]]) -> None:
    if not rows:
        echo("no artifacts")
        return
    for i, run_id in enumerate(dict.fromkeys(r["run_id"] for r in rows)):
        echo(("\n" if i else "") + f"run {run_id}")
        echo(table(["NODE", "KEY", "TYPE", "ID", "STATE", "ORIGIN", "URI", "DETAILS"],
                    [[r["node_id"], r["key"], r["type"], r["artifact_id"], r["state"],
                      r["origin"], r["uri"], _details(r)] for r in rows if r["run_id"] == run_id],
                    "  "))
    echo(f"\n{IDS_NOTE}")


def _print_models(models: List[Dict[str, Any]]) -> None:
    if not models:
        echo("no models")
        return
    echo(table(
        ["MODEL", "RUN", "RMSE", "MAE", "MSE", "EXAMPLES", "BASELINE", "BASE RMSE", "VALID",
         "BLESSED", "PUSHED", "PUSHED TO", "URI"],
        [[m["model_id"], m["run_id"], _metric(m["metrics"], RMSE), _metric(m["metrics"], MAE),
          _metric(m["metrics"], MSE), _metric(m["metrics"], EXAMPLE_COUNT),
          m["baseline_model_id"], _metric(m["baseline_metrics"], RMSE), m["validation_ok"],
          m["blessed"], m["pushed"], m["pushed_destination"], m["uri"]] for m in models]))
    echo(f"\n{IDS_NOTE}")


def _print_slices(result: Dict[str, Any]) -> None:
    echo(f"model {result['model_id']}  evaluation {result['evaluation_id']}  "
          f"run {result['run_id']}  {result['evaluation_uri']}")
    slices = result.get("slices") or []
    baseline = any(s["baseline_metrics"] for s in slices)
    echo(table(["SLICE", "EXAMPLES", "RMSE", "MAE", "MSE"] + (["BASE RMSE"] if baseline else []),
                [[s["slice"]] + [_metric(s["metrics"], m) for m in (EXAMPLE_COUNT, RMSE, MAE, MSE)]
                 + ([_metric(s["baseline_metrics"], RMSE)] if baseline else []) for s in slices]))
    if result.get("metrics_error"):
        echo(f"could not read the evaluation: {result['metrics_error']}")


def _print_pushed(result: Dict[str, Any]) -> None:
    if not result["pushed"]:
        echo(f"no model has been pushed: {result['reason']}")
        return
    echo(pairs([("destination", result["destination"]), ("version", result["version"]),
                 ("model", result["model_id"]), ("model uri", result["model_uri"]),
                 ("run", result["run_id"]), ("pushed at", result["pushed_at"])]))
    if not result["destination_exists"]:
        echo("warning: the destination folder no longer exists")
    if result["latest_attempt"]:
        echo(f"not replaced by the latest attempt: {result['latest_attempt']}")


def _print_lineage(result: Dict[str, Any]) -> None:
    model, trainer = result["model"], result["trainer"]
    if result["chosen"].startswith("latest"):
        echo(f"No model has been pushed: showing the latest model, {model['id']}.")
    echo(f"Model {model['id']}  {model['uri']}  (created {model['created']})")
    if trainer:
        echo(f"  <- Trainer execution {trainer['execution_id']}"
              f"  run {trainer['run_id']}  {trainer['state']}  took "
              f"{duration(trainer['duration_s'])}")
        overrides = ", ".join(f"{k}={v}" for k, v in (trainer["hparam_overrides"] or {}).items())
        echo(f"       hparam overrides: {overrides or 'none'}")
        if trainer["hparams"]:
            echo("       hparams: " + ", ".join(f"{k}={v}" for k, v in trainer["hparams"].items()))
        echo(f"       model code {trainer['model_code']}  run_fn {trainer['run_fn']}")
        if trainer.get("start"):
            echo(f"       start: {start_text(trainer['start'])}")
        for split, values in (trainer["final_metrics"] or {}).items():
            echo(f"       trainer {split}: RMSE {fmt(values.get('rmse'))}  MAE "
                  f"{fmt(values.get('mae'))}  ({values.get('examples')} examples)")
    examples, gen, schema = result["examples"], result["example_gen"], result["schema"]
    if examples:
        echo(f"  <- Examples {examples['id']}  {examples['uri']}  splits "
              f"{fmt(examples.get('splits'))}  rejected_lines "
              f"{fmt(examples.get('rejected_lines'))}")
    if gen:
        patterns = ", ".join(f"{k}: {v}" for k, v in gen["input_patterns"].items())
        echo(f"  <- {gen['node_id']} execution {gen['execution_id']}  run {gen['run_id']}  "
              f"input_base {gen['input_base']}  pattern {patterns or '-'}  "
              f"malformed_lines {fmt(gen['malformed_lines'])}")
    if schema:
        echo(f"  <- Schema {schema['id']}  {schema['uri']}  (from {schema['schema_file']} by "
              f"{schema['node_id']})")
    for e in result["evaluations"]:
        echo(f"  -> Evaluator execution {e['evaluator_execution_id']}  run {e['run_id']}  "
              f"ModelEvaluation {fmt(e['evaluation_id'])}  RMSE {fmt(_metric(e['metrics'], RMSE))}"
              f"  baseline {fmt(e['baseline_model_id'])}  ModelBlessing {fmt(e['blessing_id'])} "
              f"blessed {fmt(e['blessed'])}")
    for push in result["pushes"]:
        where = f" to {push['destination']}" if push["pushed"] else ""
        echo(f"  -> Pusher execution {push['pusher_execution_id']}  run {push['run_id']}  "
              f"PushedModel {push['pushed_model_id']}  pushed {fmt(push['pushed'])}{where}")
    if not result["evaluations"]:
        echo("  (never evaluated)")


def _print_spans(rows: List[Dict[str, Any]]) -> None:
    if not rows:
        echo("no spans ingested")
        return
    echo(table(["SPAN", "VERSION", "EXAMPLES", "BYTES READ", "VERDICT", "LARGEST DRIFT MEASURE",
                "INGESTED IN", "TRAINED IN", "EXAMPLES ID"],
               [[r["span"], r["version"], r["examples"], r["bytes_read"], r["verdict"],
                 measure_text(largest_measure(r["drift"])) if r["drift"] else None, r["run_id"],
                 trained_in_text(r), r["examples_id"]] for r in rows]))
    for r in rows:
        if r["verdict"] == STOPPED:
            echo(f"\nspan {r['span']} version {r['version']} stopped in run "
                 f"{r.get('stopped_in_run')}: {r['failure'] or 'no message recorded'}")
    echo(f"\n{IDS_NOTE}")


def _print_summary(result: Dict[str, Any]) -> None:
    run = result["run"]
    echo("run")
    echo("\n".join(summary_lines(run)))
    echo("serving")
    current = result["pushed"]
    if current["pushed"]:
        echo(pairs([("model", current["model_id"]), ("destination", current["destination"]),
                     ("pushed at", current["pushed_at"]), ("run", current["run_id"])], "  "))
    elif run["not_pushed_reason"] and current["reason"].endswith(run["not_pushed_reason"]):
        echo("  no model has been pushed (see above)")
    else:
        echo(f"  no model has been pushed: {current['reason']}")


def _summary(store, args) -> Dict[str, Any]:
    return {"run": run_summary(store, getattr(args, "run", None)),
            "pushed": pushed_model(store)}


# command -> (what it reads from a store given the parsed flags, how it prints that)
VIEWS: Dict[str, Tuple[Callable[..., Any], Callable[[Any], None]]] = {
    "summary": (_summary, _print_summary),
    "runs": (lambda store, args: list_runs(store), _print_runs),
    "artifacts": (lambda store, args: list_artifacts(store, args.run), _print_artifacts),
    "models": (lambda store, args: list_models(store), _print_models),
    "slices": (lambda store, args: model_slices(store, args.model), _print_slices),
    "pushed": (lambda store, args: pushed_model(store), _print_pushed),
    "lineage": (lambda store, args: lineage(store, args.model), _print_lineage),
    "spans": (lambda store, args: span_rows(store), _print_spans),
}
