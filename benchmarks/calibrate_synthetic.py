"""Calibrate the synthetic panel generator against the real NHS files.

Computes summary statistics of the real practice x year data in ``$HEPCAUSAL_NHS_DATA`` (payments,
workforce, IMD, QOF) and prints them side by side with the same statistics of the default synthetic
panel (``hepcausal.data.synthetic``).  The generator never reads these files: the constants it
uses live in ``hepcausal.data.icb_table`` (per-ICB sizes and IMD quantiles) and
``hepcausal.data.synthetic`` (outcome levels, gradients, variance components).

A second table compares the residual structure (:func:`hepcausal.data.residual_stats.
residual_stats`: within-practice autocorrelations after removing practice and ICB x year means,
ICB spreads and kurtosis of practice post-minus-pre changes, exact zeros) of the real published
design (QK1 and the 10 comparators, 2018-2024; real panel from
:func:`hepcausal.data.nhs.build_nhs_panel`) with the generator's ``model`` (iid) and ``realistic``
error scenarios at the same design (``SimulationConfig.published_design``, seed-averaged).

Usage::

    python benchmarks/calibrate_synthetic.py                  # both tables
    python benchmarks/calibrate_synthetic.py --residuals-only # residual structure only
    python benchmarks/calibrate_synthetic.py --fit gp         # fit an outcome's ErrorStructure
    python benchmarks/calibrate_synthetic.py --emit-icb-table # print the ICB table (derivation)

The real-data reader here is deliberately minimal (calibration only); the project's loaders are in
``hepcausal.data.nhs``.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from hepcausal import schema as S
from hepcausal.data.headers import match_columns
from hepcausal.inequality.ranks import add_relative_rank
from hepcausal.outcomes import OUTCOMES, get_outcome, outcome_columns

IMD_PROBS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)


def _col(df: pd.DataFrame, *patterns: str) -> str:
    for pat in patterns:
        for c in df.columns:
            if re.search(pat, " ".join(str(c).split()), flags=re.IGNORECASE):
                return c
    raise KeyError(f"no column matching {patterns} in {list(df.columns)[:30]}")


def _fy_end(name: str) -> int:
    m = re.search(r"(\d{2})-(\d{2})", name)
    if m is None:
        raise ValueError(f"cannot find a fiscal year in file name {name!r}")
    return 2000 + int(m.group(2))


def load_real(data_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (practice x year panel, ICB lookup) built from the real files (calibration only)."""
    lk = pd.read_csv(data_dir / "lookups" / "ccg-icb.csv", encoding="utf-8-sig", dtype=str)
    lk.columns = ["ccg", S.ICB, S.ICB_NAME]
    frames = []
    for f in sorted((data_dir / "payments").glob("*.csv")):
        p = pd.read_csv(f, encoding="utf-8-sig", dtype=str, low_memory=False)
        out = pd.DataFrame(
            {
                S.PRACTICE: p[_col(p, r"^practice code$")].str.strip(),
                S.SUB_ICB: p[_col(p, r"^sub icb code$", r"^ccg code$")].str.strip(),
                S.PCN: p[_col(p, r"^pcn code$")]
                if any("PCN Code" in c for c in p.columns)
                else pd.NA,
                S.LIST_SIZE: pd.to_numeric(p[_col(p, r"registered patients")], errors="coerce"),
                S.WEIGHTED_LIST_SIZE: pd.to_numeric(
                    p[_col(p, r"weighted patients")], errors="coerce"
                ),
                S.YEAR: _fy_end(f.name),
            }
        )
        frames.append(out)
    pay = pd.concat(frames, ignore_index=True)
    pay = pay.merge(lk, left_on=S.SUB_ICB, right_on="ccg", how="left").drop(columns="ccg")

    imd = pd.read_csv(
        data_dir / "imd" / "fingertips-93553-practice-deprivation.csv", encoding="utf-8-sig"
    )
    imd = imd.loc[imd["Year"] == 2019, ["AreaCode", "Value"]].rename(
        columns={"AreaCode": S.PRACTICE, "Value": S.IMD}
    )
    wf = pd.read_csv(
        data_dir / "workforce" / "workforce-practice-fiscal-year.csv", dtype={"Practice.Code": str}
    )
    wf = wf.rename(columns={"Practice.Code": S.PRACTICE, "Year": S.YEAR})
    qframes = []
    for f in sorted((data_dir / "qof").glob("*.csv")):
        q = pd.read_csv(f, encoding="utf-8-sig", dtype=str)
        q.columns = [" ".join(str(c).split()) for c in q.columns]
        year = _fy_end(f.name)
        pts = pd.to_numeric(q[_col(q, r"^achievement score")], errors="coerce")
        qframes.append(
            pd.DataFrame(
                {
                    S.PRACTICE: q[_col(q, r"^practice code$")].str.strip(),
                    S.YEAR: year,
                    S.QOF: pts / (559.0 if year <= 2020 else 635.0),
                }
            )
        )
    qof = pd.concat(qframes, ignore_index=True)

    panel = pay.merge(imd, on=S.PRACTICE, how="left").merge(wf, on=[S.PRACTICE, S.YEAR], how="left")
    panel = panel.merge(qof, on=[S.PRACTICE, S.YEAR], how="left")
    wl = panel[S.WEIGHTED_LIST_SIZE] / 1000.0
    # every workforce outcome of the outcome table, found by its header pattern
    patterns = {o.column: o.source_header for o in OUTCOMES.values() if o.source_header}
    raw = match_columns(wf, patterns, source="workforce", optional=tuple(patterns))
    for out, src in raw.items():
        panel[out] = pd.to_numeric(panel[src], errors="coerce") / wl
    keep = (
        panel[S.ICB].notna()
        & panel[S.IMD].notna()
        & (panel[S.LIST_SIZE] > 0)
        & (panel[S.WEIGHTED_LIST_SIZE] > 0)
    )
    return panel.loc[keep].reset_index(drop=True), lk


def icb_table(panel: pd.DataFrame, lk: pd.DataFrame, year: int = 2022) -> pd.DataFrame:
    """Per-ICB constants for the generator: practice count, list-size median, IMD quantiles."""
    names = lk.drop_duplicates(S.ICB).set_index(S.ICB)[S.ICB_NAME]
    sub = panel.loc[panel[S.YEAR] == year]
    rows = []
    for icb, g in sub.groupby(S.ICB):
        q = np.quantile(g[S.IMD], IMD_PROBS)
        rows.append(
            {
                S.ICB: icb,
                S.ICB_NAME: names[icb],
                "n_practices": len(g),
                "sub_icbs": tuple(sorted(g[S.SUB_ICB].unique())),
                "median_list": float(g[S.LIST_SIZE].median()),
                "imd_quantiles": tuple(round(float(v), 1) for v in q),
            }
        )
    return pd.DataFrame(rows)


def emit_icb_table(tab: pd.DataFrame) -> str:
    lines = ["ICB_ROWS: Final[tuple[IcbRow, ...]] = ("]
    for r in tab.itertuples(index=False):
        lines.append(
            f"    IcbRow(\n        {r.icb_code!r},\n        {r.icb_name!r},\n"
            f"        {r.n_practices},\n        {r.median_list:.0f},\n"
            f"        {r.sub_icbs!r},\n        {r.imd_quantiles!r},\n    ),"
        )
    lines.append(")")
    return "\n".join(lines)


def _robust_sd(x: pd.Series | np.ndarray) -> float:
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    return float(1.4826 * np.median(np.abs(x - np.median(x))))


def _clean(panel: pd.DataFrame, outcome: str) -> pd.DataFrame:
    """Rows usable for an outcome: finite value, list >= 1,000, value <= its 99.5th percentile."""
    d = panel.loc[np.isfinite(panel[outcome].astype(float)) & (panel[S.LIST_SIZE] >= 1000)]
    return d.loc[d[outcome] <= d[outcome].quantile(0.995)]


def _gradient_stats(panel: pd.DataFrame, outcome: str) -> dict[str, float]:
    """Per ICB-year list-weighted OLS slopes of ``outcome`` on rank (SII): level and spread.

    ``SD of ICB means`` is the spread of each ICB's mean slope over years (persistent ICB
    differences + averaged noise); ``within-ICB SD`` the spread of slopes around their ICB mean.
    """
    d = add_relative_rank(
        _clean(panel, outcome), S.IMD, S.LIST_SIZE, by=[S.ICB, S.YEAR], out=S.DEPRIVATION_RANK
    )
    rows = []
    for (icb, _), g in d.groupby([S.ICB, S.YEAR]):
        if len(g) < 10:
            continue
        w = g[S.LIST_SIZE].to_numpy(float)
        x = g[S.DEPRIVATION_RANK].to_numpy(float)
        y = g[outcome].to_numpy(float)
        xm = np.average(x, weights=w)
        slope = np.sum(w * (x - xm) * (y - np.average(y, weights=w))) / np.sum(w * (x - xm) ** 2)
        rows.append((icb, slope))
    s = pd.DataFrame(rows, columns=[S.ICB, "slope"])
    icb_mean = s.groupby(S.ICB)["slope"].transform("mean")
    return {
        "SII median (ICB-years)": float(s["slope"].median()),
        "SII SD (ICB-years)": float(s["slope"].std()),
        "SII SD of ICB means": float(s.groupby(S.ICB)["slope"].mean().std()),
        "SII within-ICB SD": float((s["slope"] - icb_mean).std()),
    }


def _variance_components(panel: pd.DataFrame, outcome: str) -> dict[str, float]:
    """Robust (MAD) SDs of practice means and of deviations around them, ICB-year centred."""
    d = _clean(panel, outcome)
    resid = d[outcome] - d.groupby([S.ICB, S.YEAR])[outcome].transform("median")
    pm = resid.groupby(d[S.PRACTICE]).transform("mean")
    n = d.groupby(S.PRACTICE)[outcome].transform("size")
    keep = n >= 4
    return {
        "between-practice SD (MAD)": _robust_sd(pm[keep].groupby(d[S.PRACTICE][keep]).first()),
        "within-practice SD (MAD)": _robust_sd((resid - pm)[keep]),
    }


def summary(panel: pd.DataFrame, years: tuple[int, ...] | None = None) -> pd.DataFrame:
    """Summary statistics used for calibration (same function for real and synthetic panels)."""
    if years is not None:
        panel = panel.loc[panel[S.YEAR].isin(years)]
    rows: list[tuple[str, float]] = []
    ls = panel[S.LIST_SIZE]
    rows += [
        ("practices per year (mean)", panel.groupby(S.YEAR).size().mean()),
        ("list size median", ls.median()),
        ("list size p10", ls.quantile(0.1)),
        ("list size p90", ls.quantile(0.9)),
        ("list size p99", ls.quantile(0.99)),
        ("share list < 1000", (ls < 1000).mean()),
        ("weighted/registered median", (panel[S.WEIGHTED_LIST_SIZE] / ls).median()),
        ("weighted/registered p10", (panel[S.WEIGHTED_LIST_SIZE] / ls).quantile(0.1)),
        ("weighted/registered p90", (panel[S.WEIGHTED_LIST_SIZE] / ls).quantile(0.9)),
        ("corr(w/r ratio, imd)", np.corrcoef(panel[S.WEIGHTED_LIST_SIZE] / ls, panel[S.IMD])[0, 1]),
        ("imd median", panel[S.IMD].median()),
        ("imd p10", panel[S.IMD].quantile(0.1)),
        ("imd p90", panel[S.IMD].quantile(0.9)),
    ]
    growth = panel.groupby(S.YEAR)[S.LIST_SIZE].median()
    rows.append(
        ("median list growth %/yr", 100 * (np.exp(np.diff(np.log(growth.to_numpy())).mean()) - 1))
    )
    workforce = [c for c in outcome_columns(source="workforce") if c in panel]
    for k in (*workforce, S.QOF):
        y = panel[k].replace([np.inf, -np.inf], np.nan).dropna()
        rows += [
            (f"{k} median", y.median()),
            (f"{k} p10", y.quantile(0.1)),
            (f"{k} p90", y.quantile(0.9)),
        ]
        by_year = panel.groupby(S.YEAR)[k].median().dropna()
        if get_outcome(k).kind == "rate":
            rows.append((f"{k} share zero", float((y == 0).mean())))
        else:
            rows += [(f"{k} median {yr}", v) for yr, v in by_year.items()]
        rows.append((f"{k} median first->last year", by_year.iloc[-1] - by_year.iloc[0]))
        icb_med = panel.groupby([S.YEAR, S.ICB])[k].median().dropna()
        rows.append(
            (f"{k} SD of ICB medians (MAD)", icb_med.groupby(level=0).agg(_robust_sd).mean())
        )
        rows += [(f"{k} {name}", v) for name, v in _gradient_stats(panel, k).items()]
        rows += [(f"{k} {name}", v) for name, v in _variance_components(panel, k).items()]
    return pd.DataFrame(rows, columns=["statistic", "value"]).set_index("statistic")


RESIDUAL_OUTCOMES = (S.GP_FTE, S.NURSE_FTE, S.ADMIN_FTE)


def residual_table(real_panel: pd.DataFrame | None, seeds: Sequence[int]) -> pd.DataFrame:
    """Real vs ``model`` vs ``realistic`` residual statistics, one block per outcome.

    Parameters
    ----------
    real_panel : pandas.DataFrame or None
        Real panel (``build_nhs_panel``); None = the stored ``REAL_TARGETS``.
    seeds : sequence of int
        Seeds the generated statistics are averaged over.

    Returns
    -------
    pandas.DataFrame
        Index (outcome, statistic), columns real, model, realistic.
    """
    from hepcausal.data.residual_stats import REAL_TARGETS, residual_stats, simulated_residual_stats

    blocks = {}
    for k in RESIDUAL_OUTCOMES:
        if real_panel is not None:
            comps = [S.LLR_ICB, *S.PUBLISHED_COMPARATORS]
            real = residual_stats(real_panel, k, icbs=comps).as_dict()
        else:
            real = REAL_TARGETS[k]
        blocks[k] = pd.DataFrame(
            {
                "real": real,
                "model": simulated_residual_stats(k, "model", seeds),
                "realistic": simulated_residual_stats(k, "realistic", seeds),
            }
        )
    return pd.concat(blocks, names=["outcome", "statistic"])


# Fitted fields and their unconstrained transforms (x -> field value).
_Transform = Callable[[float], float]
_FIT_TRANSFORMS: dict[str, tuple[_Transform, _Transform]] = {
    "rho": (lambda v: v, lambda x: float(np.clip(x, 0.0, 0.95))),
    "drift_sd": (lambda v: v, lambda x: abs(float(x))),
    "scale": (lambda v: float(np.log(v)), lambda x: float(np.exp(x))),
    "nu": (lambda v: float(np.log(v - 2.0)), lambda x: 2.0 + float(np.exp(x))),
    "ics_noise_sd": (lambda v: v, lambda x: abs(float(x))),
    "treated_noise_ratio": (lambda v: float(np.log(v)), lambda x: float(np.exp(x))),
    "zero_share": (lambda v: v, lambda x: float(np.clip(x, 0.0, 0.2))),
    "treated_zero_share": (lambda v: v, lambda x: float(np.clip(x, 0.0, 0.2))),
}
# The ACF shape fixes rho and drift_sd (grid search on the ACF alone, other features off: rho 0.65,
# drift_sd 0.12 reproduce lags 1-5 within 0.02); the fit then adjusts the rest.
FIT_FREE: tuple[str, ...] = (
    "scale",
    "nu",
    "ics_noise_sd",
    "treated_noise_ratio",
    "zero_share",
    "treated_zero_share",
)


def fit_loss(sim: dict[str, float], real: dict[str, float]) -> float:
    """Squared standardised distance between generated and real residual statistics.

    Parameters
    ----------
    sim, real : dict
        :meth:`ResidualStats.as_dict` of the generated and the real panel.

    Returns
    -------
    float
        The loss (ACF lags in units of 0.03, log SDs in 0.03-0.1, log kurtosis in 0.2, zero
        shares in 0.001 / 0.003).
    """
    loss = sum(((sim[f"acf lag {j}"] - real[f"acf lag {j}"]) / 0.03) ** 2 for j in range(1, 6))
    ratio = sim["change SD max"] / sim["change SD min"]
    real_ratio = real["change SD max"] / real["change SD min"]
    terms = [
        (np.log(sim["change SD median"] / real["change SD median"]), 0.03),
        (np.log(sim["change SD treated / median"] / real["change SD treated / median"]), 0.1),
        (np.log(ratio / real_ratio), 0.1),
        (np.log(max(sim["kurtosis pooled"], 0.1) / real["kurtosis pooled"]), 0.2),
        (np.log(sim["residual SD"] / real["residual SD"]), 0.05),
        (sim["zero share"] - real["zero share"], 0.001),
        (sim["zero share treated"] - real["zero share treated"], 0.003),
    ]
    return float(loss + sum((d / s) ** 2 for d, s in terms))


def fit_error_structure(
    outcome: str,
    real: dict[str, float],
    seeds: Sequence[int] = (1, 2, 3, 4),
    maxfev: int = 300,
    free: Sequence[str] = FIT_FREE,
) -> dict[str, float]:
    """Nelder-Mead fit of an outcome's ErrorStructure to real residual statistics.

    Starts from the outcome's ``CALIBRATED_ERRORS`` entry (else GP FTE's) and frees the fields
    ``free``; the others (by default ``rho``, ``drift_sd`` and the zero persistence, measured
    directly: P(zero | zero last year) = 0.68 for GP FTE) keep their start values.

    Parameters
    ----------
    outcome : str
        Panel column.
    real : dict
        Target statistics (:meth:`ResidualStats.as_dict` of the real panel).
    seeds : sequence of int
        Common random numbers: the seeds every evaluation averages over.
    maxfev : int
        Maximum number of loss evaluations.
    free : sequence of str
        Fields to fit (keys of ``_FIT_TRANSFORMS``).

    Returns
    -------
    dict
        Fitted field values (rounded to 3 decimals) and the final loss.
    """
    from scipy.optimize import minimize

    from hepcausal.data.residual_stats import simulated_residual_stats
    from hepcausal.data.synthetic import CALIBRATED_ERRORS

    start = CALIBRATED_ERRORS.get(outcome, CALIBRATED_ERRORS[S.GP_FTE])
    base = {f: getattr(start, f) for f in free}
    if "nu" in base and base["nu"] is None:
        base["nu"] = 30.0
    x0 = np.array([_FIT_TRANSFORMS[f][0](float(base[f])) for f in free])

    def fields(x: np.ndarray) -> dict[str, float]:
        return {f: _FIT_TRANSFORMS[f][1](float(v)) for f, v in zip(free, x, strict=True)}

    def loss(x: np.ndarray) -> float:
        return fit_loss(simulated_residual_stats(outcome, "realistic", seeds, **fields(x)), real)

    res = minimize(loss, x0, method="Nelder-Mead", options={"maxfev": maxfev, "fatol": 0.05})
    out = {k: round(v, 3) for k, v in fields(res.x).items()}
    out["loss"] = float(res.fun)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=os.environ.get("HEPCAUSAL_NHS_DATA"))
    ap.add_argument("--emit-icb-table", action="store_true")
    ap.add_argument("--seed", type=int, default=20240401)
    ap.add_argument("--residuals-only", action="store_true", help="skip the level/SII table")
    ap.add_argument("--seeds", type=int, default=4, help="generated panels per scenario")
    ap.add_argument("--fit", metavar="OUTCOME", help="fit this outcome's ErrorStructure")
    ap.add_argument("--maxfev", type=int, default=300)
    args = ap.parse_args(argv)
    if not args.data_dir:
        print("set HEPCAUSAL_NHS_DATA or pass --data-dir", file=sys.stderr)
        return 2
    seeds = tuple(range(1, args.seeds + 1))
    if args.fit or args.residuals_only:
        from hepcausal.data.nhs import build_nhs_panel
        from hepcausal.data.residual_stats import residual_stats

        real_panel = build_nhs_panel(args.data_dir).panel
        if args.fit:
            k = get_outcome(args.fit).column
            comps = [S.LLR_ICB, *S.PUBLISHED_COMPARATORS]
            target = residual_stats(real_panel, k, icbs=comps).as_dict()
            print(k, fit_error_structure(k, target, seeds, args.maxfev))
            return 0
        _print_residuals(real_panel, seeds)
        return 0
    real, lk = load_real(Path(args.data_dir))
    if args.emit_icb_table:
        print(emit_icb_table(icb_table(real, lk)))
        return 0
    from hepcausal.data.synthetic import SimulationConfig, simulate_panel

    sim = simulate_panel(SimulationConfig(seed=args.seed)).panel
    years = tuple(sorted(set(real[S.YEAR]) & set(sim[S.YEAR])))
    cmp = pd.concat(
        {"real": summary(real, years), "synthetic": summary(sim, years)}, axis=1
    ).droplevel(1, axis=1)
    with pd.option_context(
        "display.max_rows", 200, "display.width", 120, "display.float_format", "{:.4g}".format
    ):
        print(f"years compared: {years[0]}..{years[-1]}")
        print(cmp)
    from hepcausal.data.nhs import build_nhs_panel

    _print_residuals(build_nhs_panel(args.data_dir).panel, seeds)
    return 0


def gradient_table(real_panel: pd.DataFrame, seeds: Sequence[int]) -> pd.DataFrame:
    """Spread over the 42 ICBs of the per ICB-year SII trends and post-minus-pre changes.

    Real panel vs the national default generator (``SimulationConfig()``) under the ``model``
    and ``realistic`` scenarios (median over ``seeds``).

    Parameters
    ----------
    real_panel : pandas.DataFrame
        Real panel (``build_nhs_panel``).
    seeds : sequence of int
        Generator seeds.

    Returns
    -------
    pandas.DataFrame
        Index (outcome, statistic), columns real, model, realistic.
    """
    from hepcausal.data.residual_stats import icb_gradient_stats
    from hepcausal.data.synthetic import SimulationConfig, scenario, simulate_panel

    panels = {
        name: [simulate_panel(scenario(name, SimulationConfig(seed=sd))).panel for sd in seeds]
        for name in ("model", "realistic")
    }
    blocks = {}
    for k in RESIDUAL_OUTCOMES:
        cols = {"real": icb_gradient_stats(real_panel, k)}
        for name, ps in panels.items():
            stats = [icb_gradient_stats(p, k) for p in ps]
            cols[name] = {s: float(np.median([d[s] for d in stats])) for s in stats[0]}
        blocks[k] = pd.DataFrame(cols)
    return pd.concat(blocks, names=["outcome", "statistic"])


def _print_residuals(real_panel: pd.DataFrame, seeds: Sequence[int]) -> None:
    tab = residual_table(real_panel, seeds)
    opts = ("display.max_rows", 200, "display.width", 120, "display.float_format", "{:.4f}".format)
    print(
        "\nResidual structure after removing practice and ICB x year means: published design "
        f"(QK1 + 10 comparators, 2018-2024); generated = median of {len(seeds)} seeds of "
        "SimulationConfig.published_design; change SD min/median/max over the 10 comparators; "
        "kurtosis = excess kurtosis of the practice post-minus-pre changes"
    )
    with pd.option_context(*opts):
        print(tab)
    print(
        "\nICB-level gradient: SD over the 42 ICBs of the per ICB-year SII linear trend and "
        f"post-minus-pre change; generated = national default, median of {len(seeds)} seeds"
    )
    with pd.option_context(*opts):
        print(gradient_table(real_panel, seeds))


if __name__ == "__main__":
    raise SystemExit(main())
