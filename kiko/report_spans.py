"""The report's "Model over time" section: for data that arrives as spans, each run's candidate
(and how its training started) and the served model scored on the newest span, the examples of
each span and the data gate's drift measures per span (kiko.metadata.spans). A home with one
data set (span 0 only) gets no section."""

import html
from typing import Any, Dict, List, Optional

from kiko import charts
from kiko.metadata.spans import (
    SHORT_MEASURE_NAMES, STOPPED, has_span_history, measure_text, model_over_time, span_rows,
    trained_in_text)
from kiko.metadata.store import Store
from kiko.metadata.training import start_text
from kiko.text import tabulated

def gather(store: Store) -> Optional[Dict[str, Any]]:
    """The spans and evaluations over them, None when the home has a single span 0."""
    spans = span_rows(store)
    if not has_span_history(spans):
        return None
    return {"spans": spans, "evaluations": model_over_time(store)}


def _e(value: Any) -> str:
    return html.escape("-" if value is None else str(value))


def _measure_columns(spans: List[Dict[str, Any]]) -> List[tuple]:
    """(feature, measure) of every drift measure recorded, in the order first seen."""
    return list(dict.fromkeys((m.get("feature"), m.get("measure"))
                              for row in spans for m in row["drift"]))


def _measure_cell(row: Dict[str, Any], column: tuple) -> Optional[str]:
    for m in row["drift"]:
        if (m.get("feature"), m.get("measure")) == column:
            value = m.get("value")
            shown = f"{value:.4f}" if isinstance(value, (int, float)) else str(value)
            return f"{shown} / {m.get('threshold')}" + (" exceeded" if m.get("exceeded") else "")
    return None


def section(data: Optional[Dict[str, Any]]) -> str:
    """The section's HTML ('' without span history)."""
    if data is None:
        return ""
    spans, evaluations = data["spans"], data["evaluations"]
    oldest_first = list(reversed(spans))
    parts = ["<h2>Model over time</h2>",
             "<p>Each run judges its candidate on the eval split of the span it ingested "
             "(data neither model trained on), against the model being served then: the "
             "served model's RMSE there is the live model's monitoring figure.</p>"]
    if evaluations or spans:
        parts.append(charts.spans_chart(evaluations, spans))
    parts.append("<h3>Evaluations, one per run</h3>")
    if evaluations:
        parts.append(tabulated(
            ["run", "span", "version", "eval examples", "candidate", "RMSE", "MAE",
             "served model", "served RMSE", "served MAE", "blessed", "pushed", "start"],
            [[e["run_id"], e["span"], e["version"], e["eval_examples"], e["model_id"],
              e["rmse"], e["mae"], e["baseline_model_id"], e["baseline_rmse"], e["baseline_mae"],
              e["blessed"], e["pushed"],
              start_text(e["start"], brief=True) if e.get("start") else None]
             for e in evaluations], "html"))
    else:
        parts.append('<p class="muted">No run has evaluated a model yet.</p>')
    columns = _measure_columns(spans)
    parts.append("<h3>Spans and their drift from the previous validated span</h3>")
    parts.append(tabulated(
        ["span", "version", "examples", "bytes read", "verdict", "compared with span",
         "ingested in", "trained in"]
        + [f"{feature} {SHORT_MEASURE_NAMES.get(measure, measure)} (value / threshold)"
           for feature, measure in columns],
        [[r["span"], r["version"], r["examples"], r["bytes_read"], r["verdict"],
          r["baseline_span"] if (r["baseline_span"] or 0) >= 0 else None, r["run_id"],
          trained_in_text(r)] + [_measure_cell(r, c) for c in columns]
         for r in oldest_first], "html"))
    for r in oldest_first:
        if r["verdict"] == STOPPED:
            parts.append(f'<p class="bad">Span {_e(r["span"])} version {_e(r["version"])} '
                         f'stopped in run {_e(r.get("stopped_in_run"))}: '
                         f'{_e(r["failure"] or "no message recorded")}</p>')
        elif r["drift"] and any(m.get("exceeded") for m in r["drift"]):
            worst = [measure_text(m) for m in r["drift"] if m.get("exceeded")]
            parts.append(f'<p class="bad">Span {_e(r["span"])} drifted and was let through '
                         f'(--drift warn): {_e("; ".join(worst))}</p>')
    return "<section>" + "".join(parts) + "</section>"
