"""Reliability suite: every test names the fault it tries and the outcome it expects.

Mark a test with ``@pytest.mark.fault("what goes wrong", outcome="refused clearly")``.
At the end of a run the terminal summary prints a "Reliability" table: one row per fault,
how many test cases tried it (parametrizations count one each), the expected outcome, and
whether every case passed. The table is Markdown, so README's "Reliability" section is a copy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

# recovered: the run goes on (or resumes) and nothing is lost; refused clearly: one line that
# names the bad value and what is allowed, non-zero exit, nothing written; lost: data is lost.
OUTCOMES = ("recovered", "refused clearly", "lost")


@dataclass
class _Row:
    outcome: str
    # nodeid -> "passed" / "failed" / "skipped"; a failure in any phase makes the case failed.
    cases: dict[str, str] = field(default_factory=dict)

    def count(self, state: str) -> int:
        return sum(1 for s in self.cases.values() if s == state)


_ROWS: dict[str, _Row] = {}
_FAULT_OF: dict[str, str] = {}


def _fault_of(item: pytest.Item) -> tuple[str, str] | None:
    mark = item.get_closest_marker("fault")
    if mark is None:
        return None
    if len(mark.args) != 1 or not isinstance(mark.args[0], str):
        raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.fault takes one fault description")
    outcome = mark.kwargs.get("outcome")
    if outcome not in OUTCOMES:
        raise pytest.UsageError(
            f"{item.nodeid}: fault outcome={outcome!r}; allowed: {', '.join(OUTCOMES)}"
        )
    return mark.args[0], outcome


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fault = _fault_of(item)
        if fault is None:
            continue
        name, outcome = fault
        row = _ROWS.setdefault(name, _Row(outcome))
        if row.outcome != outcome:
            raise pytest.UsageError(
                f"{item.nodeid}: fault {name!r} expects {row.outcome!r} elsewhere, {outcome!r} here"
            )
        _FAULT_OF[item.nodeid] = name


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    name = _FAULT_OF.get(report.nodeid)
    if name is None:
        return
    cases = _ROWS[name].cases
    if report.failed:
        cases[report.nodeid] = "failed"
    elif report.skipped and cases.get(report.nodeid) != "failed":
        cases[report.nodeid] = "skipped"
    elif report.when == "call" and report.nodeid not in cases:
        cases[report.nodeid] = "passed"


def reliability_table() -> list[str]:
    """The Markdown table of the faults run so far."""
    lines = ["| fault | times tried | outcome | result |", "|---|---|---|---|"]
    for name, row in _ROWS.items():
        tried, failed, skipped = len(row.cases), row.count("failed"), row.count("skipped")
        if tried == 0:
            continue
        if failed:
            result = f"FAIL ({failed} of {tried})"
        elif skipped:
            result = f"pass ({skipped} of {tried} skipped)"
        else:
            result = "pass"
        lines.append(f"| {name} | {tried} | {row.outcome} | {result} |")
    return lines


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    lines = reliability_table()
    if len(lines) <= 2:
        return
    terminalreporter.section("Reliability")
    for line in lines:
        terminalreporter.write_line(line)
