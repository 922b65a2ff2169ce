"""Tests for search.tables: console and markdown tables and their header line."""

from __future__ import annotations

import pytest

from search.ranking import leaderboard
from search.tables import DEFAULT_COLUMNS, format_table, human, table_columns, top_of
from tests.search.records import A_BEST, A_TIE1, A_TIE2


@pytest.mark.parametrize(
    ("n", "text"),
    [(0, "0"), (950, "950"), (1234, "1.23K"), (1_230_000, "1.23M"), (45_600_000, "45.6M")]
    + [(999_999, "1.00M"), (123_456_789, "123M"), (2.5e9, "2.50G")],
)
def test_human(n: float, text: str) -> None:
    assert human(n) == text


def test_format_table_header_separator_and_k_rows(records: list[dict]) -> None:
    lines = format_table(leaderboard(records), k=3).splitlines()
    assert lines[0].split() == ["rank", "val_acc", "val_loss", "params", "flops", "trial", "arch"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert len(lines) == 2 + 3
    assert lines[2].split()[:5] == ["1", "93.75", "0.44", "1.80M", "180M"]
    assert lines[2].endswith(A_BEST)
    assert len(format_table(records, k=10).splitlines()) == 2 + len(records)  # ranks unranked rows
    header_cols = [lines[0].index("arch")] * 3
    assert [line.index("|") for line in lines[2:]] == header_cols  # arch column aligned


def test_format_table_shows_feasibility(records: list[dict]) -> None:
    marked = [{**r, "feasible": r["arch"] != A_BEST} for r in records]
    columns = [*DEFAULT_COLUMNS[:-1], "feasible", "arch"]
    lines = format_table(leaderboard(marked), k=10, columns=columns).splitlines()
    assert lines[0].split()[-2:] == ["feasible", "arch"]
    assert lines[-1].split()[-2:] == ["no", A_BEST] and lines[2].split()[-2:] == ["yes", A_TIE1]


def test_table_columns_show_every_objective_once() -> None:
    assert table_columns() == list(DEFAULT_COLUMNS)
    columns = table_columns(["val_acc", "latency_ms", "flops", "train_loss", "latency_ms"], True)
    assert columns == [*DEFAULT_COLUMNS[:-1], "latency_ms", "train_loss", "feasible", "arch"]


def test_format_table_shows_latency(records: list[dict]) -> None:
    lines = format_table(leaderboard(records), columns=table_columns(["latency_ms"])).splitlines()
    assert lines[0].split()[-2:] == ["latency_ms", "arch"]
    by_arch = {line.split()[-1]: line.split()[-2] for line in lines[2:]}
    assert by_arch[A_TIE2] == "3.25" and by_arch[A_BEST] == "-"  # measured, and not measured


@pytest.mark.parametrize(
    ("k", "n", "text"), [(10, 5, "all 5"), (5, 5, "all 5"), (3, 5, "top 3 of 5"), (10, 0, "all 0")]
)
def test_top_of_never_claims_more_rows_than_there_are(k: int, n: int, text: str) -> None:
    assert top_of(k, n) == text


def test_a_column_gets_the_decimals_that_tell_its_values_apart() -> None:
    rows = [
        {"rank": i + 1, "score": s, "val_acc": a, "arch": f"a{i}"}
        for i, (s, a) in enumerate([(0.0312, 95.5), (0.0251, 95.25), (0.0193, 94.0)])
    ]
    lines = format_table(rows, columns=["rank", "score", "val_acc", "arch"]).splitlines()
    assert [line.split()[1:3] for line in lines[2:]] == [
        ["0.031", "95.50"],
        ["0.025", "95.25"],
        ["0.019", "94.00"],
    ]
    rows[1]["score"] = 0.0314  # reads as 0.031 beside 0.0312 at 3 decimals
    lines = format_table(rows, columns=["rank", "score", "arch"]).splitlines()
    assert [line.split()[1] for line in lines[2:]] == ["0.0312", "0.0314", "0.0193"]
