"""Records as the evaluator produces them, shared by the tests of ranking, tables, result files
and TensorBoard logging."""

from __future__ import annotations


def nb201(*ops: str) -> str:
    """An NB-201 cell string from its six edge ops, in canonical order."""
    a, b, c, d, e, f = ops
    return f"|{a}~0|+|{b}~0|{c}~1|+|{d}~0|{e}~1|{f}~2|"


C3, C1, SK, AP, NO = "nor_conv_3x3", "nor_conv_1x1", "skip_connect", "avg_pool_3x3", "none"
A_BEST = nb201(C3, C3, C3, SK, C3, C3)
A_TIE1 = nb201(C3, C1, C3, SK, C1, C3)  # ties with A_TIE2 on val_acc; sorts first ("1" < "3")
A_TIE2 = nb201(C3, C3, C1, SK, C3, C1)
A_CHEAP = nb201(SK, C1, SK, SK, AP, C1)
A_WORSE = nb201(C1, AP, SK, SK, NO, C1)  # dominated by A_CHEAP: less accurate and costlier
A_TINY = nb201(SK, NO, SK, SK, NO, SK)


def rec(arch: str, acc: float, flops: int, trial: int, **extra: object) -> dict:
    """A record as the evaluator produces it."""
    base = {
        "arch": arch,
        "val_acc": acc,
        "val_loss": round(2.0 - acc / 60, 4),
        "params": flops // 100,
        "flops": flops,
        "latency_ms": None,
        "trial": trial,
        "supernet": trial % 2,
    }
    return {**base, **extra}


def sample_records() -> list[dict]:
    """Six records: a best, two tied on val_acc, a cheap one, one it dominates, a tiny one."""
    return [
        rec(A_TIE2, 91.5, 120_000_000, 0, latency_ms=3.25),
        rec(A_WORSE, 84.0, 60_000_000, 1),
        rec(A_BEST, 93.75, 180_000_000, 2, my_metric=0.5),
        rec(A_CHEAP, 88.0, 40_000_000, 3),
        rec(A_TIE1, 91.5, 110_000_000, 4),
        rec(A_TINY, 70.25, 10_000_000, 5),
    ]
