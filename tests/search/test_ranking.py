"""Tests for search.ranking: the leaderboard and the Pareto front."""

from __future__ import annotations

import pytest

from search.ranking import leaderboard, pareto_front
from supernet.spaces import build_space
from tests.search.records import (
    A_BEST,
    A_CHEAP,
    A_TIE1,
    A_TIE2,
    A_TINY,
    A_WORSE,
    C3,
    SK,
    nb201,
    rec,
)


def test_leaderboard_order_ties_and_ranks(records: list[dict]) -> None:
    board = leaderboard(records)
    assert [r["arch"] for r in board] == [A_BEST, A_TIE1, A_TIE2, A_CHEAP, A_WORSE, A_TINY]
    assert [r["rank"] for r in board] == [1, 2, 3, 4, 5, 6]
    assert all("rank" not in r for r in records)  # inputs untouched
    assert leaderboard(list(reversed(records))) == board  # independent of input order
    by_loss = leaderboard(records, key="val_loss", descending=False)
    assert by_loss[0]["arch"] == A_BEST and by_loss[-1]["arch"] == A_TINY


def test_leaderboard_names_missing_key(records: list[dict]) -> None:
    with pytest.raises(ValueError, match="latency_ms"):
        leaderboard(records, key="latency_ms")


def test_pareto_front_drops_dominated_and_duplicates(records: list[dict]) -> None:
    dup = dict(records[2])  # A_BEST scored again with the same numbers
    same_acc_costlier = rec(nb201(C3, C3, C3, C3, C3, C3), 93.75, 200_000_000, 6)
    front = pareto_front([*records, dup, same_acc_costlier])
    assert [r["arch"] for r in front] == [A_BEST, A_TIE1, A_CHEAP, A_TINY]
    assert A_WORSE not in {r["arch"] for r in front}
    # params as the cost, and a third objective (lower loss) that adds nothing new here
    three = pareto_front(records, (("val_acc", "max"), ("params", "min"), ("val_loss", "min")))
    assert [r["arch"] for r in three] == [A_BEST, A_TIE1, A_CHEAP, A_TINY]
    assert [r["arch"] for r in pareto_front(records, (("val_acc", "max"),))] == [A_BEST]


def test_pareto_front_rejects_bad_direction(records: list[dict]) -> None:
    with pytest.raises(ValueError, match="'max' or 'min'"):
        pareto_front(records, (("val_acc", "up"),))


def test_leaderboard_breaks_accuracy_ties_by_lower_loss() -> None:
    a = "|skip_connect~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|"
    z = "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|"
    rows = [
        {"arch": a, "val_acc": 90.0, "val_loss": 0.5},
        {"arch": z, "val_acc": 90.0, "val_loss": 0.3},
    ]
    assert [r["arch"] for r in leaderboard(rows)] == [z, a]


def test_leaderboard_ties_by_rounded_loss_then_params_then_arch() -> None:
    big = nb201(C3, C3, C3, C3, C3, C3)
    small = nb201(SK, SK, SK, SK, SK, SK)  # sorts after `big` as a string, but is smaller
    rows = [
        {"arch": big, "val_acc": 90.0, "val_loss": 0.300001, "params": 2000},
        {"arch": small, "val_acc": 90.0, "val_loss": 0.300004, "params": 100},  # same at 4 dp
        {"arch": A_TINY, "val_acc": 90.0, "val_loss": 0.2999, "params": 5000},  # lower loss
    ]
    assert [r["arch"] for r in leaderboard(rows)] == [A_TINY, small, big]
    same = [{**r, "val_loss": 0.3, "params": 100} for r in rows]
    assert [r["arch"] for r in leaderboard(same)] == sorted(r["arch"] for r in rows)
    # Ranking by params: equal params fall back to the loss.
    by_params = leaderboard(rows[:2] + [{**rows[2], "params": 100}], "params", descending=False)
    assert [r["arch"] for r in by_params] == [A_TINY, small, big]


def test_infeasible_records_rank_last(records: list[dict]) -> None:
    marked = [{**r, "feasible": r["arch"] != A_BEST} for r in records]
    board = leaderboard(marked)
    assert board[-1]["arch"] == A_BEST and board[0]["arch"] == A_TIE1
    assert [r["arch"] for r in leaderboard(records)][1:] == [r["arch"] for r in board][:-1]


def test_rows_computing_the_same_network_name_the_first_of_them():
    nb201 = build_space("nb201")
    conv = "|none~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|"
    conv_dead_pool = "|avg_pool_3x3~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|"
    pool = "|none~0|+|none~0|none~1|+|avg_pool_3x3~0|none~1|none~2|"
    records = [
        {"arch": a, "val_acc": acc, "canonical": nb201.canonical(nb201.parse(a))}
        for a, acc in ((conv_dead_pool, 80.0), (pool, 90.0), (conv, 85.0))
    ]
    ranked = leaderboard(records)
    assert [r["arch"] for r in ranked] == [pool, conv, conv_dead_pool]
    assert [r["same_as"] for r in ranked] == [None, None, 2]
    assert "same_as" not in leaderboard([{"arch": "a", "val_acc": 1.0}])[0]
