"""The common result returned by every hepcausal estimator."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import arviz as az
import pandas as pd

from hepcausal.diagnostics import Diagnostics
from hepcausal.summaries import EffectSummary, effects_table


@dataclass
class FitResult:
    """A fitted estimator: posterior (ArviZ InferenceData), diagnostics and named estimands.

    ``effects`` is ordered; the first entry is the headline estimand (e.g. the change in the
    LLR deprivation gradient relative to comparators).  ``meta`` records what was fitted
    (estimator, outcome, backend, settings, data description) for provenance.
    """

    idata: az.InferenceData
    diagnostics: Diagnostics
    effects: dict[str, EffectSummary]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def headline(self) -> EffectSummary:
        """The first (main) estimand."""
        return next(iter(self.effects.values()))

    def summary(self) -> pd.DataFrame:
        """One row per estimand, with HDI, P(direction) and ROPE probability."""
        return effects_table(list(self.effects.values()))

    def save(self, path: str | Path) -> Path:
        """Write the InferenceData to netCDF (atomically: temp file then rename)."""
        path = Path(path)
        tmp = path.with_suffix(path.suffix + ".tmp")
        self.idata.to_netcdf(str(tmp))
        tmp.replace(path)
        return path

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}({self.meta.get('estimator', '')})"]
        lines += [f"  {e.sentence()}" for e in self.effects.values()]
        lines.append(f"  diagnostics: {self.diagnostics}")
        return "\n".join(lines)
