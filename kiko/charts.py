"""The report's charts: matplotlib Figures (no pyplot state) embedded as PNG data URIs, so
the page needs no script and no network."""

import base64
import io
from typing import Any, Dict, List, Optional, Sequence

from kiko.metadata.evaluation import EXAMPLE_COUNT, RMSE
from kiko.components.anomalies_gate.verdicts import VERDICT_DRIFT_WARNED
from kiko.metadata.spans import STOPPED


def _figure(width: float = 7.0, height: float = 3.0):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _png(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="chart" src="data:image/png;base64,{encoded}">'


def bars(labels: Sequence[str], counts: Sequence[float], title: str, xlabel: str) -> str:
    """A bar per label: its count."""
    figure = _figure()
    axes = figure.subplots()
    axes.bar([str(label) for label in labels], counts, color="#3b6ea8")
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel("count")
    return _png(figure)


def bucket_labels(edges: Sequence[float], buckets: int) -> List[str]:
    """Labels of integer buckets [edge_i, edge_i+1): "5–9", "1" for a single value, "50000+"
    for the last, open one."""
    labels = []
    for i in range(buckets):
        low = int(edges[i])
        if i + 1 >= len(edges):
            labels.append(f"{low}+")
        else:
            high = int(edges[i + 1]) - 1
            labels.append(str(low) if high <= low else f"{low}–{high}")
    return labels


def bucket_figure(record: Dict[str, List[float]], title: str, xlabel: str):
    """Bars of a bucketed count record ({"edges": [...], "counts": [...]}), one per bucket up
    to the last that holds any (the empty buckets above it say nothing). The bars lie
    horizontally, smallest bucket on top, so that each label has a line of its own."""
    counts = list(record["counts"])
    while len(counts) > 1 and not counts[-1]:
        counts.pop()
    figure = _figure(7.0, 0.9 + 0.25 * len(counts))
    axes = figure.subplots()
    axes.barh(bucket_labels(record["edges"], len(counts)), counts, color="#3b6ea8")
    axes.invert_yaxis()
    axes.set_title(title)
    axes.set_ylabel(xlabel)
    axes.set_xlabel("count")
    return figure


def bucket_bars(record: Dict[str, List[float]], title: str, xlabel: str) -> str:
    return _png(bucket_figure(record, title, xlabel))


def training_chart(history: List[Dict[str, Any]], members: List[Dict[str, Any]]) -> str:
    return _png(training_figure(history, members))


def training_figure(history: List[Dict[str, Any]], members: List[Dict[str, Any]]):
    """Per member, training and validation RMSE per epoch (metrics.json's history), with a
    tick on whole epochs only."""
    from matplotlib.ticker import MaxNLocator

    names = [m["name"] for m in members] or list(dict.fromkeys(h["stage"] for h in history))
    figure = _figure(7.0, 2.8 * max(1, len(names)))
    for axes, name in zip(figure.subplots(len(names), 1, squeeze=False)[:, 0], names):
        epochs = [h for h in history if h.get("stage") == name]
        x = [h.get("stage_epoch", h.get("epoch")) for h in epochs]
        if any("train_rmse" in h for h in epochs):
            axes.plot(x, [h.get("train_rmse") for h in epochs], "o--", label="train RMSE")
        elif any("train_loss" in h for h in epochs):
            axes.plot(x, [h["train_loss"] ** 0.5 if h.get("train_loss", -1) >= 0 else None
                          for h in epochs], "o--", label="train √loss (with regularisation)")
        axes.plot(x, [h.get("val_rmse") for h in epochs], "o-", label="validation RMSE")
        axes.set_title(f"{name}: per epoch")
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_ylabel("RMSE")
        axes.legend(loc="upper right")
    return figure


def blend_chart(blend: Dict[str, Any]) -> str:
    """The blend's weight per member, with its intercept in the title."""
    weights = list(blend["weights"])
    names = blend.get("names") or [f"member {i + 1}" for i in range(len(weights))]
    figure = _figure(6.0, 0.5 + 0.45 * len(weights))
    axes = figure.subplots()
    axes.barh(names, weights, color="#6a8f3b")
    axes.axvline(0, color="#444", linewidth=0.8)
    intercept = blend.get("intercept")
    axes.set_title("blend weights" + (f" (intercept {intercept:.3f})"
                                      if intercept is not None else ""))
    return _png(figure)


def slices_chart(slices: List[Dict[str, Any]], bound: Optional[float]) -> str:
    """RMSE per slice (candidate bars, baseline marks, example counts) against the bound."""
    shown = [s for s in slices if (s["metrics"] or {}).get(RMSE) is not None]
    figure = _figure(7.5, 0.6 + 0.3 * len(shown))
    axes = figure.subplots()
    y = list(range(len(shown)))[::-1]
    rmse = [s["metrics"][RMSE] for s in shown]
    axes.barh(y, rmse, color="#3b6ea8", label="candidate")
    base = [(yy, s["baseline_metrics"][RMSE]) for yy, s in zip(y, shown)
            if (s["baseline_metrics"] or {}).get(RMSE) is not None]
    if base:
        axes.plot([b for _, b in base], [yy for yy, _ in base], "k|", markersize=14,
                  label="baseline")
    for yy, s, value in zip(y, shown, rmse):
        count = int(s["metrics"].get(EXAMPLE_COUNT, 0))
        axes.text(value, yy, f" {value:.3f} (n={count:,})", va="center", fontsize=8)
    if bound is not None:
        axes.axvline(bound, color="#b42318", linestyle="--", label=f"RMSE bound {bound:g}")
    axes.set_yticks(y, [s["slice"] for s in shown], fontsize=8)
    axes.set_xlim(0, max(rmse + [bound or 0]) * 1.3)
    axes.set_xlabel("RMSE on the eval split")
    axes.legend(loc="lower right", fontsize=8)
    return _png(figure)


def spans_chart(evaluations: List[Dict[str, Any]], spans: List[Dict[str, Any]]) -> str:
    """Over the spans: each candidate's RMSE on the newest span (filled: blessed, hollow: not)
    and the served model's on the same span; below, the examples of each span (coloured when
    the data gate stopped it or let it through drifted)."""
    figure = _figure(7.5, 5.0)
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=[3, 2])
    scored = [e for e in evaluations if e["span"] is not None and e["rmse"] is not None]
    for blessed, style, label in ((True, "o", "candidate (blessed)"),
                                  (False, "o", "candidate (not blessed)")):
        shown = [e for e in scored if bool(e["blessed"]) is blessed]
        if shown:
            top.plot([e["span"] for e in shown], [e["rmse"] for e in shown], style,
                     color="#3b6ea8", markerfacecolor="#3b6ea8" if blessed else "none",
                     markersize=8, linestyle="none", label=label)
    served = [e for e in scored if e["baseline_rmse"] is not None]
    if served:
        top.plot([e["span"] for e in served], [e["baseline_rmse"] for e in served], "s--",
                 color="#b26b00", label="served model")
    top.set_ylabel("RMSE on the span")
    top.set_title("model over time (each run judged on its newest span)")
    if scored:
        top.legend(loc="best", fontsize=8)
    latest = {}
    for row in spans:  # newest first: the latest version of each span
        if row["span"] is not None and row["examples"] is not None:
            latest.setdefault(row["span"], row)
    counted = {span: row["examples"] for span, row in latest.items()}
    colors = {STOPPED: "#b42318", VERDICT_DRIFT_WARNED: "#d9a400"}  # the gate's verdicts
    bottom.bar(list(counted), list(counted.values()),
               color=[colors.get(row["verdict"], "#6a8f3b") for row in latest.values()])
    shown = {row["verdict"] for row in latest.values()} & set(colors)
    if shown:
        from matplotlib.patches import Patch

        bottom.legend(handles=[Patch(color=colors[v], label=f"span {v.replace('_', ' ')}")
                               for v in sorted(shown)], loc="upper right", ncol=2, fontsize=8)
        bottom.set_ylim(0, max(counted.values()) * 1.35)  # room for the legend above the bars
    bottom.set_ylabel("examples")
    bottom.set_xlabel("span")
    ticks = sorted(set(counted) | {e["span"] for e in scored})
    bottom.set_xticks(ticks, [str(t) for t in ticks])
    return _png(figure)
