"""`kiko report` (kiko.report_cli, kiko.report) on a real pipeline home, loaded in headless
Chromium (slow: runs the pipeline)."""


import base64
import io
import os
import re
import shutil
import subprocess

import pytest
from PIL import Image

from kiko.pipeline import configs
from kiko import report, report_cli
from kiko.metadata.runs import run_summary
from kiko.metadata.store import open_store

pytestmark = pytest.mark.slow

_IMAGES = re.compile(r'<img [^>]*src="data:image/png;base64,([^"]+)"')


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: .ci/run installs it (apt-get install chromium)")
        pytest.skip("chromium not installed (apt-get install chromium); CI installs it")
    return found


def _screenshot(page: str, tmp_path) -> Image.Image:
    """The page as headless Chromium renders it (no network, a fresh profile)."""
    shot = tmp_path / "page.png"
    result = subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", "--hide-scrollbars",
         "--window-size=1200,3000", f"--screenshot={shot}", f"file://{page}"],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and shot.exists(), result.stderr[-2000:]
    return Image.open(shot).convert("RGB")


@pytest.fixture(scope="module")
def first_run(pipeline_home):
    """The first run of the shared home (blessed and pushed; later tests add other runs)."""
    return open_store(configs.Paths(pipeline_home).metadata_path).runs()[0].name


def test_report_page_renders_with_every_chart(pipeline_home, first_run, tmp_path, capsys):
    out = tmp_path / "report.html"
    assert report_cli.main(["--home", pipeline_home, "--run", first_run, "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    page = out.read_text(encoding="utf-8")

    # Self-contained: no script, no link or source outside the page itself.
    assert "<script" not in page
    assert not re.search(r'(src|href)="(?!data:)', page)
    images = _IMAGES.findall(page)
    # Rating histogram, training curves, blend weights, per-slice RMSE.
    assert len(images) >= 4
    for encoded in images:
        image = Image.open(io.BytesIO(base64.b64decode(encoded)))
        image.load()  # raises on a truncated or corrupt PNG
        assert image.width > 100 and image.height > 50

    summary = run_summary(open_store(configs.Paths(pipeline_home).metadata_path), first_run)
    assert f"{summary['eval_rmse']:.4f}" in page
    assert "Blessed" in page and summary["pushed_path"] in page
    for heading in ("Data", "Training", "Evaluation (TFMA, eval split)", "Lineage"):
        assert f"<h2>{heading}</h2>" in page

    shot = _screenshot(str(out), tmp_path)
    colors = shot.getcolors(maxcolors=1 << 16)
    assert colors is None or len(colors) > 50, "the screenshot is (nearly) blank"
    # Chart pixels: the bars' blue appears in the rendered page.
    assert any(abs(r - 0x3b) < 12 and abs(g - 0x6e) < 12 and abs(b - 0xa8) < 12
               for r, g, b in shot.resize((300, 750)).getdata())


def test_report_of_a_run_stopped_by_anomalies(anomalous_home, tmp_path):
    """A run stopped by the anomalies gate still gets a page: its data, the anomaly, and why
    nothing was trained."""
    store = open_store(configs.Paths(anomalous_home).metadata_path)
    path = report.write_report(store, str(tmp_path / "r.html"))
    page = open(path, encoding="utf-8").read()
    assert "FAILED at AnomaliesGate" in page
    assert "The run did not train a model." in page
    # TFDV's anomalies table, the feature name quoted.
    assert re.search(r"<th>(&#x27;|')rating(&#x27;|')</th>", page)
    # The ExampleGen's data-quality record: its counts, ratings, users and movies by ratings.
    assert "lines read" in page and "not recorded" not in page
    assert len(_IMAGES.findall(page)) == 3
    colors = _screenshot(path, tmp_path).getcolors(maxcolors=1 << 16)
    assert colors is None or len(colors) > 50


def test_report_without_a_run_says_so(tmp_path, capsys):
    assert report_cli.main(["--home", str(tmp_path / "none")]) == 2
    assert "no ML Metadata database" in capsys.readouterr().err


def test_training_section_names_the_members_not_trained():
    from kiko import report as report_page
    training = {"members": [{"name": "mf"}], "history": [], "blend": None, "final": None,
                "logdir": "/x", "skipped": {"item_autorec": "too many ratings <5M>"}}
    page = report_page._training_section(training)
    assert "Not trained: <b>item_autorec</b>: too many ratings &lt;5M&gt;." in page
    assert "Not trained" not in report_page._training_section(dict(training, skipped={}))
