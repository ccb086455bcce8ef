"""Fixtures shared by the report tests."""

from __future__ import annotations

import pandas as pd
import pytest

from hdd_lib.report.published import load_published


@pytest.fixture(scope="session")
def published() -> pd.DataFrame:
    """The packaged published numbers."""
    return load_published()
