"""The README's Python example, run verbatim as a user runs it in a notebook."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import sharenas
from supernet.errors import InvalidArchError, SharenasError
from tests.conftest import REPO

MARKER = "<!-- api-example"


def readme_example() -> str:
    text = (REPO / "README.md").read_text()
    after = text[text.index(MARKER) :]
    return re.search(r"```python\n(.*?)```", after, re.DOTALL).group(1)


def test_readme_example_ranks_100_archs(tmp_path):
    code = readme_example()
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [ln for ln in proc.stdout.splitlines() if re.match(r"^\d+ -?\d+\.\d\d \d+\.\d%", ln)]
    assert [int(r.split()[0]) for r in rows] == [1, 2, 3, 4, 5]
    scores = [float(r.split()[1]) for r in rows]  # the default estimator's score, best first
    assert scores == sorted(scores, reverse=True)
    assert len(list(tmp_path.glob("outputs/default/train/*/supernet.pt"))) == 1


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    out = tmp_path_factory.mktemp("api")
    tiny = ["space.macro.channels=4", "trainer.epochs=1", "trainer.steps_per_epoch=3"]
    result = sharenas.train([*tiny, "trainer.progress=false"], out_dir=out)
    return sharenas.load(result["checkpoint"], count_flops=False)


def test_rank_scores_each_distinct_arch_once_best_first(loaded):
    archs = [str(a) for a in list(loaded.space.enumerate())[:12]]
    ranked = loaded.rank(archs + archs[:3])
    assert sorted(r["arch"] for r in ranked) == sorted(archs)
    assert [r["rank"] for r in ranked] == list(range(1, 13))
    scores = [r["score"] for r in ranked]  # the default estimator's, as python search.py's
    assert scores == sorted(scores, reverse=True) and loaded.evaluator.scorer.fusion
    accs = [r["val_acc"] for r in loaded.rank(archs, key="val_acc")]
    assert accs == sorted(accs, reverse=True)
    by_loss = loaded.rank(archs, key="val_loss")
    assert [r["val_loss"] for r in by_loss] == sorted(r["val_loss"] for r in by_loss)


def test_extract_matches_the_supernet_on_that_path(loaded):
    import torch

    arch = loaded.space.largest()
    model = loaded.extract(str(arch))
    x = loaded.built.splits.val.tensors[0][:8]
    with torch.no_grad():
        assert torch.equal(model(x), loaded.extract(arch)(x))
    assert loaded.score(arch)["canonical"] == loaded.space.canonical(arch)


def test_bad_inputs_fail_in_one_line(loaded):
    with pytest.raises(InvalidArchError, match="bogus"):
        loaded.rank(["|bogus~0|+|none~0|none~1|+|none~0|none~1|none~2|"])
    with pytest.raises(SharenasError, match="val_acc"):
        loaded.rank([str(loaded.space.largest())], key="accuracy")
    with pytest.raises(SharenasError, match="'bogus'"):
        sharenas.search(["searcher=bogus"])


def test_the_api_writes_where_hydra_run_dir_says(tmp_path):
    import datetime

    from sharenas.config import compose, default_out_dir

    cfg = compose("search", [])
    assert default_out_dir(cfg, "search", [f"hydra.run.dir={tmp_path}/a"]) == tmp_path / "a"
    year = str(datetime.date.today().year)
    given = [f"hydra.run.dir={tmp_path}/${{experiment}}_${{now:%Y}}"]
    assert default_out_dir(cfg, "search", given) == tmp_path / f"default_{year}"
    assert default_out_dir(cfg, "train", []).parts[:3] == ("outputs", "default", "train")
    assert default_out_dir(cfg, "search", [f"hydra.run.dir='{tmp_path}/a b'"]) == tmp_path / "a b"
    with pytest.raises(SharenasError, match="cannot resolve it from Python.*pass out_dir="):
        default_out_dir(cfg, "search", ["hydra.run.dir=runs/${hydra.job.override_dirname}"])


def test_sharenas_train_writes_where_hydra_run_dir_says(tmp_path):
    out = tmp_path / "run"
    quick = ["trainer.epochs=1", "trainer.steps_per_epoch=2", "trainer.progress=false"]
    trained = sharenas.train([*quick, "space.macro.channels=4", f"hydra.run.dir={out}"])
    assert Path(trained["checkpoint"]) == out / "supernet.pt" and (out / "tb").is_dir()
