"""bench/searcher_quality.py: both ways of handling a held proposal run on a small table."""

from __future__ import annotations

import json
import re

from bench import searcher_quality
from supernet.spaces import build_space


def test_both_modes_search_the_table_and_the_redirect_tells_no_repeat(tmp_path, capsys):
    space = build_space("nb201")
    cells = [str(a) for a in space.enumerate()]
    table = tmp_path / "table.json"  # a synthetic table: accuracy = number of 3x3 convs + noise
    table.write_text(
        json.dumps({c: c.count("nor_conv_3x3") + (i % 97) / 1000 for i, c in enumerate(cells)})
    )
    assert searcher_quality.main(["--trials", "40", "--seeds", "0", "--table", str(table)]) == 0
    out = capsys.readouterr().out
    redirect = re.search(r"^redirect +0 +(\d+) +(\d+) ", out, re.M)
    repeat = re.search(r"^ +repeat +0 +(\d+) +(\d+) ", out, re.M)
    assert redirect and repeat, out
    assert int(redirect[1]) == 40 and int(redirect[2]) > 0  # 40 archs in 40 trials, some moved
    assert int(repeat[1]) >= 40 and int(repeat[2]) == 0
    assert re.search(r"^repeat/redirect searcher CPU \d+\.\d+$", out, re.M), out
