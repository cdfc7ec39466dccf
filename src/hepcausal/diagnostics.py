"""Convergence diagnostics reported with every fit: R-hat, bulk/tail ESS and divergences."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import arviz as az
import numpy as np

RHAT_MAX = 1.01
ESS_MIN = 400


class ConvergenceWarning(UserWarning):
    """A fit failed the R-hat, ESS or divergence checks; its numbers should not be trusted."""


@dataclass(frozen=True)
class Diagnostics:
    """Worst-case convergence statistics of one fit over the checked variables.

    Attributes
    ----------
    max_rhat : float
        Largest rank-normalised R-hat over all checked variables and elements (NaN with a
        single chain).
    min_ess_bulk, min_ess_tail : float
        Smallest bulk and tail effective sample size over all checked variables and elements.
    n_divergences : int
        Number of divergent transitions summed over chains (0 when the sampler reports none).
    n_draws, n_chains : int
        Draws per chain and number of chains.
    worst_rhat_var, worst_ess_var : str, default ""
        Variable with the largest R-hat and with the smallest bulk ESS.
    rhat_max : float, default RHAT_MAX (1.01)
        R-hat threshold the fit was checked against.
    ess_min : float, default ESS_MIN (400)
        ESS threshold (bulk and tail) the fit was checked against.
    problems : tuple of str, default ()
        One message per failed check; empty when the fit passed (:attr:`ok`).
    """

    max_rhat: float
    min_ess_bulk: float
    min_ess_tail: float
    n_divergences: int
    n_draws: int
    n_chains: int
    worst_rhat_var: str = ""
    worst_ess_var: str = ""
    rhat_max: float = RHAT_MAX
    ess_min: float = ESS_MIN
    problems: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def independent(cls, n: int) -> Diagnostics:
        """The diagnostics of ``n`` independent draws (bootstrap, normal approximation).

        Parameters
        ----------
        n : int
            Number of draws (one chain).

        Returns
        -------
        Diagnostics
            R-hat 1, bulk and tail ESS ``n``, no divergences: no MCMC, nothing to check.
        """
        return cls(
            max_rhat=1.0,
            min_ess_bulk=float(n),
            min_ess_tail=float(n),
            n_divergences=0,
            n_draws=n,
            n_chains=1,
        )

    @property
    def ok(self) -> bool:
        """True when every check passed."""
        return not self.problems

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["problems"] = list(self.problems)
        d["ok"] = self.ok
        return d

    def __str__(self) -> str:
        status = "OK" if self.ok else "FAILED: " + "; ".join(self.problems)
        return (
            f"R-hat max {self.max_rhat:.3f} ({self.worst_rhat_var}), "
            f"ESS bulk min {self.min_ess_bulk:.0f} ({self.worst_ess_var}), "
            f"ESS tail min {self.min_ess_tail:.0f}, divergences {self.n_divergences} "
            f"[{self.n_chains} chains x {self.n_draws} draws] - {status}"
        )


def _worst(ds, fn) -> tuple[float, str]:
    best_val, best_name = np.nan, ""
    for name, da in ds.data_vars.items():
        vals = np.asarray(da.values, dtype=float)
        vals = vals[np.isfinite(vals)]
        if vals.size == 0:
            continue
        v = float(fn(vals))
        if np.isnan(best_val) or fn(np.array([v, best_val])) == v:
            best_val, best_name = v, str(name)
    return best_val, best_name


def check_convergence(
    idata: az.InferenceData,
    var_names: Sequence[str] | None = None,
    *,
    rhat_max: float = RHAT_MAX,
    ess_min: float = ESS_MIN,
    warn: bool = True,
) -> Diagnostics:
    """Compute worst-case R-hat, ESS and divergence counts; warn loudly when a check fails.

    Variables that are deterministic functions of others are included when named in
    ``var_names``; by default every posterior variable is checked.  Parameters with a
    constant value (e.g. a fixed reference level) are ignored.

    Parameters
    ----------
    idata : arviz.InferenceData
        Fit with a ``posterior`` group (dims ``chain``, ``draw``) and, optionally, a
        ``sample_stats`` group with ``diverging``.
    var_names : sequence of str or None, default None
        Posterior variables to check; None checks every posterior variable.
    rhat_max : float, default RHAT_MAX (1.01)
        The check fails when the largest R-hat exceeds this (or with fewer than 2 chains).
    ess_min : float, default ESS_MIN (400)
        The check fails when the smallest bulk or tail ESS is below this.
    warn : bool, default True
        Emit a :class:`ConvergenceWarning` when any check fails.

    Returns
    -------
    Diagnostics
        Worst-case statistics and the list of failed checks.

    Raises
    ------
    KeyError
        When a name in ``var_names`` is not a posterior variable.

    Warns
    -----
    ConvergenceWarning
        When ``warn`` is true and R-hat, ESS or divergences fail the checks.
    """
    post = idata.posterior
    if var_names is not None:
        missing = [v for v in var_names if v not in post]
        if missing:
            raise KeyError(f"variables not in the posterior: {missing}")
        post = post[list(var_names)]
    n_chains, n_draws = int(post.sizes["chain"]), int(post.sizes["draw"])
    if n_chains > 1:
        rhat = az.rhat(post)
        max_rhat, rhat_var = _worst(rhat, np.max)
    else:
        max_rhat, rhat_var = np.nan, ""
    ess_bulk = az.ess(post, method="bulk")
    ess_tail = az.ess(post, method="tail")
    min_bulk, ess_var = _worst(ess_bulk, np.min)
    min_tail, _ = _worst(ess_tail, np.min)
    n_div = 0
    if hasattr(idata, "sample_stats") and "diverging" in idata.sample_stats:
        n_div = int(np.asarray(idata.sample_stats["diverging"].values).sum())

    problems: list[str] = []
    if n_chains < 2:
        problems.append("R-hat needs at least 2 chains")
    elif not max_rhat <= rhat_max:
        problems.append(f"R-hat {max_rhat:.3f} > {rhat_max} for '{rhat_var}'")
    if not min_bulk >= ess_min:
        problems.append(f"bulk ESS {min_bulk:.0f} < {ess_min} for '{ess_var}'")
    if not min_tail >= ess_min:
        problems.append(f"tail ESS {min_tail:.0f} < {ess_min}")
    if n_div > 0:
        problems.append(f"{n_div} divergent transitions")
    diag = Diagnostics(
        max_rhat=float(max_rhat),
        min_ess_bulk=float(min_bulk),
        min_ess_tail=float(min_tail),
        n_divergences=n_div,
        n_draws=n_draws,
        n_chains=n_chains,
        worst_rhat_var=rhat_var,
        worst_ess_var=ess_var,
        rhat_max=rhat_max,
        ess_min=ess_min,
        problems=tuple(problems),
    )
    if warn and problems:
        warnings.warn(
            "CONVERGENCE CHECK FAILED - do not trust these estimates: " + str(diag),
            ConvergenceWarning,
            stacklevel=2,
        )
    return diag


__all__ = ["ESS_MIN", "RHAT_MAX", "ConvergenceWarning", "Diagnostics", "check_convergence"]
