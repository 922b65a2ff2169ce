"""bench/tensorboard_browser.py: the addresses it opens and the text checks it makes; marked slow,
the whole check in headless Chromium against a real search's TensorBoard, and against a run that
holds no data (every dashboard must fail)."""

from __future__ import annotations

import subprocess

import pytest

from bench.chromium import find_chromium
from bench.tensorboard_browser import (
    EXPECTED,
    check_dashboards,
    dashboard_url,
    search_command,
    text_problems,
)
from tests.conftest import REPO

# visible text as the check read it from TensorBoard 2.21 (shortened)
TIMESERIES = "Tags matching filter 3 cards search /best_score Alt + Scroll search /score Run"
HPARAMS = "Hyperparameters edge_1_0 none skip_connect Color by hparam/score Linear"
IMAGES = "pareto pareto . tag: pareto step 0 search search/histogram_score . tag: search/histogram"


def test_urls_are_loopback_with_the_dashboard_as_hash() -> None:
    assert dashboard_url(6006, "hparams") == "http://127.0.0.1:6006/#hparams"
    assert dashboard_url(6006, "images") == "http://127.0.0.1:6006/#images"
    assert dashboard_url(7, "timeseries") == "http://127.0.0.1:7/?tagFilter=search#timeseries"


def test_an_unknown_dashboard_is_named_with_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match="'scalar'; allowed: timeseries, hparams, images"):
        dashboard_url(6006, "scalar")


@pytest.mark.parametrize(
    ("dashboard", "text"), [("timeseries", TIMESERIES), ("hparams", HPARAMS), ("images", IMAGES)]
)
def test_a_dashboard_with_its_content_passes(dashboard: str, text: str) -> None:
    assert text_problems(dashboard, text) == []


def test_empty_and_error_states_fail() -> None:
    empty = "TensorBoard No dashboards are active for the current data set."
    assert text_problems("images", empty) == [
        "shows 'No dashboards are active'",
        "lacks 'pareto'",
        "lacks 'search/histogram_'",
    ]
    no_images = "Toggle All Runs No image data was found. Probable causes: You haven't written"
    assert text_problems("images", no_images)[0] == "shows 'data was found'"
    assert text_problems("hparams", HPARAMS + " Error: 500") == ["shows 'Error'"]
    assert text_problems("timeseries", TIMESERIES + " No data") == ["shows 'No data'"]


def test_the_table_view_is_not_the_parallel_coordinates_view() -> None:
    table = "Hyperparameters edge_1_0 none TABLE VIEW PARALLEL COORDINATES VIEW Trial ID"
    assert text_problems("hparams", table) == ["lacks 'Color by'"]


def test_the_search_is_small_and_writes_into_the_run() -> None:
    command = search_command(REPO / "r")
    assert command[1:] == [
        "search.py",
        "trainer.epochs=2",
        "searcher.n_trials=8",
        "verify=off",
        "trainer.num_threads=1",
        f"hydra.run.dir={REPO / 'r'}",
    ]
    assert set(EXPECTED) == {"timeseries", "hparams", "images"}


@pytest.fixture(scope="module")
def browser() -> str:
    binary = find_chromium()
    if binary is None:
        pytest.skip("no Chromium binary on PATH (apt-get install chromium-headless-shell)")
    pytest.importorskip("websocket", reason="websocket-client (the dev extra) is not installed")
    return binary


@pytest.mark.slow
def test_every_dashboard_of_a_real_search_shows_its_content(tmp_path, browser) -> None:
    run = tmp_path / "run"
    subprocess.run(search_command(run), cwd=REPO, check=True, capture_output=True)
    problems = check_dashboards(run / "tb", tmp_path / "shots", browser)
    assert problems == {"timeseries": [], "hparams": [], "images": []}
    for dashboard in EXPECTED:
        png = (tmp_path / "shots" / f"{dashboard}.png").read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 10_000


@pytest.mark.slow
def test_a_run_without_data_fails_every_dashboard(tmp_path, browser) -> None:
    (tmp_path / "tb").mkdir()
    problems = check_dashboards(tmp_path / "tb", tmp_path / "shots", browser, timeout=15)
    assert all(problems[dashboard] for dashboard in EXPECTED), problems
    assert "shows 'data was found'" in problems["images"]
    assert "shows 'data was found'" in problems["hparams"]
