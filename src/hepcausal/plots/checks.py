"""Posterior of the headline effect, prior/posterior predictive checks, MCMC diagnostic plots."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import arviz as az
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from hepcausal.plots.style import (
    ACCENT_COLOUR,
    DOUBLE_COLUMN,
    LLR_COLOUR,
    ROPE_SHADE,
    SINGLE_COLUMN,
    hepcausal_style,
    new_axes,
)
from hepcausal.summaries import summarise_effect


def plot_effect_posterior(
    draws: object,
    *,
    name: str = "effect",
    xlabel: str | None = None,
    units: str = "",
    hdi_prob: float = 0.95,
    rope: tuple[float, float] | float | None = None,
    colour: str = LLR_COLOUR,
    truth: float | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Posterior density of a scalar estimand with its HDI, the ROPE and P(direction) annotated.

    Parameters
    ----------
    draws : array_like or xarray.DataArray
        Posterior draws of one scalar (all entries pooled), e.g. ``result.draws(term)``.
    name : str, default "effect"
        Name of the estimand (x-axis label unless ``xlabel``).
    xlabel : str or None, default None
        X-axis label; ``units`` are appended in parentheses.
    units : str, default ""
        Units of the estimand.
    hdi_prob : float, default 0.95
        Probability mass of the shaded HDI, in (0, 1).
    rope : tuple of float or float or None, default None
        Region of practical equivalence, ``(low, high)`` or a half-width; shaded when given.
    colour : str, default LLR_COLOUR
        Colour of the density and HDI.
    truth : float or None, default None
        True value (synthetic data): drawn as a dotted black line.
    ax : matplotlib.axes.Axes or None, default None
        Axes to draw on; None creates a single-column figure.

    Returns
    -------
    matplotlib.figure.Figure
        The figure: the legend (HDI, ROPE, mean, zero, truth) above the axes, the statistics box
        in the upper corner away from the posterior mass.

    Raises
    ------
    ValueError
        When the draws cannot be summarised (see :func:`hepcausal.summaries.summarise_effect`).
    """
    s = summarise_effect(draws, name=name, hdi_prob=hdi_prob, rope=rope, units=units)
    x = np.asarray(getattr(draws, "values", draws), dtype=float).ravel()
    grid, dens = az.kde(x)
    with hepcausal_style():
        fig, ax = new_axes(ax, (SINGLE_COLUMN, SINGLE_COLUMN * 0.7))
        if s.rope is not None:
            ax.axvspan(*s.rope, color=ROPE_SHADE, lw=0, zorder=0, label="ROPE")
        inside = (grid >= s.hdi_low) & (grid <= s.hdi_high)
        ax.fill_between(
            grid,
            0,
            dens,
            where=inside,
            color=colour,
            alpha=0.3,
            lw=0,
            label=f"{hdi_prob:.0%} HDI",
            zorder=1,
        )
        ax.plot(grid, dens, color=colour, lw=1.4, zorder=2)
        ax.axvline(0, color="black", lw=0.6, zorder=1.5, label="Zero")
        ax.axvline(s.mean, color=colour, lw=0.8, ls="--", zorder=2, label="Posterior mean")
        if truth is not None:
            ax.axvline(truth, color="black", lw=1.2, ls=":", zorder=3, label="True value")
        ax.set_ylim(0, dens.max() * 1.6)
        ax.set_yticks([])
        ax.spines["left"].set_visible(False)
        u = f"\n({units})" if units else ""
        ax.set_xlabel((xlabel or name) + u)
        ax.set_ylabel("Posterior density")
        lines = [
            f"mean {s.mean:.3g}",
            f"{hdi_prob:.0%} HDI [{s.hdi_low:.3g}, {s.hdi_high:.3g}]",
            f"P({'>' if s.p_positive >= 0.5 else '<'} 0) = {s.p_direction:.3f}",
        ]
        if s.p_rope is not None:
            lines.append(f"P(ROPE) = {s.p_rope:.3f}")
        if truth is not None:
            lines.append(f"true value {truth:.3g}")
        # the box goes in the upper corner farther from the posterior mass and the ROPE; the
        # x range is widened on that side so the box never covers them
        lo, hi = float(grid.min()), float(grid.max())
        if s.rope is not None:
            lo, hi = min(lo, s.rope[0]), max(hi, s.rope[1])
        if truth is not None:
            lo, hi = min(lo, truth), max(hi, truth)
        right = s.mean < 0
        width = hi - lo
        if right:
            ax.set_xlim(lo - 0.02 * width, hi + 1.0 * width)
        else:
            ax.set_xlim(lo - 1.0 * width, hi + 0.02 * width)
        ax.text(
            0.98 if right else 0.02,
            0.97,
            "\n".join(lines),
            transform=ax.transAxes,
            ha="right" if right else "left",
            va="top",
            fontsize=6.5,
            bbox={"boxstyle": "round,pad=0.3", "fc": "white", "ec": "#BDBDBD", "lw": 0.5},
        )
        ax.legend(
            loc="lower center",
            bbox_to_anchor=(0.5, 1.0),
            ncol=3,
            fontsize=6.5,
            frameon=False,
        )
    return fig


def plot_ppc(
    idata: az.InferenceData,
    *,
    group: str = "posterior",
    var_names: Sequence[str] | None = None,
    num_pp_samples: int = 100,
    kind: str = "kde",
    xlabel: str | None = None,
    seed: int = 0,
    ax: Axes | None = None,
) -> Figure:
    """Prior (``group='prior'``) or posterior predictive check: ArviZ ``plot_ppc`` in our style.

    Needs ``observed_data`` and ``{group}_predictive`` groups in ``idata``.

    Parameters
    ----------
    idata : arviz.InferenceData
        Fit with ``observed_data`` and ``{group}_predictive`` groups.
    group : {"posterior", "prior"}, default "posterior"
        Posterior or prior predictive check.
    var_names : sequence of str or None, default None
        Observed variables to check; None: the first observed variable with predictive draws.
    num_pp_samples : int, default 100
        Predictive draws overlaid (at most the number available).
    kind : {"kde", "cumulative", "scatter"}, default "kde"
        ArviZ ``plot_ppc`` kind.
    xlabel : str or None, default None
        X-axis label; None: the variable name in words.
    seed : int, default 0
        Seed of the subsample of predictive draws.
    ax : matplotlib.axes.Axes or None, default None
        Axes to draw on; None creates a single-column figure.

    Returns
    -------
    matplotlib.figure.Figure
        The figure holding the axes.

    Raises
    ------
    ValueError
        When the predictive or observed group is missing or no observed variable has
        predictive draws.
    """
    pp_group = f"{group}_predictive"
    if not hasattr(idata, pp_group):
        raise ValueError(f"InferenceData has no '{pp_group}' group; sample it first")
    if not hasattr(idata, "observed_data"):
        raise ValueError("InferenceData has no 'observed_data' group")
    pp = getattr(idata, pp_group)
    common = [str(v) for v in idata.observed_data.data_vars if v in pp]
    if not var_names and not common:
        raise ValueError(f"no observed variable has draws in '{pp_group}'")
    names = list(var_names) if var_names else common[:1]
    with hepcausal_style():
        fig, ax = new_axes(ax, (SINGLE_COLUMN, SINGLE_COLUMN * 0.7))
        n_avail = int(pp.sizes["chain"] * pp.sizes["draw"])
        az.plot_ppc(
            idata,
            group=group,
            var_names=names,
            num_pp_samples=min(num_pp_samples, n_avail),
            kind=kind,
            ax=ax,
            random_seed=seed,
            colors=[ACCENT_COLOUR if group == "posterior" else "#9E9E9E", "black", LLR_COLOUR],
            textsize=7,
            legend=True,
        )
        ax.set_title(f"{'Prior' if group == 'prior' else 'Posterior'} predictive check", loc="left")
        ax.set_xlabel(xlabel or names[0].replace("_", " "))
        if kind == "kde":
            lo, hi = ax.get_ylim()
            ax.set_ylim(lo, hi * 1.3)  # room for the legend
        leg = ax.get_legend()
        if leg is not None:
            leg.set_frame_on(False)
            for t in leg.get_texts():
                t.set_fontsize(6.5)
    return fig


def element_label(var: str, sel: Mapping[str, Any] | None = None) -> str:
    """Label of one posterior element: ``var`` or ``var[c1, c2]`` (coordinate values).

    Parameters
    ----------
    var
        Posterior variable name.
    sel
        Coordinates of the element (dimension -> value); None or empty for a scalar.

    Returns
    -------
    str
        E.g. ``year_effect[2024]``.
    """
    if not sel:
        return var
    return f"{var}[{', '.join(str(v) for v in sel.values())}]"


def plot_trace_rank(
    idata: az.InferenceData,
    var_names: Sequence[str] | None = None,
    *,
    elements: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    max_vars: int = 6,
) -> Figure:
    """Trace (draws per chain) and rank plots of up to ``max_vars`` posterior variables.

    Parameters
    ----------
    idata
        InferenceData with a ``posterior`` group.
    var_names
        Variables to show; default: the scalar posterior variables, then vectors.  PyMC's
        transformed copies (``*__``) are skipped.
    elements
        Variable -> the elements to show (each a coordinate selection such as
        ``{"year": 2024}``).  Variables not listed show their first two elements.
    max_vars
        Most variables (and twice as many rows) shown.

    Returns
    -------
    matplotlib.figure.Figure
        Two columns (trace, rank), one row per element shown.
    """
    post = idata.posterior
    if var_names is None:
        shown = {v: da for v, da in post.data_vars.items() if not str(v).endswith("__")}
        scalars = [v for v, da in shown.items() if da.ndim == 2]
        others = [v for v, da in shown.items() if da.ndim > 2]
        var_names = [str(v) for v in (scalars + others)][:max_vars]
    var_names = list(var_names)[:max_vars]
    if not var_names:
        raise ValueError("no posterior variables to plot")
    picks = _trace_rows(post, var_names, elements or {})[: 2 * max_vars]
    n_rows = max(1, len(picks))
    with hepcausal_style():
        fig, axes = plt.subplots(
            n_rows, 2, figsize=(DOUBLE_COLUMN, 0.95 * n_rows + 0.3), squeeze=False
        )
        for row, (v, sel) in enumerate(picks):
            da = post[v].sel(sel) if sel else post[v]
            vals = np.asarray(da.transpose("chain", "draw").values, dtype=float)
            _trace_row(axes[row, 0], axes[row, 1], vals, element_label(v, sel))
        axes[0, 0].set_title("Trace (per chain)")
        axes[0, 1].set_title("Rank plot (uniform if chains agree)")
    return fig


def _trace_rows(
    post: Any, var_names: Sequence[str], elements: Mapping[str, Sequence[Mapping[str, Any]]]
) -> list[tuple[str, dict[str, Any]]]:
    """(variable, coordinate selection) of every row: the requested elements, else the first
    two elements of each vector (one row for a scalar)."""
    rows: list[tuple[str, dict[str, Any]]] = []
    for v in var_names:
        da = post[v]
        extra = [d for d in da.dims if d not in ("chain", "draw")]
        if v in elements:
            rows += [(v, dict(sel)) for sel in elements[v]]
        elif not extra:
            rows.append((v, {}))
        else:
            stacked = da.stack(_flat=extra)
            for k in range(min(int(stacked.sizes["_flat"]), 2)):
                idx = stacked.indexes["_flat"][k]
                vals = idx if isinstance(idx, tuple) else (idx,)
                rows.append((v, dict(zip(extra, vals, strict=True))))
    return rows


def worst_element(idata: az.InferenceData, var: str, stat: str) -> dict[str, Any]:
    """Coordinates of the element of ``var`` with the largest R-hat or smallest bulk ESS.

    Parameters
    ----------
    idata
        InferenceData with a ``posterior`` group.
    var
        Posterior variable.
    stat
        ``"rhat"`` (largest R-hat) or ``"ess"`` (smallest bulk ESS).

    Returns
    -------
    dict
        Dimension -> coordinate value of that element (empty for a scalar variable).
    """
    da = idata.posterior[var]
    extra = [d for d in da.dims if d not in ("chain", "draw")]
    if not extra:
        return {}
    if stat == "rhat":
        s = az.rhat(idata.posterior[[var]])[var]
    elif stat == "ess":
        s = az.ess(idata.posterior[[var]], method="bulk")[var]
    else:
        raise ValueError(f"stat must be 'rhat' or 'ess', got {stat!r}")
    flat = s.stack(_flat=extra)
    vals = np.asarray(flat.values, dtype=float)
    if not np.isfinite(vals).any():
        k = 0
    else:
        k = int(np.nanargmax(vals) if stat == "rhat" else np.nanargmin(vals))
    idx = flat.indexes["_flat"][k]
    coords = idx if isinstance(idx, tuple) else (idx,)
    return {d: (c.item() if hasattr(c, "item") else c) for d, c in zip(extra, coords, strict=True)}


def _trace_row(ax_t: Axes, ax_r: Axes, vals: np.ndarray, label: str) -> None:
    n_chains, n_draws = vals.shape
    colours = [ACCENT_COLOUR, LLR_COLOUR, "#009E73", "#CC79A7", "#E69F00", "#56B4E9"]
    for c in range(n_chains):
        ax_t.plot(np.arange(n_draws), vals[c], lw=0.4, alpha=0.8, color=colours[c % len(colours)])
    ax_t.text(
        0.005,
        0.97,
        label,
        transform=ax_t.transAxes,
        ha="left",
        va="top",
        fontsize=6.5,
        bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85},
        zorder=5,
    )
    ax_t.set_xlabel("Draw" if _is_last_row(ax_t) else "")
    ranks = np.argsort(np.argsort(vals.ravel())).reshape(vals.shape)
    bins = np.linspace(0, vals.size, 21)
    expected = n_draws / 20
    for c in range(n_chains):
        h, _ = np.histogram(ranks[c], bins=bins)
        ax_r.stairs(h, bins, lw=0.8, color=colours[c % len(colours)], baseline=None)
    ax_r.axhline(expected, color="black", lw=0.5, ls="--")
    ax_r.set_yticks([])
    ax_r.set_xlabel("Rank (all chains)" if _is_last_row(ax_r) else "")


def _is_last_row(ax: Axes) -> bool:
    spec = ax.get_subplotspec()
    return spec is not None and spec.is_last_row()
