"""The account of a run from its records (no pipeline): the Trainer's metrics.json, the
ExampleGen's data-quality record in the summary lines and the report."""


import base64
import io
import re

from PIL import Image

from kiko import report
from kiko.metadata.training import training_members
from kiko.summary import summary_lines

HISTORY = [
    {"stage": "mf", "epoch": 1, "stage_epoch": 1, "train_loss": 0.92, "val_rmse": 0.89,
     "val_mae": 0.71, "seconds": 3.0},
    {"stage": "mf", "epoch": 2, "stage_epoch": 2, "train_loss": 0.81, "val_rmse": 0.87,
     "val_mae": 0.70, "seconds": 2.0},
    {"stage": "mf", "epoch": 3, "stage_epoch": 3, "train_loss": 0.79, "val_rmse": 0.88,
     "val_mae": 0.69, "seconds": 2.0},
    {"stage": "autorec", "epoch": 4, "stage_epoch": 1, "train_loss": 3.81, "val_rmse": 1.33,
     "val_mae": 1.13, "seconds": 9.0},
]
QUALITY = {
    "layout": "ml-1m", "files": {"ratings": "ratings.dat", "users": None, "movies": None},
    "lines_read": 1002, "examples": 1000, "examples_per_split": {"train": 900, "eval": 100},
    "rejected_lines": 2, "duplicates_exact": 1, "duplicates_conflicting": 0,
    "ratings_without_user": 0, "ratings_without_movie": 3, "bom": False,
    "rating_histogram": {"1": 50, "2": 100, "3": 250, "4": 350, "5": 250},
    "ratings_per_user": {"edges": [1, 20, 50], "counts": [4, 10, 6]},
    "ratings_per_movie": {"edges": [1, 10, 100], "counts": [30, 20, 5]},
    "a_key_added_later": {"nested": [1, 2]},
}


def test_members_and_blend_are_taken_as_recorded():
    members = [{"name": "mf", "val_rmse": 0.85, "val_mae": 0.68, "best_epoch": 7,
                "epochs_run": 9, "seconds": 40.0}]
    blend = {"names": ["mf", "autorec"], "weights": [0.97, 0.06], "intercept": -0.11}
    account = training_members({"history": HISTORY, "members": members, "blend": blend})
    assert account["members"] == members and account["blend"] == blend


def test_summary_lines_tell_data_quality_rejected_lines_and_blend():
    run = dict.fromkeys(("run_id", "started", "duration_s", "failed_node", "failure",
                         "model_id", "eval_rmse", "eval_mae", "eval_example_count", "blessed",
                         "pushed_path", "not_pushed_reason"))
    run.update(status="COMPLETE", cached=0, rejected_lines=2, data_quality=QUALITY,
               blend={"names": ["mf", "autorec"], "weights": [0.97, 0.06], "intercept": -0.11})
    lines = {line.split(None, 1)[0]: line for line in summary_lines(run)}
    assert "lines read 1,002" in lines["data"] and "ratings without movie 3" in lines["data"]
    assert "duplicates exact 1" in lines["data"]
    assert lines["rejected"].split(None, 2)[2].startswith("2 skipped")
    assert lines["blend"].split(None, 1)[1].strip() == "mf 0.970, autorec 0.060, intercept -0.110"


def test_report_draws_the_data_quality_record():
    html = report._data_section({"quality": QUALITY, "splits": {}, "anomalies": {},
                                 "statistics_histogram": None})
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(images) == 3  # ratings, users by ratings, movies by ratings
    for encoded in images:
        Image.open(io.BytesIO(base64.b64decode(encoded))).load()
    assert "not recorded" not in html and "No data-quality record" not in html
    cells = [cell.strip() for cell in re.findall(r"<td>([^<]*)</td>", html)]
    assert cells[cells.index("lines read") + 1] == "1002"
    assert cells[cells.index("train") + 1] == "900"
    assert "nested" not in html


def test_members_the_trainer_skipped_are_shown_with_the_reason():
    reason = "5,000,000 training ratings exceed autorec_max_ratings=2,000,000"
    metrics = {"members": [{"name": "mf", "val_rmse": 0.8}],
               "blend": {"names": ["mf"], "weights": [1.0], "intercept": 0.0},
               "skipped_members": {"item_autorec": reason, "user_autorec": reason}}
    training = training_members(metrics)
    assert training["skipped"] == metrics["skipped_members"]
    assert training_members({"members": []})["skipped"] == {}
    run = dict.fromkeys(("run_id", "started", "duration_s", "failed_node", "failure",
                         "model_id", "eval_rmse", "eval_mae", "eval_example_count", "blessed",
                         "pushed_path", "not_pushed_reason"),
                        None)
    run.update(status="COMPLETE", cached=0, blend=training["blend"],
               skipped_members=training["skipped"])
    lines = summary_lines(run)
    (line,) = [line for line in lines if "not trained" in line]
    assert f"item_autorec, user_autorec: {reason}" in line
    run["skipped_members"] = None
    assert not [line for line in summary_lines(run) if "not trained" in line]


def test_summary_lines_escape_control_characters_from_data():
    hostile = "ratings.dat:7: expected 4 fields: \x1b]0;pwned\x07\x1b[2J"
    run = dict.fromkeys(("run_id", "started", "duration_s", "model_id", "eval_rmse", "eval_mae",
                         "eval_example_count", "blessed", "pushed_path", "not_pushed_reason"))
    run.update(status="FAILED", failed_node="MovieLensExampleGen", failure=hostile, cached=0,
               skipped_members={"mf\x1b[31m": "reason\x07"})
    lines = summary_lines(run)
    assert not any(c in line for line in lines for c in "\x1b\x07")
    (failure,) = [line for line in lines if line.split()[0] == "failure"]
    assert failure.split(None, 1)[1] == ("ratings.dat:7: expected 4 fields: "
                                         "\\x1b]0;pwned\\x07\\x1b[2J")
