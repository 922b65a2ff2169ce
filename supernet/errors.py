"""Errors raised at the boundary (config, arch strings, checkpoints). Each names the bad value."""

from __future__ import annotations

from collections.abc import Iterable


class SharenasError(ValueError):
    """Base class: a user-facing error whose message is one clear line."""


class InvalidArchError(SharenasError):
    """An arch string or mapping that is not a point of the space."""


class UnknownNameError(SharenasError):
    """A registry lookup (space, strategy, sampler, ...) with a name that is not registered."""

    def __init__(self, kind: str, name: object, allowed: Iterable[str]) -> None:
        allowed = sorted(allowed)
        super().__init__(f"unknown {kind} {name!r}; allowed: {', '.join(allowed)}")
        self.kind, self.name, self.allowed = kind, name, allowed


class CheckpointError(SharenasError):
    """A checkpoint that is missing, corrupt, of another format version or of another space."""


def check_fraction(label: str, value: object, example: str) -> float:
    """``value`` as a float strictly between 0 and 1, else a one-line error naming ``label``."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = float("nan")
    if isinstance(value, bool) or not 0.0 < number < 1.0:
        raise SharenasError(f"{label} must be in (0, 1) ({example}); got {value!r}")
    return number


def check_int(label: str, value: object, minimum: int = 0) -> int:
    """``value`` as an int >= ``minimum``, else a one-line error naming ``label`` and the value.

    Config values come from YAML and the command line, so "3" and 3.0 are accepted; "abc", 1.5
    and booleans are not."""
    if isinstance(value, bool):
        ok = False
    elif isinstance(value, int):  # exact, however large (a float would round 2**53 + 1)
        ok, number = True, value
    else:
        try:
            number = float(value)  # type: ignore[arg-type]
            ok = number.is_integer()
        except (TypeError, ValueError):
            ok = False
    if not ok or int(number) < minimum:
        raise SharenasError(f"{label} must be an integer >= {minimum}, got {value!r}")
    return int(number)
