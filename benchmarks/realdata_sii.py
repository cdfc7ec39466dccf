"""Real NHS data: Bayesian gradient-model SII next to the classical unit-level SII, per ICB-year.

Builds the panel from ``$HEPCAUSAL_NHS_DATA`` (default inclusion rules), fits
:func:`hepcausal.models.gradient.fit_gradient` for each outcome (package sampler defaults) and the
classical practice-level SII (:func:`hepcausal.inequality.classical.sii_table`, ``method='unit'``,
HC1 standard errors) for every ICB and year, then prints England and the treated ICB side by side,
the Bayes-classical correlation over ICB-years and the convergence line of every fit.  For
proportions the Bayesian column is ``sii_prob`` (probability scale, typical practice).  Usage::

    python benchmarks/realdata_sii.py                          # gp nurse admin qof
    python benchmarks/realdata_sii.py --outcomes gp --out /tmp/sii
    python benchmarks/realdata_sii.py --outcomes qof --qof-family logit_normal
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from hepcausal import schema as S
from hepcausal.data.nhs import build_nhs_panel
from hepcausal.inequality.classical import sii_table
from hepcausal.models.families import get_family
from hepcausal.models.gradient import NATIONAL, fit_gradient
from hepcausal.sampling import SamplerSettings

OUTCOMES = {"gp": S.GP_FTE, "nurse": S.NURSE_FTE, "admin": S.ADMIN_FTE, "qof": S.QOF}


def compare(
    panel: pd.DataFrame, outcome: str, settings: SamplerSettings, likelihood: str = "auto"
) -> tuple[pd.DataFrame, str]:
    """Merged table (icb, year, bayes mean/HDI, classical sii/CI) and the fit's diagnostics."""
    t0 = time.perf_counter()
    # QOF: beta-binomial on max points by default; --qof-family logit_normal is the fast
    # marginalised approximation
    fit = fit_gradient(panel, outcome, settings=settings, likelihood=likelihood)
    took = time.perf_counter() - t0
    var = get_family(fit.meta["likelihood"]).report_var  # probability-scale SII for counts
    bayes = fit.sii_table(var, hdi_prob=0.95).rename(
        columns={"mean": "bayes", "hdi_low": "bayes_low", "hdi_high": "bayes_high"}
    )
    classical = sii_table(
        panel, outcome, method="unit", rank_col=S.DEPRIVATION_RANK, national=True, seed=1
    )
    classical = classical.rename(
        columns={"sii": "classical", "lower": "classical_low", "upper": "classical_high"}
    )
    merged = bayes.merge(
        classical[[S.ICB, S.YEAR, "classical", "classical_low", "classical_high", "n_practices"]],
        on=[S.ICB, S.YEAR],
    )
    line = (
        f"{outcome}: likelihood {fit.meta['likelihood']}, {fit.meta['n_obs']} rows, "
        f"{took:.0f} s; {fit.diagnostics}"
    )
    return merged, line


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("HEPCAUSAL_NHS_DATA"))
    ap.add_argument("--outcomes", nargs="+", default=list(OUTCOMES), choices=list(OUTCOMES))
    ap.add_argument("--treated", default=S.LLR_ICB)
    ap.add_argument("--draws", type=int, default=SamplerSettings().draws, help="draws per chain")
    ap.add_argument("--out", default=None, help="folder for one CSV per outcome")
    ap.add_argument(
        "--qof-family",
        default="auto",
        help="likelihood of the QOF fit (auto = beta_binomial; logit_normal, binomial, gaussian)",
    )
    args = ap.parse_args()
    if not args.data:
        raise SystemExit("give --data or set HEPCAUSAL_NHS_DATA to the NHS data folder")
    panel = build_nhs_panel(args.data).panel
    print(f"panel: {len(panel)} practice-years, {panel[S.PRACTICE].nunique()} practices")
    for key in args.outcomes:
        outcome = OUTCOMES[key]
        fam = args.qof_family if outcome == S.QOF else "auto"
        tab, line = compare(panel, outcome, SamplerSettings(draws=args.draws), fam)
        if args.out:
            Path(args.out).mkdir(parents=True, exist_ok=True)
            tab.to_csv(Path(args.out) / f"sii_{key}.csv", index=False)
        icb_rows = tab[tab[S.ICB] != NATIONAL].dropna(subset=["classical"])
        r = np.corrcoef(icb_rows["bayes"], icb_rows["classical"])[0, 1]
        print(f"\n== {outcome}: SII (least minus most deprived), Bayes 95% HDI vs classical 95% CI")
        for area in (NATIONAL, args.treated):
            sub = tab[tab[S.ICB] == area].sort_values(S.YEAR)
            for _, x in sub.iterrows():
                print(
                    f"  {area:8s} {x[S.YEAR]}  Bayes {x['bayes']:+.4f} [{x['bayes_low']:+.4f}, "
                    f"{x['bayes_high']:+.4f}]   classical {x['classical']:+.4f} "
                    f"[{x['classical_low']:+.4f}, {x['classical_high']:+.4f}]"
                )
        width_ratio = (
            (icb_rows["bayes_high"] - icb_rows["bayes_low"])
            / (icb_rows["classical_high"] - icb_rows["classical_low"])
        ).median()
        print(
            f"  correlation over {len(icb_rows)} ICB-years {r:.2f}; median interval width "
            f"Bayes / classical {width_ratio:.2f}"
        )
        print("  " + line, flush=True)


if __name__ == "__main__":
    main()
