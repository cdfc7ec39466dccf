"""Test-only generator: a linear-factor ``time x unit`` panel with known synthetic-control truth."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd


class FactorPanel(NamedTuple):
    """A simulated ``time x unit`` panel with a known effect on unit ``'treated'``."""

    wide: pd.DataFrame
    untreated: pd.Series  # the treated unit's true untreated outcome
    weights: pd.Series  # true donor weights
    effect: float
    start: int


def simulate_factor_panel(
    *,
    n_donors: int = 12,
    n_pre: int = 15,
    n_post: int = 5,
    n_factors: int = 2,
    effect: float = 0.0,
    weights: dict[str, float] | None = None,
    noise: float = 0.5,
    idiosyncratic: float = 0.0,
    seed: int = 1,
) -> FactorPanel:
    """Donors follow a linear factor model ``a_j + l_j' f_t + e``; the treated unit is a known
    convex
    combination of the donors' noiseless paths plus N(0, noise) noise, plus ``effect`` in every
    post period.  ``idiosyncratic`` adds donor-specific random walks (sd per step) so the weights
    are identifiable.  Default weights: 0.5, 0.3, 0.2 on the first three donors.
    Time = 2000, 2001, ...
    """
    rng = np.random.default_rng(seed)
    T = n_pre + n_post
    donors = [f"d{j:02d}" for j in range(n_donors)]
    f = np.cumsum(rng.normal(0.3, 1.0, size=(T, n_factors)), axis=0)
    lam = rng.uniform(0.2, 1.5, size=(n_donors, n_factors))
    alpha = rng.normal(10.0, 3.0, size=n_donors)
    signal = alpha + f @ lam.T
    if idiosyncratic > 0:  # donor-specific random walks make donors distinguishable
        signal = signal + np.cumsum(rng.normal(0.0, idiosyncratic, size=(T, n_donors)), axis=0)
    X = signal + rng.normal(0.0, noise, size=(T, n_donors))
    w = dict(weights) if weights is not None else {donors[0]: 0.5, donors[1]: 0.3, donors[2]: 0.2}
    wv = np.array([w.get(d, 0.0) for d in donors])
    untreated = signal @ wv + rng.normal(0.0, noise, size=T)
    y = untreated + effect * (np.arange(T) >= n_pre)
    times = pd.Index(np.arange(2000, 2000 + T), name="time")
    wide = pd.DataFrame(X, index=times, columns=donors)
    wide.insert(0, "treated", y)
    return FactorPanel(
        wide, pd.Series(untreated, index=times), pd.Series(wv, index=donors), effect, 2000 + n_pre
    )
