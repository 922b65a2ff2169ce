"""A real-browser check of the TensorBoard a search writes: a small search, TensorBoard served on a
free loopback port, and the Time Series, HParams (parallel coordinates) and Images dashboards
opened in headless Chromium through the DevTools protocol. Each dashboard is saved as a PNG and
its visible text (shadow roots included) is checked for the expected tags and for empty or error
states.

    python -m bench.tensorboard_browser [--out DIR] [--run RUN] [--chromium PATH]

Prints one line per dashboard; exits non-zero with one line per failed dashboard.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.chromium import (
    CHROMIUM_NAMES,
    DevTools,
    chromium,
    find_chromium,
    get,
    process_group,
    wait_for,
)

ROOT = Path(__file__).resolve().parents[1]
# dashboard (URL hash) -> strings its visible text must hold
EXPECTED = {
    "timeseries": ("search/best_score", "search/score"),
    "hparams": ("edge_1_0", "Color by"),  # "Color by": the parallel-coordinates view
    "images": ("pareto", "search/histogram_"),
}
# the query part of a dashboard's address: Time Series filtered to the search's tags
QUERY = {"timeseries": "?tagFilter=search"}
# visible text that means an empty or broken dashboard
BAD_TEXT = (
    "No dashboards are active",
    "data was found",  # "No image data was found.", "No hparams data was found."
    "No data",
    "no data",
    "Data could not be loaded",
    "Failed to load",
    "failed to fetch",
    "Error",
)
# the visible text of the page, through shadow roots (TensorBoard's Polymer dashboards use them)
VISIBLE_TEXT_JS = """(() => {
  const out = [];
  const skip = new Set(['STYLE', 'SCRIPT', 'TEMPLATE', 'NOSCRIPT']);
  const walk = (node) => {
    if (node.shadowRoot) walk(node.shadowRoot);
    for (const child of node.childNodes) {
      if (child.nodeType === 3) {
        const parent = child.parentElement;
        if (parent && parent.getClientRects().length > 0) out.push(child.textContent);
      } else if (child.nodeType === 1 && !skip.has(child.tagName)) {
        walk(child);
      }
    }
  };
  walk(document.body);
  return out.join(' ').replace(/\\s+/g, ' ');
})()"""
# click the element whose own text is `label` (searched through shadow roots); true if found
CLICK_JS = """((label) => {
  const find = (node) => {
    if (node.shadowRoot) { const hit = find(node.shadowRoot); if (hit) return hit; }
    for (const child of node.children || []) {
      if (child.textContent.trim().toUpperCase() === label && child.children.length <= 1
          && child.getClientRects().length > 0) return child;
      const hit = find(child);
      if (hit) return hit;
    }
    return null;
  };
  const hit = find(document.body);
  if (hit) hit.click();
  return hit !== null;
})"""


def dashboard_url(port: int, dashboard: str) -> str:
    """The address of one TensorBoard dashboard on the loopback interface."""
    if dashboard not in EXPECTED:
        raise ValueError(f"unknown dashboard {dashboard!r}; allowed: {', '.join(EXPECTED)}")
    return f"http://127.0.0.1:{port}/{QUERY.get(dashboard, '')}#{dashboard}"


def text_problems(dashboard: str, text: str) -> list[str]:
    """What is wrong with a dashboard's visible text: error or empty states, missing content.
    Time Series shows a tag's group apart from its name (``search /score``): spaces before a
    slash are dropped before matching."""
    text = text.replace(" /", "/")
    problems = [f"shows {bad!r}" for bad in BAD_TEXT if bad in text]
    problems += [f"lacks {want!r}" for want in EXPECTED[dashboard] if want not in text]
    return problems


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def plugins_ready(port: int) -> bool:
    """TensorBoard has loaded the scalars, images and hparams of the run."""
    listing = json.loads(get(f"http://127.0.0.1:{port}/data/plugins_listing"))
    return all(listing.get(name, {}).get("enabled") for name in ("scalars", "images", "hparams"))


def search_command(run: Path) -> list[str]:
    """A small search (2 epochs of training, 8 trials, no verify stage) into ``run``."""
    return [
        sys.executable,
        "search.py",
        "trainer.epochs=2",
        "searcher.n_trials=8",
        "verify=off",
        "trainer.num_threads=1",
        f"hydra.run.dir={run}",
    ]


def visit(tools: DevTools, url: str, dashboard: str, timeout: float) -> str:
    """Open ``url`` and wait until its visible text holds the expected strings (or time out);
    for HParams, switch to the parallel-coordinates view first. Returns the visible text."""
    tools.call("Page.navigate", url="about:blank")
    tools.call("Page.navigate", url=url)
    if dashboard == "hparams":
        with contextlib.suppress(TimeoutError):  # reported below: the text lacks the view
            wait_for(
                lambda: tools.evaluate(f"{CLICK_JS}('PARALLEL COORDINATES VIEW')"),
                timeout,
                "the parallel-coordinates tab",
            )
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = tools.evaluate(VISIBLE_TEXT_JS) or ""
        if not any(problem.startswith("lacks") for problem in text_problems(dashboard, text)):
            break
        time.sleep(1.0)
    time.sleep(2.0)  # let charts finish drawing
    return tools.evaluate(VISIBLE_TEXT_JS) or text


def screenshot(tools: DevTools, path: Path) -> None:
    data = tools.call("Page.captureScreenshot", format="png")["data"]
    path.write_bytes(base64.b64decode(data))


def check_dashboards(
    logdir: Path, out: Path, binary: str, timeout: float = 60.0, size: tuple[int, int] = (1400, 900)
) -> dict[str, list[str]]:
    """Serve ``logdir`` with TensorBoard, screenshot each dashboard into ``out`` as
    ``<dashboard>.png`` and its visible text as ``<dashboard>.txt``; dashboard -> problems."""
    out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    serve = [
        sys.executable,
        "-m",
        "tensorboard.main",
        "--logdir",
        str(logdir),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    problems: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory() as tmp, process_group(serve, out / "tensorboard.log"):
        wait_for(lambda: get(f"http://127.0.0.1:{port}/data/logdir"), timeout, "TensorBoard")
        with contextlib.suppress(TimeoutError):  # a dashboard without data is reported below
            wait_for(lambda: plugins_ready(port), timeout, "TensorBoard's plugins")
        with chromium(binary, Path(tmp), *size) as tools:
            for dashboard in EXPECTED:
                text = visit(tools, dashboard_url(port, dashboard), dashboard, timeout)
                screenshot(tools, out / f"{dashboard}.png")
                (out / f"{dashboard}.txt").write_text(text + "\n", encoding="utf-8")
                problems[dashboard] = text_problems(dashboard, text)
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "tensorboard_browser")
    parser.add_argument("--run", type=Path, help="an existing search run (skips the search)")
    parser.add_argument("--chromium", help="the Chromium binary (default: found on PATH)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per wait")
    args = parser.parse_args(argv)
    binary = find_chromium(args.chromium)
    if binary is None:
        print(f"no Chromium binary: tried {args.chromium or ', '.join(CHROMIUM_NAMES)}")
        return 2
    run = args.run or args.out / "run"
    if args.run is None:
        subprocess.run(search_command(run), cwd=ROOT, check=True, capture_output=True)
    problems = check_dashboards(run / "tb", args.out, binary, args.timeout)
    for dashboard, found in problems.items():
        status = "; ".join(found) if found else "ok"
        print(f"{dashboard}: {status} ({args.out / (dashboard + '.png')})")
    return 1 if any(problems.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
