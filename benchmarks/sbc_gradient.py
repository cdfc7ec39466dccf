"""Simulation-based calibration of the gradient model's treated-ICB SII change (post - pre).

Draws parameters from the model's prior, simulates a Gaussian panel on a fixed small design,
fits the marginalised model (nutpie, compiled once) and checks that the ranks of the true
contrast among the posterior draws are uniform (chi-square test); see
:mod:`hepcausal.models.gradient_sbc`.  Usage::

    python benchmarks/sbc_gradient.py --sims 200 --draws 199 --bins 10
"""

from __future__ import annotations

import argparse
import time

from hepcausal.models.gradient_sbc import run_sbc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sims", type=int, default=200)
    ap.add_argument("--draws", type=int, default=199, help="thinned posterior draws per rank")
    ap.add_argument("--bins", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    t0 = time.perf_counter()
    res = run_sbc(n_sims=args.sims, seed=args.seed, n_draws=args.draws, n_bins=args.bins)
    took = time.perf_counter() - t0
    hist = res.histogram()
    print(f"SBC of the QK1 post-pre SII change: {args.sims} simulations, ranks 0..{res.n_draws}")
    print(
        f"rank histogram ({res.n_bins} bins, expected {args.sims / res.n_bins:.1f} each): "
        f"{hist.tolist()}"
    )
    print(
        f"chi-square {res.chi2:.2f} on {res.n_bins - 1} df, p = {res.pvalue:.3f} "
        f"({'uniform: OK' if res.pvalue > 0.01 else 'NOT uniform'})"
    )
    print(f"90% central interval coverage of the true contrast: {res.coverage_90:.3f}")
    print(f"min ESS of the contrast over simulations: {res.min_ess:.0f}; wall time {took:.0f} s")


if __name__ == "__main__":
    main()
