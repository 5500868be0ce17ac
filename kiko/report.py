"""The report of a run: one self-contained HTML page about its data, training, evaluation and
lineage (and, for data that arrives as spans, the model over time: kiko.report_spans), with the
charts embedded (kiko.charts; no script, no network: TFDV's and TFMA's own
visualisations load their code from the internet or need a notebook, so only TFDV's anomalies
table is reused). `kiko report` writes it; so does a local run at its end."""

import html
import os
import shlex
from typing import Any, Dict, Optional, Sequence

from tfx.types import artifact_utils

from kiko import charts, report_spans
from kiko.components.anomalies_gate.component import read_anomalies
from kiko.metadata.artifacts import load_statistics
from kiko.metadata.evaluation import EXAMPLE_COUNT, MAE, MSE, RMSE, evaluation
from kiko.metadata.lineage import lineage
from kiko.metadata.models import pushed_model
from kiko.metadata.runs import run_outputs, run_summary
from kiko.metadata.store import Store
from kiko.metadata.training import (
    BASE_MODEL_KEY, read_model_run, start_text, training_members, training_start)
from kiko.model import features as fk
from kiko.text import IDS_NOTE, duration, fmt, tabulated

TENSORBOARD_COMMAND = "tensorboard --logdir {logdir}"

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2733;
background:#f5f7fa}main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:20px;border-bottom:2px solid #cfd8e3;
padding-bottom:4px;margin-top:32px}h3{font-size:15px;margin:18px 0 6px}
section{background:#fff;border-radius:8px;padding:4px 20px 16px;margin-top:18px;
box-shadow:0 1px 3px rgba(0,0,0,.08)}table{border-collapse:collapse;margin:6px 0;font-size:13px}
th,td{border:1px solid #d9e0e8;padding:3px 8px;text-align:left}th{background:#eef2f7}
img{max-width:100%;display:block;margin:8px 0}.muted{color:#66727f}.cards{display:flex;
flex-wrap:wrap;gap:10px}.card{background:#fff;border-radius:8px;padding:10px 14px;min-width:130px;
box-shadow:0 1px 3px rgba(0,0,0,.08)}.card b{display:block;font-size:20px}.ok{color:#1a7f37}
.bad{color:#b42318}code{background:#eef2f7;padding:1px 4px;border-radius:3px}
.flow li{margin:6px 0}
"""


def _histogram_from_statistics(view) -> Optional[Dict[str, float]]:
    """Approximate rating counts from TFDV's standard histogram (when there is no data-quality
    record): each bucket's count goes to the rating nearest its middle."""
    import tensorflow_data_validation as tfdv

    feature = view.get_feature(tfdv.FeaturePath([fk.RATING]))
    numeric = feature.numeric_statistics() if feature is not None else None
    standard = [h for h in (numeric.histograms if numeric else []) if h.type == h.STANDARD]
    if not standard:
        return None
    counts: Dict[str, float] = {}
    for bucket in standard[0].buckets:
        rating = str(round((bucket.low_value + bucket.high_value) / 2))
        counts[rating] = counts.get(rating, 0.0) + bucket.sample_count
    return counts


def gather(store: Store, run_id: Optional[str] = None) -> Dict[str, Any]:
    """Everything the page shows about one run (default: the latest), as plain data."""
    summary = run_summary(store, run_id)
    if summary["run_id"] is None:
        raise LookupError("the pipeline has not run in this home yet")
    found = run_outputs(store, summary["run_id"])
    data: Dict[str, Any] = {"summary": summary, "quality": summary["data_quality"] or {},
                            "splits": {}, "anomalies": {}, "statistics_histogram": None}
    if found["statistics"] is not None:
        for split in artifact_utils.decode_split_names(found["statistics"].split_names):
            view = load_statistics(found["statistics"], split)
            data["splits"][split] = view.proto().num_examples
            if split == fk.TRAIN_SPLIT:
                data["statistics_histogram"] = _histogram_from_statistics(view)
    if found["anomalies"] is not None:
        for split in artifact_utils.decode_split_names(found["anomalies"].split_names):
            data["anomalies"][split] = read_anomalies(found["anomalies"].uri, split)
    report = read_model_run(found["model_run"].uri if found["model_run"] else None)
    evaluated = (evaluation(store, found["evaluator"], with_slices=True)
                 if found["evaluator"] is not None else None)
    return {
        "data": data,
        "training": dict(training_members(report), final=report.get("final"),
                         hparams=report.get("hparams"), logdir=found["model_run"].uri,
                         start=training_start(report, found[BASE_MODEL_KEY]))
        if report else None,
        "evaluation": evaluated,
        "lineage": lineage(store, found["model"].id) if found["model"] else None,
        "serving": pushed_model(store),
        "spans": report_spans.gather(store),
    }


def _e(value: Any) -> str:
    return html.escape("-" if value is None else str(value))


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    return tabulated(headers, rows, "html")


def _absent(what: str) -> str:
    return f'<p class="muted">{_e(what)}</p>'


def _data_section(data: Dict[str, Any]) -> str:
    quality, parts = data["quality"], ["<h2>Data</h2>"]
    if not quality and not data["splits"]:
        # Neither ExampleGen's record nor StatisticsGen's counts: nothing was read.
        parts.append(_absent("The run wrote no examples: it stopped before MovieLensExampleGen "
                             "finished, so there is no data to describe."))
        return "<section>" + "".join(parts) + "</section>"
    if quality:
        keys = [k for k, v in quality.items() if isinstance(v, (int, float, str, bool))
                and not isinstance(v, dict)]
        parts.append(_table(["data quality", "value"], [[k.replace("_", " "), quality[k]]
                                                        for k in keys]))
    else:
        parts.append(_absent("No data-quality record on this run's Examples artifact (lines "
                             "read, rejected, duplicates): counts below come from StatisticsGen."))
    splits = quality.get("examples_per_split") or data["splits"]
    if splits:
        parts.append("<h3>Split sizes</h3>" + _table(["split", "examples"],
                                                     [[k, v] for k, v in splits.items()]))
    histogram = quality.get("rating_histogram")
    if histogram:
        ordered = sorted(histogram.items(), key=lambda kv: float(kv[0]))
        parts.append(charts.bars([k for k, _ in ordered], [v for _, v in ordered],
                           "ratings (all splits)", "rating"))
    elif data["statistics_histogram"]:
        ordered = sorted(data["statistics_histogram"].items(), key=lambda kv: float(kv[0]))
        parts.append(charts.bars([k for k, _ in ordered], [v for _, v in ordered],
                           "ratings, train split (approximate: StatisticsGen's histogram)",
                           "rating"))
    for key, title in (("ratings_per_user", "users by number of ratings"),
                       ("ratings_per_movie", "movies by number of ratings")):
        record = quality.get(key)
        if isinstance(record, dict) and record.get("counts"):
            parts.append(charts.bucket_bars(record, title, "ratings"))
        else:
            parts.append(_absent(f"{title}: not recorded for this run (needs the ExampleGen's "
                                 "data-quality record)."))
    parts.append("<h3>Anomalies (ExampleValidator)</h3>")
    if not data["anomalies"]:
        parts.append(_absent("The run did not reach the ExampleValidator."))
    from tensorflow_data_validation.utils import display_util

    for split, anomalies in data["anomalies"].items():
        frame = display_util.get_anomalies_dataframe(anomalies)
        parts.append(f"<p>{_e(split)}: " + ("no anomalies" if frame.empty else
                     f'<span class="bad">{len(frame)} anomalies</span>') + "</p>")
        if not frame.empty:
            parts.append(frame.to_html(escape=True))
    return "<section>" + "".join(parts) + "</section>"


def _share(value: Any) -> Optional[str]:
    return f"{value:.1%}" if isinstance(value, (int, float)) else None


def _start_part(start: Optional[Dict[str, Any]]) -> str:
    """How the Trainer started: warm from a base model (what it kept) or cold, and why."""
    if not start:
        return ""
    rows = [["start", start_text(start)], ["base model", start.get("base_model")],
            ["warm starts in a row", start.get("warm_chain")],
            ["users of the base model still in the window", _share(start.get("kept_users"))],
            ["movies of the base model still in the window", _share(start.get("kept_movies"))],
            ["users new to the base model", start.get("new_users")],
            ["movies new to the base model", start.get("new_movies")]]
    rows += [[f"member {name}", state] for name, state in (start.get("members") or {}).items()]
    return "<h3>Start</h3>" + _table(["warm start", "value"],
                                     [r for r in rows if r[1] is not None])


def _training_section(training: Optional[Dict[str, Any]]) -> str:
    parts = ["<h2>Training</h2>"]
    if training is None:
        return "<section>" + "".join(parts) + _absent("The run did not train a model.") + \
            "</section>"
    parts.append(_start_part(training.get("start")))
    members = training["members"]
    if members:
        parts.append(_table(["member", "best val RMSE", "val MAE", "best epoch", "epochs run",
                             "seconds"],
                            [[m.get("name"), m.get("val_rmse"), m.get("val_mae"),
                              m.get("best_epoch"), m.get("epochs_run"), m.get("seconds")]
                             for m in members]))
    for name, reason in (training.get("skipped") or {}).items():
        parts.append(f"<p>Not trained: <b>{_e(name)}</b>: {_e(reason)}.</p>")
    if training["history"]:
        parts.append(charts.training_chart(training["history"], members))
    if training["blend"]:
        parts.append(charts.blend_chart(training["blend"]))
    final = training.get("final") or {}
    if final:
        parts.append("<h3>Final scores (Trainer)</h3>" + _table(
            ["split", "examples", "RMSE", "MAE", "MSE"],
            [[split, v.get("examples"), v.get("rmse"), v.get("mae"), v.get("mse")]
             for split, v in final.items()]))
    command = TENSORBOARD_COMMAND.format(logdir=shlex.quote(training["logdir"]))
    parts.append(f"<h3>TensorBoard</h3><p>Per-epoch scalars of this model: <code>{_e(command)}"
                 "</code></p>")
    if training.get("hparams"):
        parts.append("<h3>Hyperparameters</h3>" + _table(
            ["name", "value"], [[k, repr(v)] for k, v in sorted(training["hparams"].items())]))
    return "<section>" + "".join(parts) + "</section>"


def _evaluation_section(evaluation: Optional[Dict[str, Any]], reason: Optional[str],
                        pushed_path: Optional[str]) -> str:
    parts = ["<h2>Evaluation (TFMA, eval split)</h2>"]
    if evaluation is None:
        return "<section>" + "".join(parts) + _absent("The run did not evaluate a model.") + \
            "</section>"
    metrics, base = evaluation["metrics"] or {}, evaluation["baseline_metrics"] or {}
    limits = evaluation["thresholds"]
    rows = [[name, metrics.get(key), base.get(key) if base else None]
            for name, key in (("RMSE", RMSE), ("MAE", MAE), ("MSE", MSE))]
    rows.append(["examples"] + [int(m[EXAMPLE_COUNT]) if EXAMPLE_COUNT in m
                                else None for m in (metrics, base)])
    parts.append(_table(["overall", f"candidate (model {evaluation['model_id']})",
                         f"baseline (model {_e(evaluation['baseline_model_id'])})"], rows))
    parts.append(f"<p>Thresholds: RMSE at most {_e(limits.get('rmse_upper_bound'))}, and at "
                 f"most {_e(limits.get('max_rmse_increase'))} above the baseline's "
                 "(the latest previously blessed model; none for a first model).</p>")
    if evaluation["blessed"]:
        parts.append('<p class="ok"><b>Blessed</b>' + (
            f": pushed to <code>{_e(pushed_path)}</code>" if pushed_path else "") + "</p>")
    else:
        parts.append(f'<p class="bad"><b>Not blessed</b>: {_e(reason)}</p>')
    if evaluation.get("metrics_error"):
        parts.append(_absent(f"The evaluation could not be read: {evaluation['metrics_error']}"))
    slices = evaluation.get("slices") or []
    if slices:
        parts.append("<h3>RMSE per slice</h3>"
                     + charts.slices_chart(slices, limits.get("rmse_upper_bound")))
    return "<section>" + "".join(parts) + "</section>"


def _lineage_section(lineage: Optional[Dict[str, Any]], summary: Dict[str, Any],
                     serving: Dict[str, Any]) -> str:
    parts = ["<h2>Lineage</h2>"]
    if lineage is None:
        return "<section>" + "".join(parts) + _absent("The run made no model.") + "</section>"
    gen, examples, trainer = lineage["example_gen"], lineage["examples"], lineage["trainer"]
    steps = []
    if gen:
        steps.append(f"<b>data</b> <code>{_e(gen['input_base'])}</code> "
                     f"({_e(', '.join(gen['input_patterns'].values()))}), read by "
                     f"{_e(gen['node_id'])} execution {gen['execution_id']}")
    if examples:
        steps.append(f"<b>Examples {examples['id']}</b> splits "
                     f"{_e(', '.join(examples.get('splits') or []))}, rejected lines "
                     f"{_e(examples.get('rejected_lines'))}: <code>{_e(examples['uri'])}</code>")
    model = lineage["model"]
    steps.append(f"<b>Model {model['id']}</b> trained by Trainer execution "
                 f"{_e((trainer or {}).get('execution_id'))} in run "
                 f"{_e((trainer or {}).get('run_id'))}: <code>{_e(model['uri'])}</code>")
    for e in lineage["evaluations"]:
        steps.append(f"<b>Evaluation {_e(e['evaluation_id'])}</b> in run {_e(e['run_id'])}: "
                     f"blessed {_e('yes' if e['blessed'] else 'no')}")
    pushes = [p for p in lineage["pushes"] if p["pushed"]]
    if pushes:
        steps += [f"<b>pushed version {_e(p['version'])}</b>: <code>{_e(p['destination'])}</code>"
                  for p in pushes]
    else:
        steps.append(f"<b>not pushed</b>: {_e(summary['not_pushed_reason'])}")
    parts.append('<ol class="flow">' + "".join(f"<li>{s}</li>" for s in steps) + "</ol>")
    if serving["pushed"]:
        parts.append(f"<p>Being served: model {serving['model_id']}, version "
                     f"{_e(serving['version'])}, <code>{_e(serving['destination'])}</code>.</p>")
    else:
        parts.append(f"<p>Nothing is being served: {_e(serving['reason'])}.</p>")
    parts.append(_absent(IDS_NOTE))
    return "<section>" + "".join(parts) + "</section>"


def render(report: Dict[str, Any]) -> str:
    """The page for `gather`'s data."""
    summary = report["summary"] = report["data"]["summary"]
    status = summary["status"] + (f" at {summary['failed_node']}" if summary["failed_node"]
                                  else "")
    cards = [("status", status), ("eval RMSE", summary["eval_rmse"]),
             ("eval MAE", summary["eval_mae"]), ("blessed", summary["blessed"]),
             ("model", summary["model_id"])]
    header = (f"<h1>kiko run {_e(summary['run_id'])}</h1><p class='muted'>started "
              f"{_e(summary['started'])}, took {_e(duration(summary['duration_s']))}, "
              f"{summary['cached']} executions from cache</p><div class='cards'>"
              + "".join(f"<div class='card'>{_e(k)}<b>{_e(fmt(v))}</b></div>" for k, v in cards)
              + "</div>")
    if summary["failure"]:
        header += f"<p class='bad'>Failure: {_e(summary['failure'])}</p>"
    body = (header + _data_section(report["data"]) + _training_section(report["training"])
            + _evaluation_section(report["evaluation"], summary["not_pushed_reason"],
                                  summary["pushed_path"])
            + _lineage_section(report["lineage"], summary, report["serving"])
            + report_spans.section(report.get("spans")))
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>kiko run "
            f"{_e(summary['run_id'])}</title><style>{_STYLE}</style></head><body><main>{body}"
            "</main></body></html>")


def write_report(store: Store, out_path: str, run_id: Optional[str] = None) -> str:
    """Writes the page for a run (default: the latest) and returns its absolute path."""
    page = render(gather(store, run_id))
    out_path = os.path.abspath(out_path)
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    with open(out_path, "w", encoding="utf-8") as f:
        f.write(page)
    return out_path
