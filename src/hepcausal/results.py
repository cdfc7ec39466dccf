"""The common result returned by every hepcausal estimator: one contract for every fit.

Every fit (:class:`FitResult` and its subclasses ``CausalFit`` / ``EventStudyFit``,
``GradientFit`` and ``SyntheticControlFit``) stores its named estimands in the posterior variable
``estimand`` with dims ``(chain, draw, term)`` and exposes:

* :attr:`FitResult.estimands`: that labelled DataArray;
* :meth:`FitResult.draws`: the pooled draws of one term (``KeyError`` naming the terms);
* :attr:`FitResult.effects` / :meth:`FitResult.summary`: one posterior summary (row) per
  reported effect, keyed by its term, the first being the :attr:`FitResult.headline`;
* :attr:`FitResult.truth`: the known true value per term (synthetic data), set with
  :meth:`FitResult.with_truth`;
* :attr:`FitResult.diagnostics`: R-hat, ESS and divergences.

The placebo results of :mod:`hepcausal.causal.placebo` are not fits: ``PlaceboResult`` is a
permutation test on point gaps (no posterior), ``PlaceboInTimeResult`` a table over several
fits.  They keep their own types (plots dispatch on them) and do not follow this contract.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from hepcausal.diagnostics import Diagnostics
from hepcausal.summaries import EffectSummary, effects_table

ESTIMAND = "estimand"  # posterior variable holding every estimator's named estimands
TERM = "term"  # its label dimension


def stack_terms(draws: Mapping[str, xr.DataArray]) -> xr.DataArray:
    """Stack per-term ``(chain, draw)`` draws into one ``(chain, draw, term)`` DataArray.

    Parameters
    ----------
    draws
        Term name -> posterior draws with dims ``(chain, draw)``.

    Returns
    -------
    xarray.DataArray
        Named ``estimand``, dims ``(chain, draw, term)``, terms in the order given.
    """
    names = list(draws)
    if not names:
        raise ValueError("stack_terms: no terms")
    arrays = [draws[n].transpose("chain", "draw").drop_vars(_extra_coords(draws[n])) for n in names]
    out = xr.concat(arrays, dim=TERM).assign_coords({TERM: np.asarray(names, dtype=str)})
    return out.transpose("chain", "draw", TERM).rename(ESTIMAND)


def _extra_coords(da: xr.DataArray) -> list[str]:
    return [str(c) for c in da.coords if c not in ("chain", "draw")]


def append_terms(idata: az.InferenceData, draws: Mapping[str, np.ndarray]) -> None:
    """Append terms to ``idata.posterior["estimand"]`` (in place; created when missing).

    Parameters
    ----------
    idata
        A posterior with ``chain`` and ``draw`` dims.
    draws
        Term name -> pooled draws (length ``chains x draws``, chain-major as in
        :meth:`FitResult.draws`) or an array of shape ``(chains, draws)``.
    """
    post = idata.posterior
    shape = (int(post.sizes["chain"]), int(post.sizes["draw"]))
    coords = {"chain": post["chain"].values, "draw": post["draw"].values}
    new = stack_terms(
        {
            k: xr.DataArray(
                np.asarray(v, dtype=float).reshape(shape), dims=("chain", "draw")
            ).assign_coords(coords)
            for k, v in draws.items()
        }
    )
    if ESTIMAND in post:
        clash = [t for t in new.coords[TERM].values if t in post[ESTIMAND].coords[TERM].values]
        if clash:
            raise ValueError(f"estimand terms {clash} already exist")
        new = xr.concat([post[ESTIMAND].transpose("chain", "draw", TERM), new], dim=TERM)
        post = post.drop_vars([ESTIMAND, TERM])
    idata.posterior = post.assign({ESTIMAND: new})


@dataclass
class FitResult:
    """A fitted estimator: posterior (ArviZ InferenceData), diagnostics and named estimands.

    Parameters
    ----------
    idata
        The posterior; ``idata.posterior["estimand"]`` (dims ``chain, draw, term``) holds the
        draws of every named estimand.
    diagnostics
        Convergence diagnostics of the fit.
    effects
        Ordered term -> posterior summary; the first entry is the headline estimand (e.g. the
        change in the LLR deprivation gradient relative to comparators).  Every key is a term
        of :attr:`estimands` (fits loaded from a run directory may lack the posterior terms).
    meta
        What was fitted (estimator, outcome, likelihood, backend, settings, data description),
        for provenance.
    truth
        The known true value per term (synthetic data), or None; see :meth:`with_truth`.
    """

    idata: az.InferenceData
    diagnostics: Diagnostics
    effects: dict[str, EffectSummary]
    meta: dict[str, Any] = field(default_factory=dict)
    truth: dict[str, float] | None = None

    @property
    def estimands(self) -> xr.DataArray:
        """Posterior draws of every named estimand: dims ``(chain, draw, term)``."""
        post = getattr(self.idata, "posterior", None)
        if post is None or ESTIMAND not in post:
            raise KeyError(
                f"{type(self).__name__} has no posterior variable {ESTIMAND!r} (dims chain, "
                "draw, term); every estimator must write its estimands there"
            )
        return post[ESTIMAND].transpose("chain", "draw", TERM)

    @property
    def terms(self) -> list[str]:
        """Names of the estimands (the ``term`` coordinate), in posterior order."""
        return [str(t) for t in self.estimands.coords[TERM].values]

    def draws(self, name: str) -> np.ndarray:
        """Pooled posterior draws (chains concatenated) of one estimand.

        Parameters
        ----------
        name
            A term of :attr:`estimands`.

        Returns
        -------
        numpy.ndarray
            1-d array of ``chains x draws`` values.

        Raises
        ------
        KeyError
            When ``name`` is not a term; the message lists the available terms.
        """
        est = self.estimands
        names = [str(t) for t in est.coords[TERM].values]
        if name not in names:
            raise KeyError(f"unknown estimand {name!r}; available terms: {names}")
        return np.asarray(est.sel({TERM: name}).values, dtype=float).ravel()

    @property
    def headline(self) -> EffectSummary:
        """The first (main) estimand's summary."""
        return next(iter(self.effects.values()))

    @property
    def headline_term(self) -> str:
        """The term of the headline estimand."""
        return next(iter(self.effects))

    def summary(self) -> pd.DataFrame:
        """One row per reported effect: term, HDI, P(direction), ROPE probability (and truth).

        Returns
        -------
        pandas.DataFrame
            Columns ``term`` then the :class:`~hepcausal.summaries.EffectSummary` fields; with
            a known :attr:`truth` a ``truth`` column (NaN for terms without one).  The first
            row is the headline.
        """
        df = effects_table(list(self.effects.values()))
        df.insert(0, TERM, list(self.effects))
        if self.truth is not None:
            df["truth"] = [self.truth.get(t, math.nan) for t in self.effects]
        return df

    def with_truth(self, truth: Mapping[str, float] | None) -> FitResult:
        """Record the known true value of estimands (synthetic data); returns ``self``.

        Parameters
        ----------
        truth
            Term -> true value; every key must be a reported effect or a posterior term.
            None or an empty mapping clears the truth.

        Returns
        -------
        FitResult
            This fit, with :attr:`truth` set.

        Raises
        ------
        KeyError
            When a key is not an estimand of this fit (the message lists them).
        """
        if not truth:
            self.truth = None
            return self
        known = list(dict.fromkeys([*self.effects, *self._posterior_terms()]))
        unknown = [k for k in truth if k not in known]
        if unknown:
            raise KeyError(f"truth for unknown estimands {unknown}; available terms: {known}")
        self.truth = {str(k): float(v) for k, v in truth.items()}
        return self

    def _posterior_terms(self) -> list[str]:
        try:
            return self.terms
        except KeyError:
            return []

    def save(self, path: str | Path) -> Path:
        """Write the InferenceData to netCDF (atomically: temp file then rename).

        Parameters
        ----------
        path
            Target file.

        Returns
        -------
        pathlib.Path
            The written file.
        """
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


__all__ = ["ESTIMAND", "TERM", "FitResult", "append_terms", "stack_terms"]
