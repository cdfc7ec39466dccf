"""A tiny real PyMC estimator used to test the experiment machinery (runner, sweeps, CLI).

A two-way fixed-effects DiD on ICB x year means: ``y_gt = a_g + b_t + delta * D_gt + e``.  It
samples with :func:`hepcausal.sampling.sample_pymc`, checks convergence and summarises ``delta``
like the package estimators do.  Each fit appends a line to ``$HEPCAUSAL_TEST_FIT_LOG`` (when
set) so that tests can count refits.

The registry is a closed table: tests add the entry :data:`TINY` under :data:`TARGET` with the
``tiny_registry`` fixture (``monkeypatch.setitem(ESTIMATORS, TARGET, TINY)``); it reaches only
this process (spawned sweep workers see the shipped table).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pymc as pm
import pytest
from pydantic import BaseModel, ConfigDict

from hepcausal import schema
from hepcausal.diagnostics import check_convergence
from hepcausal.experiments.registry import ESTIMATORS, EstimatorEntry, PriorSpec
from hepcausal.models.priors import Priors
from hepcausal.results import FitResult, append_terms
from hepcausal.sampling import SamplerSettings, sample_pymc
from hepcausal.spec import Design, Inference
from hepcausal.summaries import summarise_effect

TARGET = "tiny_did"


@dataclass(frozen=True)
class TinyPriors(Priors):
    """Prior scales of the tiny DiD (standardised scale, like every estimator's)."""

    noise_sd: float = 1.0


def fit_tiny_did(
    panel: pd.DataFrame,
    outcome: str,
    design: Design | None = None,
    inference: Inference | None = None,
    *,
    effect_sd: float = 1.0,
) -> FitResult:
    """Tiny DiD on ICB-year means (``effect_sd`` is a method option, ``priors`` may set
    ``noise_sd``)."""
    design = design or Design(comparators="all")
    inference = inference or Inference(settings=SamplerSettings(draws=300, tune=300, chains=2))
    treated, comparators, start_year = design.treated, design.comparators, design.start_year
    priors = TinyPriors.from_any(dict(inference.priors or {})).to_dict()
    if not effect_sd > 0:
        raise ValueError(f"effect_sd must be > 0, got {effect_sd}")
    rope = None if inference.rope == "auto" else inference.rope
    groups = sorted(set(panel[schema.ICB]) - {treated}) if comparators == "all" else comparators
    sub = panel[panel[schema.ICB].isin([treated, *groups])]
    cells = sub.groupby([schema.ICB, schema.YEAR], as_index=False)[outcome].mean()
    g_codes, g_idx = np.unique(cells[schema.ICB].to_numpy(dtype=str), return_inverse=True)
    t_codes, t_idx = np.unique(cells[schema.YEAR].to_numpy(), return_inverse=True)
    d = ((cells[schema.ICB] == treated) & (cells[schema.YEAR] >= start_year)).to_numpy(float)
    y = cells[outcome].to_numpy(float)
    loc, scale = y.mean(), y.std()
    with pm.Model(coords={"icb": g_codes, "year": t_codes}) as model:
        a = pm.Normal("a", 0, 2, dims="icb")
        b = pm.ZeroSumNormal("b", 1, dims="year")
        delta = pm.Normal("delta", 0, effect_sd)
        sigma = pm.HalfNormal("sigma", priors.get("noise_sd", 1.0))
        pm.Normal("y", a[g_idx] + b[t_idx] + delta * d, sigma, observed=(y - loc) / scale)
    idata = sample_pymc(model, inference.settings)
    idata.posterior["effect"] = idata.posterior["delta"] * scale
    append_terms(idata, {"effect": idata.posterior["effect"].values})  # the result contract
    diag = check_convergence(idata, ["a", "b", "delta", "sigma"], ess_min=100)
    eff = summarise_effect(
        idata.posterior["effect"], name="tiny DiD effect", hdi_prob=inference.hdi_prob, rope=rope
    )
    log = os.environ.get("HEPCAUSAL_TEST_FIT_LOG")
    if log:
        with Path(log).open("a") as fh:
            fh.write(f"{outcome},{start_year},{len(groups)}\n")
    return FitResult(idata, diag, {"effect": eff}, {"estimator": "tiny_did", "outcome": outcome})


class TinyOptions(BaseModel):
    """Options of :func:`fit_tiny_did`."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    effect_sd: float = 1.0


TINY = EstimatorEntry(
    TARGET,
    lambda: fit_tiny_did,
    TinyOptions,
    lambda _options: frozenset({"treated", "comparators", "start_year", "rope", "hdi_prob"}),
    PriorSpec(lambda: TinyPriors),
    backends=("pymc",),
)


@pytest.fixture(autouse=True)
def tiny_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register :data:`TINY` for one test (autouse in the modules that import it)."""
    monkeypatch.setitem(ESTIMATORS, TARGET, TINY)
