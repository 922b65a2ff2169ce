"""The README's layout section matches the tree: every file and folder it names exists, and every
top-level entry and every module of the packages is named in it."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.conftest import REPO

PACKAGES = ("supernet", "search", "sharenas")
TOKEN = re.compile(r"[\w.-]*\w(?:/[\w.-]*\w)*/?|[(),]")
FILE = re.compile(r".+\.(py|yaml|toml|md|json|sh|txt)$")


def layout_block(readme: str) -> list[str]:
    """The lines of the code block under ``## Layout``."""
    section = readme.split("\n## Layout\n", 1)[1]
    return section.split("```", 2)[1].strip("\n").splitlines()


def layout_entries(lines: list[str]) -> dict[str, str]:
    """Top-level name (first column) -> its description, continuation lines joined."""
    entries: dict[str, str] = {}
    name = ""
    for line in lines:
        if line[:1].strip():
            name, _, rest = line.partition(" ")
            entries[name] = rest
        else:
            entries[name] += " " + line.strip()
    return entries


def named_paths(top: str, description: str) -> set[str]:
    """The paths a description names, relative to the repository: ``x.py`` and ``x/`` are inside
    ``top``; inside ``sub/ (...)`` they are inside ``top/sub``."""
    paths: set[str] = set()
    context = [top.rstrip("/")]
    previous = ""
    for token in TOKEN.findall(description):
        if token == "(":
            is_folder = previous.endswith("/") and previous != "/"
            context.append(f"{context[-1]}/{previous.rstrip('/')}" if is_folder else context[-1])
        elif token == ")":
            context.pop()
        elif token.endswith("/") or FILE.match(token):
            paths.add(f"{context[-1]}/{token}")
        previous = token
    return paths


@pytest.fixture(scope="module")
def entries() -> dict[str, str]:
    return layout_entries(layout_block((REPO / "README.md").read_text(encoding="utf-8")))


def test_parser_reads_nested_folders() -> None:
    text = "a.py, sub/ (b.py, deeper/ (c.py)), d/ (words, not names), f(x), e.py"
    assert named_paths("pkg/", text) == {
        "pkg/a.py",
        "pkg/sub/",
        "pkg/sub/b.py",
        "pkg/sub/deeper/",
        "pkg/sub/deeper/c.py",
        "pkg/d/",
        "pkg/e.py",
    }


def test_every_name_in_the_layout_exists(entries: dict[str, str]) -> None:
    named = set(entries)
    for top, description in entries.items():
        if top.endswith("/"):
            named |= named_paths(top, description)
    missing = sorted(p for p in named if not (REPO / p).exists())
    wrong_kind = sorted(p for p in named if p.endswith("/") and (REPO / p).is_file())
    assert not missing, f"README layout names what does not exist: {missing}"
    assert not wrong_kind, f"README layout calls files folders: {wrong_kind}"


def _tracked_top_level() -> set[str]:
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout: which files are the project's is unknown")
    files = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    return {f.split("/")[0] + ("/" if "/" in f else "") for f in files if not f.startswith(".")}


def test_every_top_level_entry_is_in_the_layout(entries: dict[str, str]) -> None:
    named = {name for top in entries for name in top.split(",")}
    missing = sorted(_tracked_top_level() - named)
    assert not missing, f"top-level entries missing from the README layout: {missing}"


@pytest.mark.parametrize("package", PACKAGES)
def test_every_module_of_a_package_is_in_the_layout(entries: dict[str, str], package: str) -> None:
    named = named_paths(f"{package}/", entries[f"{package}/"])
    root = REPO / package
    children = {f"{package}/{p.name}" for p in root.glob("*.py") if p.name != "__init__.py"}
    children |= {f"{package}/{p.parent.name}/" for p in root.glob("*/__init__.py")}
    missing = sorted(children - named)
    assert not missing, f"modules of {package}/ missing from the README layout: {missing}"
