"""The report's charts, checked on the figures' own data (tick values and label boxes)."""

import io
import itertools

from kiko import charts
from kiko.components.movielens_example_gen import quality


def _drawn(figure):
    figure.savefig(io.BytesIO(), format="png")  # lays the figure out, as the report does
    return figure


def test_bucket_labels_are_whole_counts_and_never_overlap():
    """A users-by-number-of-ratings record as ExampleGen writes it: every bucket's label is
    readable (no two tick labels share any space) and says which counts it holds."""
    record = quality.histogram([1, 3, 7, 25, 60, 150, 400, 900, 1500, 4000, 12000, 30000, 60000])
    figure = _drawn(charts.bucket_figure(record, "users by number of ratings", "ratings"))
    axes = figure.axes[0]
    labels = [t.get_text() for t in axes.get_yticklabels()]
    assert labels[:4] == ["1", "2–4", "5–9", "10–19"] and labels[-1] == "50000+"
    boxes = [t.get_window_extent() for t in axes.get_yticklabels()]
    assert not any(a.overlaps(b) for a, b in itertools.combinations(boxes, 2))


def test_empty_buckets_above_the_last_count_are_left_out():
    record = quality.histogram([1, 3, 25])
    axes = _drawn(charts.bucket_figure(record, "users", "ratings")).axes[0]
    assert [t.get_text() for t in axes.get_yticklabels()] == ["1", "2–4", "5–9", "10–19",
                                                             "20–49"]


def test_epoch_ticks_are_whole_epochs():
    history = [{"stage": name, "stage_epoch": epoch, "train_rmse": 1.0 / epoch,
                "val_rmse": 1.1 / epoch} for name in ("dot", "autorec") for epoch in (1, 2, 3)]
    figure = _drawn(charts.training_figure(history, [{"name": "dot"}, {"name": "autorec"}]))
    for axes in figure.axes:
        low, high = axes.get_xlim()
        ticks = [t for t in axes.get_xticks() if low <= t <= high]
        assert ticks and all(float(t).is_integer() for t in ticks)
        assert {1, 2, 3} <= set(ticks)
