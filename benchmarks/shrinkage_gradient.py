"""Shrinkage of a true treated-ICS SII change by the gradient model (issue 10, item 5).

Realistic error scenario at the published design (QK1 + 10 comparators, ~1,660 practices,
2018-2024) with a true change ``delta`` of the treated ICS's SII from 2022.  For each panel the
gradient model's treated contrast (treated post-minus-pre mean SII minus the comparators') is
compared with the truth and with the unpooled per-cell least-squares contrast; shrinkage is
``1 - mean(model contrast) / mean(LS contrast)`` over the panels (toward 0 is positive).

    python benchmarks/shrinkage_gradient.py [--delta -0.168] [--panels 3] [--prior KEY=VALUE]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from hepcausal import schema as S
from hepcausal.data.synthetic import SimulationConfig, scenario, simulate_panel
from hepcausal.models.gradient import fit_gradient, treated_change
from hepcausal.sampling import SamplerSettings


def ls_change(panel, treated: str, start: int) -> float:
    """Per-cell OLS SII, then the same post-minus-pre contrast (no pooling)."""
    sii = {}
    for (g, t), cell in panel.groupby([S.ICB, S.YEAR]):
        r = cell[S.DEPRIVATION_RANK].to_numpy(float)
        y = cell[S.GP_FTE].to_numpy(float)
        sii[(g, t)] = np.polyfit(r, y, 1)[0]
    icbs = sorted({g for g, _ in sii})
    years = sorted({t for _, t in sii})

    def change(g: str) -> float:
        post = np.mean([sii[(g, t)] for t in years if t >= start])
        pre = np.mean([sii[(g, t)] for t in years if t < start])
        return float(post - pre)

    return change(treated) - float(np.mean([change(g) for g in icbs if g != treated]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--delta", type=float, default=-0.168)
    ap.add_argument("--panels", type=int, default=3)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--prior", action="append", default=[])
    ap.add_argument("--treated-term", action="store_true")
    args = ap.parse_args()
    priors = {k: float(v) for k, v in (p.split("=") for p in args.prior)}
    settings = SamplerSettings(draws=args.draws, tune=1000, chains=4)
    rows = []
    for i in range(args.panels):
        cfg = scenario(
            "realistic",
            SimulationConfig.published_design(gradient_effect=args.delta, seed=100 + i),
        )
        panel = simulate_panel(cfg).panel
        t0 = time.perf_counter()
        kw = {"treated": S.LLR_ICB, "start_year": S.HEP_START_YEAR} if args.treated_term else {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = fit_gradient(panel, S.GP_FTE, settings=settings, priors=priors or None, **kw)
        d = treated_change(fit, S.LLR_ICB, S.HEP_START_YEAR)
        ls = ls_change(panel, S.LLR_ICB, S.HEP_START_YEAR)
        rows.append((float(d.mean()), float(d.std()), ls, time.perf_counter() - t0))
        print(
            f"panel {i}: model {rows[-1][0]:+.4f} (sd {rows[-1][1]:.4f})  LS {ls:+.4f}  "
            f"truth {args.delta:+.4f}  fit {rows[-1][3]:.0f}s  ok={fit.diagnostics.ok}",
            flush=True,
        )
    m = np.mean([r[0] for r in rows])
    ls_m = np.mean([r[2] for r in rows])
    print(
        f"delta {args.delta}: mean model {m:+.4f}, mean LS {ls_m:+.4f}; "
        f"shrinkage vs LS {1 - m / ls_m:.1%}, vs truth {1 - m / args.delta:.1%}"
    )


if __name__ == "__main__":
    main()
