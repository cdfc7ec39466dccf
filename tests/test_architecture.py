"""docs/ARCHITECTURE.md stays honest: every module, table and registry entry it names exists."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
# dotted names in backticks that start with hepcausal, e.g. `hepcausal.models.families.FAMILIES`
NAMES = sorted(set(re.findall(r"`(hepcausal(?:\.[A-Za-z_][A-Za-z0-9_]*)+)", DOC)))


def _resolve(dotted: str) -> object:
    """Import the longest importable module prefix, then walk attributes."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:i]))
        except ModuleNotFoundError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ModuleNotFoundError(dotted)


def test_the_document_names_things() -> None:
    assert len(NAMES) > 20
    assert "## Adding things" in DOC
    for heading in ("an outcome", "an estimator", "a likelihood family", "a plot"):
        assert f"### Adding {heading}" in DOC


@pytest.mark.parametrize("dotted", NAMES)
def test_named_module_or_attribute_exists(dotted: str) -> None:
    _resolve(dotted)


def test_named_files_exist() -> None:
    for path in re.findall(r"`((?:models|tests|docs)/[\w./-]+\.(?:stan|py|md))`", DOC):
        assert (ROOT / path).exists(), path


def test_named_registry_entries_and_families_exist() -> None:
    from hepcausal.experiments.registry import ESTIMATORS
    from hepcausal.models.families import FAMILIES
    from hepcausal.outcomes import OUTCOMES

    assert {"gradient", "did", "ddd", "event_study", "dose_response", "synthetic_control"} <= set(
        ESTIMATORS
    )
    assert "student_t" in FAMILIES
    assert "locum_trainee_fte_per_1k" in OUTCOMES
    stan = (ROOT / "models" / "gradient_explicit.stan").read_text()
    for family in FAMILIES.values():
        if family.name != "gaussian" or not family.marginalisable:
            assert str(family.stan_family) in stan, family.name
