"""Synthetic control on California's Proposition 99, hepcausal against CausalPy, in one run.

Published: Abadie, Diamond & Hainmueller (2010) weights Utah .394, Montana .232, Nevada .204,
Connecticut .109, Colorado .061, New Hampshire .045; gap about -26 packs in 2000 and -19 to -20 on
average over 1989-2000.  Arkhangelsky et al. (2021): SDID -15.6, SC -19.6, DiD -27.3.

Times (wall clock, same machine, same run): hepcausal's synthetic control at the package defaults
(penalised simplex fit with a Bayesian-bootstrap posterior, 4 x 2000 draws), hepcausal's synthetic
DiD (200 placebo replications) and the in-space placebo (39 fits), and CausalPy 0.9's
``WeightedSumFitter`` (Dirichlet(1) weights, NUTS) with nutpie, 4 x 2000 draws.  Usage::

    python benchmarks/bench_synthetic_control.py            # all
    python benchmarks/bench_synthetic_control.py --no-causalpy
    python benchmarks/bench_synthetic_control.py --realdata # + LLR GP FTE SII ($HEPCAUSAL_NHS_DATA)
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from hepcausal.causal.placebo import leave_one_out, placebo_in_space, placebo_in_time
from hepcausal.causal.sdid import fit_sdid
from hepcausal.causal.synthetic_control import fit_synthetic_control

PUBLISHED = {"Utah": 0.394, "Montana": 0.232, "Nevada": 0.204, "Connecticut": 0.109}


def prop99() -> pd.DataFrame:
    """The Prop 99 panel shipped with CausalPy (year x state, packs per capita)."""
    spec = importlib.util.find_spec("causalpy")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("causalpy (the test extra) is needed: it ships california_prop99.csv")
    p = Path(next(iter(spec.submodule_search_locations))) / "data" / "california_prop99.csv"
    return pd.read_csv(p).set_index("Year")


def run_hepcausal(wide: pd.DataFrame) -> dict[str, float]:
    """Fit, print and time hepcausal's synthetic control, placebo and synthetic DiD."""
    t0 = time.perf_counter()
    f = fit_synthetic_control(wide, "California", 1989, units="packs per capita")
    t_sc = time.perf_counter() - t0
    h = f.headline
    print(f"hepcausal SC (defaults): {t_sc:.1f} s; {f.diagnostics}")
    print(
        f"  average gap 1989-2000 {h.mean:.1f} [{h.hdi_low:.1f}, {h.hdi_high:.1f}] (ADH ~ -19 to "
        f"-20); gap 2000 {f.effects['effect_2000'].mean:.1f} (ADH ~ -26)"
    )
    w = f.weights["mean"]
    print("  weights: " + ", ".join(f"{k} {w[k]:.3f} (ADH {v:.3f})" for k, v in PUBLISHED.items()))
    t0 = time.perf_counter()
    pl = placebo_in_space(wide, "California", 1989)
    t_pl = time.perf_counter() - t0
    print(f"  {pl.summary()}  ranks by MSPE threshold {pl.ranks_by_threshold}; {t_pl:.1f} s")
    print(f"  {placebo_in_time(wide, 'California', 1989).summary()}")
    print(f"  {leave_one_out(wide, 'California', 1989).summary()}")
    t0 = time.perf_counter()
    sd = fit_sdid(wide, "California", 1989)
    t_sd = time.perf_counter() - t0
    c = sd.comparison
    print(
        f"hepcausal SDID: {sd.tau:.2f} (se {sd.se:.2f}, placebo) vs paper -15.6; SC {c['sc']:.2f} "
        f"vs -19.6; DiD {c['did']:.2f} vs -27.3; {t_sd:.1f} s"
    )
    return {"sc": t_sc, "placebo": t_pl, "sdid": t_sd}


def run_causalpy(wide: pd.DataFrame) -> float:
    """Fit and time CausalPy's WeightedSumFitter (nutpie, 4 x 2000)."""
    import causalpy as cp

    df = wide.copy()
    controls = [c for c in df.columns if c != "California"]
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = cp.SyntheticControl(
            df,
            1989,
            control_units=controls,
            treated_units=["California"],
            model=cp.pymc_models.WeightedSumFitter(
                sample_kwargs={
                    "draws": 2000,
                    "tune": 1000,
                    "chains": 4,
                    "nuts_sampler": "nutpie",
                    "random_seed": 1,
                    "progressbar": False,
                }
            ),
        )
    took = time.perf_counter() - t0
    beta = res.model.idata.posterior["beta"].mean(("chain", "draw"))
    beta = beta.to_series().droplevel(0) if beta.ndim > 1 else beta.to_series()
    impact = res.post_impact.mean(("chain", "draw")).values.ravel()
    print(
        f"CausalPy WeightedSumFitter (nutpie): {took:.1f} s; average gap {np.mean(impact):.1f}; "
        f"Utah {float(beta.get('Utah', np.nan)):.3f}"
    )
    return took


def run_realdata() -> None:
    """LLR synthetic control on the GP FTE SII (published comparators), with placebo rank."""
    from hepcausal import schema as S
    from hepcausal.data.nhs import build_nhs_panel
    from hepcausal.experiments.adapters import _sc_series
    from hepcausal.spec import Design

    data_dir = os.environ.get("HEPCAUSAL_NHS_DATA")
    if not data_dir:
        raise SystemExit("--realdata needs HEPCAUSAL_NHS_DATA (the NHS files' folder)")
    panel = build_nhs_panel(data_dir).panel
    spec = Design(
        treated=S.LLR_ICB, comparators=tuple(S.PUBLISHED_COMPARATORS), start_year=S.HEP_START_YEAR
    )
    wide, se, donors = _sc_series(panel, S.GP_FTE, spec, 1, "sii", "unit")
    f = fit_synthetic_control(wide, S.LLR_ICB, S.HEP_START_YEAR, donors=donors, outcome_se=se)
    print(f"LLR GP FTE SII synthetic control: {f.headline}")
    print(f"  weights: {f.weights['mean'].round(3).to_dict()}; pre-fit {f.pre_fit}")
    print(f"  {f.diagnostics}; outside hull: {f.meta['outside_convex_hull']}")
    pl = placebo_in_space(wide, S.LLR_ICB, S.HEP_START_YEAR, fit_kwargs={"outcome_se": se})
    print(f"  {pl.summary()} ranks by threshold {pl.ranks_by_threshold}")
    sd = fit_sdid(wide, S.LLR_ICB, S.HEP_START_YEAR, donors=donors)
    print(f"  SDID {sd.tau:.4f} (se {sd.se:.4f}); comparison {sd.comparison}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-causalpy", action="store_true")
    ap.add_argument("--realdata", action="store_true")
    ap.add_argument("--no-prop99", action="store_true")
    args = ap.parse_args()
    wide = prop99()
    t = run_hepcausal(wide) if not args.no_prop99 else {"sc": float("nan")}
    if not args.no_causalpy and not args.no_prop99:
        t_cp = run_causalpy(wide)
        print(
            f"time ratio CausalPy / hepcausal SC (same run): {t_cp / t['sc']:.1f}x "
            f"({t_cp:.1f} s vs {t['sc']:.1f} s)"
        )
    if args.realdata:
        run_realdata()


if __name__ == "__main__":
    main()
