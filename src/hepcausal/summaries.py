"""Posterior summaries of an estimand: mean, HDI, probability of direction, ROPE."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import arviz as az
import numpy as np
import pandas as pd


@dataclass(frozen=True)
class EffectSummary:
    """Posterior summary of one scalar estimand.

    Attributes
    ----------
    name : str
        Name of the estimand (e.g. ``"gradient_effect"``), used in :meth:`sentence`.
    mean, median, sd : float
        Posterior mean, median and standard deviation (``ddof=1``) of the draws, in the
        estimand's units.
    hdi_low, hdi_high : float
        Lower and upper bound of the highest-density interval.
    hdi_prob : float
        Probability mass of the HDI, in (0, 1).
    p_positive : float
        Posterior probability that the estimand is > 0.
    p_direction : float
        Probability of direction, ``max(p_positive, 1 - p_positive)``, in [0.5, 1].
    rope : tuple of float or None
        Region of practical equivalence ``(low, high)``, or None when none was given.
    p_rope : float or None
        Posterior probability inside ``rope`` (bounds included); None without a ROPE.
    n_draws : int
        Number of pooled posterior draws summarised.
    units : str, default ""
        Units of the estimand in words, appended to numbers in :meth:`sentence`.
    draws_kind : str, default "posterior"
        What the draws are: ``"posterior"`` (MCMC or exact posterior draws) or another source
        such as ``"normal approximation (placebo variance)"`` or ``"BCa bootstrap"``; the
        sentence then speaks of an interval and a share of draws, never of a posterior.
    """

    name: str
    mean: float
    median: float
    sd: float
    hdi_low: float
    hdi_high: float
    hdi_prob: float
    p_positive: float
    p_direction: float
    rope: tuple[float, float] | None
    p_rope: float | None
    n_draws: int
    units: str = ""
    draws_kind: str = "posterior"

    def sentence(self, description: str | None = None, reading: str | None = None) -> str:
        """A plain-language statement of the result.

        Parameters
        ----------
        description : str, optional
            The estimand in words (:func:`estimand_words`); default its name.
        reading : str, optional
            What the sign means (:func:`sign_reading`), appended as a second sentence.

        Returns
        -------
        str
            E.g. "The estimated change in LLR's slope index ... is -0.022 FTE per 1,000 ...".
        """
        direction = "an increase" if self.median >= 0 else "a decrease"
        units = f" {self.units}" if self.units else ""
        what = f"{description} ({self.name})" if description else self.name
        if self.draws_kind == "posterior":
            text = (
                f"The estimated {what} is {self.mean:.3g}{units} "
                f"({self.hdi_prob:.0%} HDI {self.hdi_low:.3g} to {self.hdi_high:.3g}); "
                f"the posterior probability of {direction} is {self.p_direction:.1%}"
            )
            where = "of the posterior lies"
        else:  # not a posterior: no posterior-probability wording
            text = (
                f"The estimated {what} is {self.mean:.3g}{units} "
                f"({self.hdi_prob:.0%} interval {self.hdi_low:.3g} to {self.hdi_high:.3g}, "
                f"from the {self.draws_kind}, not a posterior); {self.p_direction:.1%} of its "
                f"draws point to {direction}"
            )
            where = "of those draws lie"
        if self.rope is not None and self.p_rope is not None:
            lo, hi = self.rope
            text += (
                f", and {self.p_rope:.1%} {where} within the region of practical "
                f"equivalence [{lo:.3g}, {hi:.3g}]"
            )
            if self.p_rope >= 0.95:
                text += " (practically equivalent to no effect)"
            elif self.p_rope <= 0.05:
                text += " (a practically meaningful effect)"
        return text + "." + (f" {reading}" if reading else "")

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["rope_low"], d["rope_high"] = self.rope if self.rope is not None else (None, None)
        del d["rope"]
        return d


def summarise_effect(
    draws: object,
    *,
    name: str,
    hdi_prob: float = 0.95,
    rope: tuple[float, float] | float | None = None,
    units: str = "",
    draws_kind: str = "posterior",
) -> EffectSummary:
    """Summarise posterior draws of a scalar (any array-like; all entries are pooled draws).

    Parameters
    ----------
    draws : array_like or xarray.DataArray
        Posterior draws of one scalar estimand; every entry (all chains and draws) is pooled.
        Objects with a ``.values`` attribute are unwrapped.
    name : str
        Name of the estimand, stored in the summary and used in error messages.
    hdi_prob : float, default 0.95
        Probability mass of the highest-density interval, in (0, 1).
    rope : tuple of float or float or None, default None
        Region of practical equivalence: an interval ``(low, high)`` with ``low <= high``, or a
        half-width ``r`` meaning ``(-abs(r), abs(r))``.  None: no ROPE probability.
    units : str, default ""
        Units of the estimand in words.
    draws_kind : str, default "posterior"
        What the draws are (see :attr:`EffectSummary.draws_kind`); anything but
        ``"posterior"`` keeps posterior wording out of the sentence.

    Returns
    -------
    EffectSummary
        Mean, median, SD, HDI, probability of direction and ROPE probability.

    Raises
    ------
    ValueError
        With fewer than 2 draws, non-finite draws, ``hdi_prob`` outside (0, 1) or a ROPE
        with ``low > high``.
    """
    x = np.asarray(getattr(draws, "values", draws), dtype=float).ravel()
    if x.size < 2:
        raise ValueError(f"{name}: need at least 2 posterior draws, got {x.size}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name}: posterior draws contain non-finite values")
    if not 0 < hdi_prob < 1:
        raise ValueError(f"hdi_prob must be in (0, 1), got {hdi_prob}")
    if rope is not None and np.isscalar(rope):
        r = abs(float(rope))  # type: ignore[arg-type]
        rope = (-r, r)
    lo, hi = az.hdi(x, hdi_prob=hdi_prob)
    p_pos = float(np.mean(x > 0))
    p_rope = None
    if rope is not None:
        rlo, rhi = float(rope[0]), float(rope[1])  # type: ignore[index]
        if rlo > rhi:
            raise ValueError(f"rope must be (low, high) with low <= high, got {rope}")
        rope = (rlo, rhi)
        p_rope = float(np.mean((x >= rlo) & (x <= rhi)))
    return EffectSummary(
        name=name,
        mean=float(x.mean()),
        median=float(np.median(x)),
        sd=float(x.std(ddof=1)),
        hdi_low=float(lo),
        hdi_high=float(hi),
        hdi_prob=hdi_prob,
        p_positive=p_pos,
        p_direction=max(p_pos, 1.0 - p_pos),
        rope=rope,
        p_rope=p_rope,
        n_draws=int(x.size),
        units=units,
        draws_kind=draws_kind,
    )


def effects_table(effects: list[EffectSummary]) -> pd.DataFrame:
    """Tabulate effect summaries, one row per estimand.

    Parameters
    ----------
    effects : list of EffectSummary
        The summaries to tabulate.

    Returns
    -------
    pandas.DataFrame
        One row per estimand with the fields of :class:`EffectSummary`; the ROPE is split into
        ``rope_low`` and ``rope_high`` (None without a ROPE).
    """
    return pd.DataFrame([e.to_dict() for e in effects])


# rank column -> (adjective of the rank-0 end, noun); every rank runs from 0 = most ... to 1 = least
RANK_WORDS = {
    "deprivation_rank": ("deprived", "deprivation"),
    "need_rank": ("in need", "need"),
}
GRADIENT_TERMS = ("delta_gradient",)  # changes of an SII (slope index of inequality)
LEVEL_TERMS = ("delta_level", "delta")  # changes of a mean level


def fiscal_year(year: int) -> str:
    """'FY2021/22' for the fiscal year ending in ``year`` (2022).

    Parameters
    ----------
    year : int
        Calendar year in which the fiscal year ends.

    Returns
    -------
    str
        The fiscal-year label.
    """
    return f"FY{int(year) - 1}/{int(year) % 100:02d}"


def _rank_words(rank_col: str | None) -> tuple[str, str]:
    return RANK_WORDS.get(str(rank_col), ("deprived", "deprivation"))


def estimand_words(
    term: str,
    *,
    outcome: str | None = None,
    treated: str | None = None,
    start_year: int | None = None,
    rank_col: str | None = None,
) -> str | None:
    """The estimand of an effect term in words, or None for a term without a description.

    Parameters
    ----------
    term : str
        Effect term (``delta_gradient``, ``delta_level``, ``delta``).
    outcome : str, optional
        Outcome column or alias (its short label names the quantity).
    treated : str, optional
        Treated ICB code (QK1 is named LLR).
    start_year : int, optional
        First treated fiscal year (its end year).
    rank_col : str, optional
        Rank of the SII (``deprivation_rank`` or ``need_rank``; 0 = most deprived / in need).

    Returns
    -------
    str or None
        E.g. "change in LLR's practice-level slope index of inequality (SII) of GP FTE by
        deprivation rank, relative to the comparator ICBs, from FY2021/22".
    """
    from hepcausal.outcomes import short_of

    who = "LLR" if treated == "QK1" else (treated or "the treated ICB")
    what = short_of(outcome) if outcome else "the outcome"
    when = f" from {fiscal_year(start_year)}" if start_year else " after the start"
    _, noun = _rank_words(rank_col)
    if term in GRADIENT_TERMS:
        return (
            f"change in {who}'s practice-level slope index of inequality (SII) of {what} by "
            f"{noun} rank, relative to the comparator ICBs,{when}"
        )
    if term == "delta_level":
        return (
            f"change in {who}'s mean {what} (at the middle {noun} rank), relative to the "
            f"comparator ICBs,{when}"
        )
    if term == "delta":
        return f"change in {who}'s mean {what}, relative to the comparator ICBs,{when}"
    return None


def sign_reading(
    term: str,
    estimate: float,
    *,
    outcome: str | None = None,
    rank_col: str | None = None,
    sii_before: float | None = None,
) -> str | None:
    """What the sign of an SII change means for inequality, in words (None for other terms).

    The SII is the fitted difference between the least (rank 1) and the most (rank 0) deprived
    (or in-need) end: a positive SII means more of the outcome in less deprived practices.
    A negative change moves the outcome towards the more deprived practices: it narrows a
    positive gap and widens a negative one (and vice versa for a positive change).

    Parameters
    ----------
    term : str
        Effect term; only SII changes (``delta_gradient``) get a reading.
    estimate : float
        The posterior mean (its sign is read).
    outcome : str, optional
        Outcome column or alias.
    rank_col : str, optional
        Rank column of the SII.
    sii_before : float, optional
        The treated ICB's SII before the start (e.g. the classical SII); with it the reading says
        whether the gap narrowed or widened.

    Returns
    -------
    str or None
        The reading.
    """
    if term not in GRADIENT_TERMS or not np.isfinite(estimate):
        return None
    from hepcausal.outcomes import short_of

    what = short_of(outcome) if outcome else "the outcome"
    adj, _ = _rank_words(rank_col)
    towards = f"more {adj}" if estimate < 0 else f"less {adj}"
    text = (
        f"A positive SII means more {what} in less {adj} practices; this "
        f"{'negative' if estimate < 0 else 'positive'} change shifts {what} towards the "
        f"{towards} practices relative to the comparators"
    )
    if sii_before is None or not np.isfinite(sii_before) or sii_before == 0:
        return (
            text + ": it narrows the gap where the SII was positive and widens it where the "
            "SII was negative."
        )
    favoured = f"less {adj}" if sii_before > 0 else f"more {adj}"
    narrows = (estimate < 0) == (sii_before > 0)
    return (
        text + f". Before the start the classical SII averaged {sii_before:.3g} ({what} higher in "
        f"{favoured} practices), so this change {'narrows' if narrows else 'widens'} that gap"
        + (" (it may reverse it if larger than the gap)." if narrows else ".")
    )


__all__ = [
    "EffectSummary",
    "effects_table",
    "estimand_words",
    "fiscal_year",
    "sign_reading",
    "summarise_effect",
]
