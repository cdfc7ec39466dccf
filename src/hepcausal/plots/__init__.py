"""Publication figures for hepcausal fits (matplotlib; one colour-blind-safe style).

Core functions take plain DataFrames / arrays and return a ``Figure`` (most accept ``ax=``);
:func:`plot_result` writes every figure relevant to a fitted result (PDF + SVG + PNG).
"""

from hepcausal.plots.checks import plot_effect_posterior, plot_ppc, plot_trace_rank
from hepcausal.plots.dispatch import plot_result, plot_sweep_forest, result_figures
from hepcausal.plots.event_study import plot_event_study
from hepcausal.plots.forest import plot_forest
from hepcausal.plots.inequality import plot_sii_trajectories
from hepcausal.plots.style import (
    COMPARATOR_COLOUR,
    LLR_COLOUR,
    OKABE_ITO,
    hepcausal_style,
    save_figure,
)
from hepcausal.plots.synthetic_control import (
    plot_donor_weights,
    plot_placebo_gaps,
    plot_placebo_ratios,
    plot_synthetic_control,
)

__all__ = [
    "COMPARATOR_COLOUR",
    "LLR_COLOUR",
    "OKABE_ITO",
    "hepcausal_style",
    "plot_donor_weights",
    "plot_effect_posterior",
    "plot_event_study",
    "plot_forest",
    "plot_placebo_gaps",
    "plot_placebo_ratios",
    "plot_ppc",
    "plot_result",
    "plot_sii_trajectories",
    "plot_sweep_forest",
    "plot_synthetic_control",
    "plot_trace_rank",
    "result_figures",
    "save_figure",
]
