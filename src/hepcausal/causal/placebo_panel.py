"""Placebo calibration of the panel estimators (DiD, DDD, event study).

Every comparator ICB (the treated ICB left out) is refitted as if it had been treated from the
same ``start_year``, against the other comparators, with the same design, model, priors and
sampler.  The placebo effects are draws from the estimator's null distribution on *this* data, so
they show whether the posterior is honest here:

* ``z = posterior mean / posterior SD`` of each placebo; with an honest posterior the placebo z's
  have SD about 1 and about 5% of the 95% HDIs exclude 0;
* the treated effect's rank by ``|z|`` among the treated and the placebos, and the exact
  randomisation p-value ``rank / (n_placebos + 1)`` (floor ``1 / (n_placebos + 1)``: with 10
  comparators no p-value below 0.09 is possible);
* a **placebo-calibrated interval** for the treated effect: the posterior HDI widened around the
  posterior mean by ``s = max(1, rms(z_placebo))`` (Ferman & Pinto 2019 in spirit: the placebo
  z's measure how much the model's SDs understate the variability of the estimator under the
  null, assumed the same for the treated ICB).  ``s`` is floored at 1, so the calibrated interval
  is never narrower than the posterior's.  The permutation interval is not reported (with 10
  placebos it cannot exceed 90% coverage).

Use :func:`placebo_calibrate` on a fit (or a config), the ``placebo = true`` option of the
``did``/``ddd``/``event_study`` registry entries, or :func:`placebo_table` for the raw table.
Placebo fits run one after another, or on ``workers`` local processes
(:class:`concurrent.futures.ProcessPoolExecutor`; keep ``workers * chains`` within the cores).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from hepcausal.causal.panel_fit import CausalFit
from hepcausal.diagnostics import ConvergenceWarning
from hepcausal.models.panel_effects import PanelPriors
from hepcausal.results import TERM
from hepcausal.sampling import SamplerSettings
from hepcausal.spec import Design, Inference

__all__ = ["PlaceboFit", "calibration_from", "placebo_calibrate", "placebo_table"]

PLACEBO_ESTIMATORS = ("did", "ddd", "event_study")


@dataclass(repr=False)
class PlaceboFit(CausalFit):
    """A panel fit with its placebo calibration.

    Parameters
    ----------
    placebo
        One row per pseudo-treated comparator: ``group, mean, sd, z, hdi_low, hdi_high,
        excludes_zero, converged``.
    calibration
        ``term, z_treated, z_sd, z_rms, n_placebo, n_excluding_zero, rank, p_value, p_floor,
        scale, calibrated_low, calibrated_high`` (see the module docstring).
    """

    placebo: pd.DataFrame = field(default_factory=pd.DataFrame)
    calibration: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> pd.DataFrame:
        """The effects table; the headline row also carries the placebo rank and interval.

        Returns
        -------
        pandas.DataFrame
            :meth:`CausalFit.summary` plus ``placebo_rank``, ``placebo_p``,
            ``calibrated_low``, ``calibrated_high`` (NaN except on the calibrated term).
        """
        df = super().summary()
        c = self.calibration
        on = df[TERM] == c.get("term")
        n = c.get("n_placebo", 0) + 1
        df["placebo_rank"] = np.where(on, f"{c.get('rank')} of {n}", "")
        for col, key in (
            ("placebo_p", "p_value"),
            ("calibrated_low", "calibrated_low"),
            ("calibrated_high", "calibrated_high"),
        ):
            df[col] = np.where(on, c.get(key, math.nan), math.nan)
        return df


def _estimator(name: str) -> Any:
    if name == "did":
        from hepcausal.causal.did import fit_did

        return fit_did
    if name == "ddd":
        from hepcausal.causal.did import fit_ddd

        return fit_ddd
    if name.startswith("event_study"):
        from hepcausal.causal.event_study import fit_event_study

        return fit_event_study
    raise ValueError(f"placebo calibration is for {list(PLACEBO_ESTIMATORS)}, not {name!r}")


def _one_placebo(
    args: tuple[str, pd.DataFrame, str, Design, Inference, dict[str, Any], str],
) -> dict[str, Any]:
    estimator, panel, outcome, design, inference, options, term = args
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # reported in the table instead
        fit = _estimator(estimator)(panel, outcome, design, inference, **options)
    e = fit.effects[term]
    return {
        "group": design.treated,
        "mean": e.mean,
        "sd": e.sd,
        "z": e.mean / e.sd,
        "hdi_low": e.hdi_low,
        "hdi_high": e.hdi_high,
        "excludes_zero": not (e.hdi_low <= 0 <= e.hdi_high),
        "converged": fit.diagnostics.ok,
        "max_rhat": fit.diagnostics.max_rhat,
        "min_ess_bulk": fit.diagnostics.min_ess_bulk,
        "min_ess_tail": fit.diagnostics.min_ess_tail,
        "n_divergences": fit.diagnostics.n_divergences,
    }


def placebo_table(
    panel: pd.DataFrame,
    outcome: str,
    design: Design,
    inference: Inference | None = None,
    *,
    estimator: str = "ddd",
    options: Mapping[str, Any] | None = None,
    term: str | None = None,
    comparators: list[str] | None = None,
    workers: int = 1,
) -> pd.DataFrame:
    """Fit every comparator as pseudo-treated (treated ICB left out) and tabulate the effects.

    Parameters
    ----------
    panel : pandas.DataFrame
        The long panel.
    outcome : str
        Outcome column.
    design : Design
        The real design; ``design.comparators`` must be an explicit list or ``"all"``.
    inference : Inference, optional
        Backend, sampler settings and priors of every placebo fit.
    estimator : {"did", "ddd", "event_study"}
        The estimator.
    options : mapping, optional
        The estimator's own options (``placebo`` is dropped).
    term : str, optional
        Effect to tabulate (default: the estimator's headline).
    comparators : list of str, optional
        The comparator codes (default: ``design.comparators``, resolved on ``panel``).
    workers : int
        Local processes (1: one after another).

    Returns
    -------
    pandas.DataFrame
        One row per placebo: ``group, mean, sd, z, hdi_low, hdi_high, excludes_zero,
        converged`` and the diagnostics behind ``converged`` (``max_rhat, min_ess_bulk,
        min_ess_tail, n_divergences``).
    """
    opts = {k: v for k, v in dict(options or {}).items() if k != "placebo"}
    if comparators is None:
        comparators = _resolve(panel, design)
    if len(comparators) < 2:
        raise ValueError("placebo calibration needs at least 2 comparators")
    if term is None:
        term = {"did": "delta", "ddd": "delta_gradient"}.get(estimator, "post_mean")
    # the treated ICB is left out of the placebo fits entirely (also out of the pool)
    exclude = (*design.exclude, str(design.treated))
    jobs = [
        (
            estimator,
            panel,
            outcome,
            design.with_(
                treated=c, comparators=tuple(x for x in comparators if x != c), exclude=exclude
            ),
            inference or Inference(),
            opts,
            term,
        )
        for c in comparators
    ]
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            rows = list(pool.map(_one_placebo, jobs))
    else:
        rows = [_one_placebo(j) for j in jobs]
    return pd.DataFrame(rows)


def _resolve(panel: pd.DataFrame, design: Design) -> list[str]:
    if design.comparators == "all":
        groups = panel[design.group_col].dropna().astype(str).unique()
        return sorted(g for g in groups if g != str(design.treated))
    return [str(c) for c in design.comparators]


def calibrate(fit: CausalFit, placebo: pd.DataFrame, term: str) -> dict[str, Any]:
    """The calibration summary of a treated fit given its placebo table.

    Parameters
    ----------
    fit : CausalFit
        The treated ICB's fit.
    placebo : pandas.DataFrame
        :func:`placebo_table` output.
    term : str
        The calibrated effect.

    Returns
    -------
    dict
        See :class:`PlaceboFit`.
    """
    e = fit.effects[term]
    return calibration_from(e.mean, e.sd, e.hdi_low, e.hdi_high, placebo, term)


def calibration_from(
    mean: float, sd: float, hdi_low: float, hdi_high: float, placebo: pd.DataFrame, term: str
) -> dict[str, Any]:
    """The calibration summary from the treated effect's posterior summary and a placebo table.

    Parameters
    ----------
    mean, sd, hdi_low, hdi_high : float
        The treated effect's posterior mean, SD and HDI.
    placebo : pandas.DataFrame
        One row per placebo with ``mean, z, excludes_zero, converged`` (as
        :func:`placebo_table`).
    term : str
        The calibrated effect's name.

    Returns
    -------
    dict
        See :class:`PlaceboFit`.
    """
    z_t = mean / sd
    z = placebo["z"].to_numpy(float)
    n = z.size
    rank = int(1 + np.sum(np.abs(z) > abs(z_t)))
    rank_mean = int(1 + np.sum(np.abs(placebo["mean"].to_numpy(float)) > abs(mean)))
    z_rms = float(np.sqrt(np.mean(z**2)))
    scale = max(1.0, z_rms)
    return {
        "term": term,
        "z_treated": float(z_t),
        "z_sd": float(np.std(z, ddof=1)),
        "z_rms": z_rms,
        "n_placebo": n,
        "n_excluding_zero": int(placebo["excludes_zero"].sum()),
        "n_not_converged": int((~placebo["converged"].astype(bool)).sum()),
        "rank": rank,
        "rank_by_mean": rank_mean,
        "p_value": rank / (n + 1),
        "p_floor": 1 / (n + 1),
        "scale": scale,
        "calibrated_low": float(mean + scale * (hdi_low - mean)),
        "calibrated_high": float(mean + scale * (hdi_high - mean)),
        "interval": "posterior HDI widened around the mean by max(1, rms placebo z)",
    }


def _inference_of(fit: CausalFit) -> Inference:
    m = fit.meta
    settings = SamplerSettings(**m["settings"]) if "settings" in m else SamplerSettings()
    pri = m.get("priors")
    defaults = PanelPriors().to_dict()
    changed = {k: v for k, v in (pri or {}).items() if defaults.get(k) != v}
    return Inference(backend=m.get("backend", "pymc"), settings=settings, priors=changed or None)


def placebo_calibrate(
    fit: Any,
    panel: pd.DataFrame | None = None,
    *,
    estimator: str | None = None,
    options: Mapping[str, Any] | None = None,
    inference: Inference | None = None,
    term: str | None = None,
    workers: int = 1,
) -> PlaceboFit:
    """Placebo-calibrate a DiD, DDD or event-study fit (or the fit of a config).

    Parameters
    ----------
    fit : CausalFit or Config or str or path
        A fitted panel estimator (then ``panel`` is required), or an experiment config (its data
        are prepared and its estimator fitted first).
    panel : pandas.DataFrame, optional
        The panel the fit used.
    estimator : str, optional
        ``"did"``, ``"ddd"`` or ``"event_study"`` (default ``fit.meta["estimator"]``).
    options : mapping, optional
        The estimator's own options used for the fit (default: the config's, or none).
    inference : Inference, optional
        Inference of the placebo fits (default: rebuilt from ``fit.meta``).
    term : str, optional
        Effect to calibrate (default: the fit's headline).
    workers : int
        Local processes for the placebo fits.

    Returns
    -------
    PlaceboFit
        The fit with ``placebo`` (table) and ``calibration`` (z SD, rank, p-value, calibrated
        interval); ``meta["placebo"]`` holds the calibration too.
    """
    if not isinstance(fit, CausalFit):
        from hepcausal.experiments.config import as_config
        from hepcausal.experiments.inputs import prepare_data
        from hepcausal.experiments.runner import design_of, inference_of

        cfg = as_config(fit)
        data = prepare_data(cfg)
        estimator = cfg.estimator.name
        options = {**dict(cfg.estimator.options), **dict(options or {}), "placebo": False}
        inference = inference or inference_of(cfg)
        panel = data.panel
        fit = _estimator(estimator)(
            panel, cfg.analysis.outcome, design_of(cfg), inference, **options
        )
    if panel is None:
        raise ValueError("placebo_calibrate(fit, panel): pass the panel the fit used")
    assert isinstance(fit, CausalFit)
    estimator = estimator or fit.meta["estimator"]
    term = term or fit.headline_term
    m = fit.meta
    design = Design(
        treated=m["treated"],
        comparators=tuple(m["comparators"]),
        start_year=m["start_year"],
        rank_col=m.get("rank_col"),
        covariates=tuple(m.get("covariates", ())),
        weights=m.get("weights"),
        unit_col=m["columns"]["unit"],
        group_col=m["columns"]["group"],
        time_col=m["columns"]["time"],
    )
    table = placebo_table(
        panel,
        m["outcome"],
        design,
        inference or _inference_of(fit),
        estimator=str(estimator),
        options=options,
        term=term,
        comparators=list(m["comparators"]),
        workers=workers,
    )
    cal = calibrate(fit, table, term)
    meta = {**fit.meta, "placebo": {**cal, "table": table.to_dict(orient="list")}}
    return PlaceboFit(
        idata=fit.idata,
        diagnostics=fit.diagnostics,
        effects=fit.effects,
        meta=meta,
        design=fit.design,
        placebo=table,
        calibration=cal,
    )


def plot_placebo(result: PlaceboFit) -> Any:
    """Placebo and treated effects with 95% HDIs, the calibrated interval in red.

    Parameters
    ----------
    result : PlaceboFit
        A placebo-calibrated fit.

    Returns
    -------
    matplotlib.figure.Figure
        One row per ICB (placebos grey, treated black) sorted by effect.
    """
    import matplotlib.pyplot as plt

    c = result.calibration
    e = result.effects[c["term"]]
    tab = result.placebo.sort_values("mean")
    fig, ax = plt.subplots(figsize=(6, 0.35 * (len(tab) + 2) + 1))
    y = np.arange(len(tab))
    ax.errorbar(
        tab["mean"],
        y,
        xerr=[tab["mean"] - tab["hdi_low"], tab["hdi_high"] - tab["mean"]],
        fmt="o",
        color="grey",
        label="placebo (comparator as treated)",
    )
    yt = len(tab) + 0.5
    ax.errorbar(
        [e.mean],
        [yt],
        xerr=[[e.mean - e.hdi_low], [e.hdi_high - e.mean]],
        fmt="o",
        color="black",
        label="treated: posterior 95% HDI",
    )
    ax.plot([c["calibrated_low"], c["calibrated_high"]], [yt + 0.4] * 2, color="red", lw=2)
    ax.plot([], [], color="red", lw=2, label="treated: placebo-calibrated interval")
    ax.set_yticks([*y, yt], [*tab["group"].astype(str), result.meta.get("treated", "treated")])
    ax.axvline(0, color="k", lw=0.5)
    ax.set_xlabel(f"{c['term']} ({e.units})" if e.units else c["term"])
    ax.set_title(
        f"Placebo z SD {c['z_sd']:.2f}; rank {c['rank']} of {c['n_placebo'] + 1} "
        f"(p = {c['p_value']:.2f}, floor {c['p_floor']:.2f})",
        fontsize=9,
    )
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def _register_figures() -> None:
    from hepcausal.plots.dispatch import result_figures

    @result_figures.register(PlaceboFit)
    def _placebo_figures(result: PlaceboFit) -> list[tuple[str, Any, str]]:
        base = result_figures.dispatch(CausalFit)(result)
        c = result.calibration
        return [
            (
                "placebo",
                plot_placebo(result),
                f"Placebo calibration: each of the {c['n_placebo']} comparators refitted as if "
                f"treated (grey, 95% HDI) and the treated ICB (black); red: the treated effect's "
                f"interval widened by max(1, rms placebo z) = {c['scale']:.2f}.",
            ),
            *base,
        ]


_register_figures()
