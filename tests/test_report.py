"""Reports from run directories alone, checked as a person would: rendered in Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import run_cli
from obliviate.bench.config import BenchConfig
from obliviate.bench.runner import BenchRun
from obliviate.report import write_report

# the digits MLP: the reports are checked, not the models (89 -> 78 s of CPU for this file)
TINY = ["scenario.model=mlp", "recipe.epochs=4", "finetune.epochs=1", "neggrad.epochs=1"]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# set on the page once every image has decoded with a real size
PROBE = """<script>window.addEventListener("load", () => {
  const imgs = Array.from(document.images);
  const ok = imgs.filter(i => i.complete && i.naturalWidth > 0).length;
  document.body.setAttribute("data-images", imgs.length + ":" + ok);
  const board = document.getElementById("leaderboard");
  document.body.setAttribute("data-board", Math.ceil(board.getBoundingClientRect().width) + ":"
    + board.rows[0].cells[1].textContent);
});</script></body>"""


def _bench(out: Path, **kw) -> Path:
    cfg = BenchConfig("digits", methods=["finetune", "neggrad"], out=out, quiet=True,
                      set=list(TINY) + kw.pop("extra", []), **kw)
    BenchRun(cfg).run()
    return out


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    return _bench(tmp_path_factory.mktemp("quick") / "run", seeds=2)


def _chromium(*args: str, tmp: Path) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                           f"--user-data-dir={tmp / 'profile'}", *args],
                          capture_output=True, text=True, timeout=120)


def test_quick_report_has_the_leaderboard_and_plots(quick_run):
    report = write_report(quick_run)
    md = report.markdown.read_text()
    for name in ("original", "**retrain (reference)**", "finetune", "neggrad"):
        assert f"| {name} |" in md
    # every metric carries its direction and ideal; values are mean ± spread over 2 seeds
    assert ("| avg_gap | mean \\|gap to retrain\\| over the task's utility and MIA (SalUn's "
            "Avg. Gap) | lower | 0 |") in md
    assert "avg_gap ↓" in md and "TA ↑" in md and " ± " in md
    assert set(report.plots) == {"tradeoff", "cost", "distributions"}
    for path in report.plots.values():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
    html = report.html.read_text()
    assert html.count("data:image/png;base64,") == 3 and 'src="plots/' not in html


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_report_renders_in_headless_chromium(quick_run, tmp_path):
    report = write_report(quick_run)
    # a copy elsewhere proves the page is self-contained (no files beside it)
    page = tmp_path / "alone" / "report.html"
    page.parent.mkdir()
    page.write_text(report.html.read_text().replace("</body>", PROBE))
    dom = _chromium("--virtual-time-budget=10000", "--dump-dom", page.as_uri(), tmp=tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    marker = re.search(r'data-images="(\d+):(\d+)"', dom.stdout)
    assert marker, "the page's load handler never ran"
    assert marker.group(1) == marker.group(2) == "3"
    # at the default window width (800 px here) and so at 1,400: the table fits, and the
    # status sits beside the method, next to the numbers it explains
    width, second = re.search(r'data-board="(\d+):([^"]*)"', dom.stdout).groups()
    assert int(width) <= 1400 and second == "status"
    board = re.search(r'<table id="leaderboard">(.*?)</table>', dom.stdout, re.S).group(1)
    for name in ("retrain (reference)", "finetune", "neggrad", "avg_gap"):
        assert name in board
    shot = tmp_path / "report.png"
    result = _chromium(f"--screenshot={shot}", "--window-size=1280,2200",
                       "--hide-scrollbars", page.as_uri(), tmp=tmp_path)
    assert result.returncode == 0 and shot.stat().st_size > 20_000
    shutil.copy(shot, Path(quick_run).parent / "report-screenshot.png")


def test_challenge_and_ulira_reports_draw_epsilons_and_roc(tmp_path):
    challenge = _bench(tmp_path / "challenge", protocol="challenge", models=3)
    report = write_report(challenge)
    assert {"tradeoff", "cost", "epsilon", "distributions"} <= set(report.plots)
    assert "F_ratio ↑" in report.markdown.read_text()
    ulira = _bench(tmp_path / "ulira", protocol="ulira", models=6, extra=["protocol.targets=2"])
    report = write_report(ulira)
    assert "roc" in report.plots and "epsilon" not in report.plots
    assert "attack_acc ↓" in report.markdown.read_text()


def test_report_of_a_folder_that_is_not_a_run_exits_2(tmp_path):
    result = run_cli("report", str(tmp_path))
    assert result.returncode == 2
    assert "is not a run directory" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
