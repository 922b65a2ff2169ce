"""The wheel, installed as a user installs it: no checkout, configs from the package, the console
scripts run from an empty folder, and a user's own config folder on Hydra's search path."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from setuptools import find_packages

from tests.conftest import REPO, TINY_SEARCH, TINY_TRAIN

SHIPPED = ("pyproject.toml", "README.md", "LICENSE", "conf", "supernet", "search", "sharenas")


def test_pyproject_lists_every_package_of_the_tree():
    listed = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    found = find_packages(str(REPO), include=["supernet*", "search*", "sharenas*"])
    groups = [f"sharenas.conf.{d.name}" for d in (REPO / "conf").iterdir() if d.is_dir()]
    assert sorted(listed) == sorted([*found, "sharenas.conf", *groups])  # groups: yaml only


def run(cmd: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HYDRA_FULL_ERROR")}
    env |= {"OMP_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd[0]} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    """A fresh virtual environment holding the built wheel; its dependencies (torch, ...) come
    from this interpreter's site-packages, added after its own, so nothing is downloaded."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    src.mkdir()
    for name in SHIPPED:  # a copy, so the build writes nothing into the checkout
        copy = shutil.copytree if (REPO / name).is_dir() else shutil.copy
        copy(REPO / name, src / name, **({"ignore": _ignored} if copy is shutil.copytree else {}))
    pip = [sys.executable, "-m", "pip"]
    built = run(
        [*pip, "wheel", str(src), "--no-deps", "--no-build-isolation", "-w", str(root)], root
    )
    assert "Warning" not in built.stdout + built.stderr, built.stdout + built.stderr
    wheel = next(root.glob("sharenas-*.whl"))
    run([sys.executable, "-m", "venv", "--without-pip", str(root / "venv")], root)
    python = root / "venv" / "bin" / "python"
    purelib = run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], root
    )
    sites = [p for p in sys.path if p.endswith("site-packages")]
    (Path(purelib.stdout.strip()) / "dependencies.pth").write_text("\n".join(sites) + "\n")
    run([*pip, "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)], root)
    return root / "venv"


def _ignored(_dir: str, names: list[str]) -> list[str]:
    return [n for n in names if n == "__pycache__" or n.endswith(".egg-info")]


def test_installed_modules_and_configs_come_from_the_wheel(venv, tmp_path):
    code = (
        "import sharenas, supernet, search, sharenas.config as c; "
        "print(sharenas.__file__, supernet.__file__, search.__file__, c.conf_dir())"
    )
    paths = run([str(venv / "bin" / "python"), "-c", code], tmp_path).stdout.split()
    assert all(Path(p).resolve().is_relative_to(venv.resolve()) for p in paths), paths
    assert (Path(paths[-1]) / "search.yaml").is_file() and (Path(paths[-1]) / "space").is_dir()


def test_sharenas_search_runs_from_an_empty_folder_with_a_user_config_folder(venv, tmp_path):
    user = tmp_path / "my_conf" / "data"
    user.mkdir(parents=True)
    (user / "digits_wide_val.yaml").write_text(
        "defaults:\n  - digits\n  - _self_\nval_fraction: 0.25\n"
    )
    work = tmp_path / "empty"
    work.mkdir()
    overrides = [o for o in (*TINY_TRAIN, *TINY_SEARCH) if not o.startswith("data=")]
    run(
        [
            str(venv / "bin" / "sharenas-search"),
            f"hydra.searchpath=[file://{tmp_path / 'my_conf'}]",
            "data=digits_wide_val",
            *overrides,
        ],
        work,
    )
    results = list(work.glob("outputs/default/search/*/results.json"))
    assert len(results) == 1, sorted(p.relative_to(work) for p in work.rglob("*"))[:20]
    data = json.loads(results[0].read_text())
    assert len(data["records"]) == 5
    config = (results[0].parent / ".hydra" / "config.yaml").read_text()
    assert "val_fraction: 0.25" in config


def test_console_script_rejects_an_unknown_option_in_one_line(venv, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [str(venv / "bin" / "sharenas-train"), "space=bogus"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert "'bogus'" in proc.stderr and "nb201" in proc.stderr
