"""The report's charts: matplotlib Figures (no pyplot state) embedded as PNG data URIs, so
the page needs no script and no network."""

import base64
import io
from typing import Any, Dict, List, Optional, Sequence

from kiko.metadata.evaluation import EXAMPLE_COUNT, RMSE


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


def bucket_bars(record: Dict[str, List[float]], title: str, xlabel: str) -> str:
    """Bars of a bucketed count record ({"edges": [...], "counts": [...]}), one per bucket."""
    edges, counts = record["edges"], record["counts"]
    labels = [f"{edges[i]:g}-{edges[i + 1]:g}" if i + 1 < len(edges) else f"{edges[i]:g}+"
              for i in range(len(counts))]
    return bars(labels, counts, title, xlabel)


def training_chart(history: List[Dict[str, Any]], members: List[Dict[str, Any]]) -> str:
    """Per member, training and validation RMSE per epoch (metrics.json's history)."""
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
        axes.set_ylabel("RMSE")
        axes.legend(loc="upper right")
    return _png(figure)


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
