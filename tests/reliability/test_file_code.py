"""A checkpoint is data: a ``_target_`` (or any Hydra key) written into its config never runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from supernet.builder import load_trained
from supernet.checkpoint import load_checkpoint
from supernet.errors import CheckpointError
from supernet.training import train
from tests.conftest import REPO, compose_tiny
from tests.reliability.hostile import MARKER_ENV

HOSTILE = "tests.reliability.hostile.write_marker"
EXEC = "builtins.exec"


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("trained")
    train(compose_tiny("train", ["trainer.epochs=1"]), out_dir=out)
    return out / "supernet.pt"


def _write(path: Path, payload: dict) -> Path:
    torch.save(payload, path)
    return path


def _as_version_1(config: dict) -> dict:
    """The config as format 1 stored it: every object by its ``_target_`` path."""
    config = {k: (dict(v) if isinstance(v, dict) else v) for k, v in config.items()}
    config["sharing"] = {"_target_": "supernet.sharing.FullSharing", **config["sharing"]}
    config["sharing"].pop("name")
    config["sampler"] = {"_target_": "supernet.sampling.CostBinnedSampler", **config["sampler"]}
    config["sampler"].pop("name")
    config["data"] = {"_target_": "supernet.data.load_splits", **config["data"]}
    trainer = dict(config["trainer"])
    for key in ("optimizer", "scheduler"):
        node = dict(trainer[key])
        trainer[key] = {"_target_": node.pop("name"), "_partial_": True, **node}
    config["trainer"] = trainer
    return config


# (where, what): the config mutation; each would run the marker writer under instantiate
PAYLOADS = {
    "sharing target": lambda c, m: c["sharing"].update(_target_=HOSTILE, marker=m),
    "data target": lambda c, m: c.update(data={"_target_": HOSTILE, "marker": m}),
    "sampler target": lambda c, m: c["sampler"].update(_target_=HOSTILE, marker=m),
    "nested in sharing": lambda c, m: c["sharing"].update(
        decisions={"_target_": HOSTILE, "marker": m}
    ),
    "inside a list": lambda c, m: c["sharing"].update(
        groups=[[{"_target_": HOSTILE, "marker": m}]]
    ),
    "_args_ to exec": lambda c, m: c.update(
        data={"_target_": EXEC, "_args_": [f"open({str(m)!r}, 'w').write('ran')"]}
    ),
    "_partial_": lambda c, m: c["data"].update(_target_=HOSTILE, _partial_=True, marker=m),
    "optimizer target": lambda c, m: c["trainer"]["optimizer"].update(_target_=HOSTILE),
    "_recursive_ alone": lambda c, m: c["space"].update(_recursive_=True),
}


@pytest.mark.fault("checkpoint config carries _target_ (code)", outcome="refused clearly")
@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("where", sorted(PAYLOADS))
def test_code_in_a_checkpoint_config_is_refused(trained, tmp_path, monkeypatch, where, version):
    marker = tmp_path / "marker"
    monkeypatch.setenv(MARKER_ENV, str(marker))
    payload = torch.load(trained, weights_only=True)
    config = payload["config"] if version == 2 else _as_version_1(payload["config"])
    PAYLOADS[where](config, str(marker))
    path = _write(tmp_path / "hostile.pt", {**payload, "config": config, "format_version": version})
    with pytest.raises(CheckpointError) as err:
        load_trained(path)
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg and "refusing config key" in msg, msg
    assert "_target_" in msg or "_args_" in msg or "_partial_" in msg or "_recursive_" in msg
    assert not marker.exists(), "code from the checkpoint ran"


@pytest.mark.fault("checkpoint config carries _target_ (code)", outcome="refused clearly")
def test_search_cli_refuses_a_hostile_checkpoint(trained, tmp_path):
    marker = tmp_path / "marker"
    payload = torch.load(trained, weights_only=True)
    payload["sharing_note"] = "untouched"
    payload["config"]["sharing"].update(_target_=HOSTILE, marker=str(marker))
    path = _write(tmp_path / "hostile.pt", payload)
    proc = subprocess.run(
        [sys.executable, "search.py", f"supernet.checkpoint={path}", f"hydra.run.dir={tmp_path}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**__import__("os").environ, MARKER_ENV: str(marker), "OMP_NUM_THREADS": "1"},
        timeout=300,
    )
    assert proc.returncode != 0
    errors = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert errors[-1].startswith("error: ") and f"sharing._target_='{HOSTILE}'" in errors[-1]
    assert "Traceback" not in proc.stderr
    assert not marker.exists()


@pytest.mark.fault("checkpoint config names an unregistered object", outcome="refused clearly")
@pytest.mark.parametrize(
    "group, value", [("sharing", "os.system"), ("sampler", "nope"), ("data", "imagenet")]
)
def test_unregistered_names_are_refused(trained, tmp_path, group, value):
    payload = torch.load(trained, weights_only=True)
    payload["config"][group]["name"] = value
    path = _write(tmp_path / "renamed.pt", payload)
    with pytest.raises(CheckpointError) as err:
        load_trained(path)
    msg = str(err.value)
    assert "\n" not in msg and f"{group}.name={value!r}" in msg and "registered: " in msg, msg


@pytest.mark.fault("checkpoint config carries an unknown setting", outcome="refused clearly")
def test_an_unknown_setting_is_refused_naming_it(trained, tmp_path):
    payload = torch.load(trained, weights_only=True)
    payload["config"]["sharing"]["marker"] = "x"
    path = _write(tmp_path / "extra.pt", payload)
    with pytest.raises(CheckpointError, match=r"sharing\.marker is not a setting"):
        load_trained(path)


@pytest.mark.fault("checkpoint of format 1 (_target_ paths) loads", outcome="recovered")
def test_a_format_1_checkpoint_still_loads(trained, tmp_path):
    payload = torch.load(trained, weights_only=True)
    old = {**payload, "format_version": 1, "config": _as_version_1(payload["config"])}
    path = _write(tmp_path / "v1.pt", old)
    assert load_checkpoint(path)["config"] == load_checkpoint(trained)["config"]
    built, _ = load_trained(path)
    ref, _ = load_trained(trained)
    ours, theirs = built.strategy.state_dict(), ref.strategy.state_dict()
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
