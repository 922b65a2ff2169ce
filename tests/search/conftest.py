"""Fixtures of the search tests."""

from __future__ import annotations

import pytest

from tests.search.records import sample_records


@pytest.fixture
def records() -> list[dict]:
    """Six evaluated records (``tests.search.records.sample_records``)."""
    return sample_records()
