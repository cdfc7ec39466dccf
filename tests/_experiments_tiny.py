"""A tiny real PyMC estimator used to test the experiment machinery (runner, sweeps, CLI).

A two-way fixed-effects DiD on ICB x year means: ``y_gt = a_g + b_t + delta * D_gt + e``.  It
samples with :func:`hepcausal.sampling.sample_pymc`, checks convergence and summarises ``delta``
like the package estimators do.  Each fit appends a line to ``$HEPCAUSAL_TEST_FIT_LOG`` (when
set) so that tests can count refits.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pymc as pm

from hepcausal import schema
from hepcausal.diagnostics import check_convergence
from hepcausal.results import FitResult, append_terms
from hepcausal.sampling import SamplerSettings, sample_pymc
from hepcausal.summaries import summarise_effect

TARGET = "_experiments_tiny:fit_tiny_did"


def fit_tiny_did(
    panel: pd.DataFrame,
    outcome: str,
    *,
    treated: str = schema.LLR_ICB,
    comparators: Any = "all",
    start_year: int = schema.HEP_START_YEAR,
    settings: SamplerSettings | None = None,
    priors: dict[str, float] | None = None,
    hdi_prob: float = 0.95,
    rope: Any = None,
    effect_sd: float = 1.0,
) -> FitResult:
    """Tiny DiD on ICB-year means (``effect_sd`` is a method option, ``priors`` may set
    ``noise_sd``)."""
    priors = dict(priors or {})
    unknown = set(priors) - {"noise_sd"}
    if unknown:
        raise ValueError(f"unknown prior key(s) {sorted(unknown)}")
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
    idata = sample_pymc(model, settings or SamplerSettings(draws=300, tune=300, chains=2))
    idata.posterior["effect"] = idata.posterior["delta"] * scale
    append_terms(idata, {"effect": idata.posterior["effect"].values})  # the result contract
    diag = check_convergence(idata, ["a", "b", "delta", "sigma"], ess_min=100)
    eff = summarise_effect(
        idata.posterior["effect"], name="tiny DiD effect", hdi_prob=hdi_prob, rope=rope
    )
    log = os.environ.get("HEPCAUSAL_TEST_FIT_LOG")
    if log:
        with Path(log).open("a") as fh:
            fh.write(f"{outcome},{start_year},{len(groups)}\n")
    return FitResult(idata, diag, {"effect": eff}, {"estimator": "tiny_did", "outcome": outcome})
