"""bench/README.md is the benchmark's appendix: every log it keeps is cited, every log it cites
is kept, every row it names is a row, and every command it gives is a module of bench/."""

from __future__ import annotations

import re

from bench.rows import load_rows
from tests.conftest import REPO

BENCH = REPO / "bench"
README = (BENCH / "README.md").read_text(encoding="utf-8")


def test_the_readme_cites_exactly_the_committed_logs():
    cited = set(re.findall(r"bench/logs/([\w.-]+\.log)", README))
    kept = {p.name for p in (BENCH / "logs").glob("*.log")}
    assert cited == kept


def test_every_row_the_readme_names_is_a_row():
    named = set(re.findall(r"`((?:full|fewshot|gm|costsplit)-[\w.-]+)`", README))
    named = {n for n in named if "..." not in n}
    assert len(named) > 20 and named <= set(load_rows().rows)


def test_every_command_in_the_docs_is_a_bench_module():
    docs = README + (REPO / "README.md").read_text(encoding="utf-8")
    modules = set(re.findall(r"python -m bench\.(\w+)", docs))
    assert "fidelity" in modules and "ceiling" in modules
    assert {m for m in modules if not (BENCH / f"{m}.py").exists()} == set()
    assert not re.search(r"python bench/\w", docs)  # the old script form
