"""Shared test configuration: cache locations, the real-data fixture, markers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Point compiler/plot caches into this clone's .cache (git-ignored) unless the caller (e.g.
# .ci/run) already did: one cache per clone, never shared between checkouts on one machine.
_CACHE = Path(
    os.environ.get("HEPCAUSAL_TEST_CACHE", Path(__file__).resolve().parents[1] / ".cache")
)
os.environ.setdefault("PYTENSOR_FLAGS", f"compiledir={_CACHE / 'pytensor'}")
os.environ.setdefault("XDG_CACHE_HOME", str(_CACHE))
os.environ.setdefault("MPLCONFIGDIR", str(_CACHE / "matplotlib"))
os.environ.setdefault("MPLBACKEND", "Agg")

_DEFAULT_NHS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "nhs"


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def nhs_data_dir() -> Path:
    """Path of the real NHS open data (HEPCAUSAL_NHS_DATA, else ../shared/data/nhs).

    In CI the data must be there: a missing directory fails the test instead of skipping it.
    """
    path = Path(os.environ.get("HEPCAUSAL_NHS_DATA") or _DEFAULT_NHS)
    if not (path / "payments").is_dir():
        msg = f"real NHS data not found at {path} (set HEPCAUSAL_NHS_DATA)"
        if _in_ci():
            pytest.fail(msg)
        pytest.skip(msg)
    return path
