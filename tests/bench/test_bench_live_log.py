"""bench/live_log.py: the command it times and the figures line it prints."""

from __future__ import annotations

from pathlib import Path

from bench.live_log import ratio_line, search_command


def test_the_two_settings_differ_only_in_live_log() -> None:
    live = search_command(Path("c.pt"), Path("o"), 200, live=True)
    end = search_command(Path("c.pt"), Path("o"), 200, live=False)
    assert [a for a, b in zip(live, end) if a != b] == ["results.live_log=true"]
    assert "searcher.n_trials=200" in live and "supernet.checkpoint=c.pt" in live


def test_ratio_line_is_live_over_end_of_medians() -> None:
    assert ratio_line([2.0, 3.0, 10.0], [2.0, 1.0, 4.0]) == (
        "live 3.0 s  at-the-end 2.0 s  live/end 1.500"
    )
