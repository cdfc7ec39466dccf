"""Frequentist calibration of the Bayesian triple difference (DDD) over repeated synthetic panels.

For ``--sims`` independent panels from the generator with no effect and as many with a known
gradient effect, fits :func:`hepcausal.causal.did.fit_ddd` (package sampler defaults unless
``--draws``) and prints: the rate at which the 95% HDI excludes zero under the null (false
positives; nominal about 5%), the coverage of the true DDD by the 95% HDI under both scenarios,
the detection rate (power) under the effect, and convergence failures.  Usage::

    python benchmarks/calibration_ddd.py --sims 20
"""

from __future__ import annotations

import argparse
import time
import warnings

from scipy import stats

from hepcausal import schema as S
from hepcausal.causal.did import fit_ddd
from hepcausal.data.synthetic import SimulationConfig, simulate_panel
from hepcausal.diagnostics import ConvergenceWarning
from hepcausal.sampling import SamplerSettings
from hepcausal.spec import Design, Inference

ICBS = ("QK1", "QJ2", "QOQ", "QT1", "QHM", "QWO", "QF7", "QE1", "QWU")
YEARS = (2019, 2020, 2021, 2022, 2023, 2024)


def _rate(k: int, n: int) -> str:
    lo, hi = stats.beta.ppf([0.025, 0.975], [k, k + 1], [n - k + 1, n - k]) if n else (0, 0)
    lo = 0.0 if k == 0 else lo
    hi = 1.0 if k == n else hi
    return f"{k}/{n} = {k / n:.2f} (95% CI {lo:.2f}-{hi:.2f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sims", type=int, default=20, help="panels per scenario")
    ap.add_argument("--effect", type=float, default=-0.1, help="true SII change (FTE per 1k)")
    ap.add_argument("--practices", type=int, default=270)
    ap.add_argument("--draws", type=int, default=SamplerSettings().draws)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    comps = list(ICBS[1:])
    t0 = time.perf_counter()
    for label, effect in (("null", 0.0), ("effect", args.effect)):
        covered = excluded = failed = 0
        for i in range(args.sims):
            seed = args.seed * 10_000 + i
            cfg = SimulationConfig.small(
                n_practices=args.practices,
                icbs=ICBS,
                years=YEARS,
                level_effect=0.0,
                gradient_effect=effect,
                seed=seed,
            )
            sp = simulate_panel(cfg)
            truth = sp.truth.ddd(S.GP_FTE, comps)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                fit = fit_ddd(
                    sp.panel,
                    S.GP_FTE,
                    Design(comparators=tuple(comps)),
                    Inference(settings=SamplerSettings(draws=args.draws, seed=seed)),
                )
            h = fit.headline
            covered += h.hdi_low <= truth <= h.hdi_high
            excluded += not (h.hdi_low <= 0 <= h.hdi_high)
            failed += not fit.diagnostics.ok
            print(
                f"  {label} {i}: truth {truth:+.3f}, DDD {h.mean:+.3f} "
                f"[{h.hdi_low:+.3f}, {h.hdi_high:+.3f}] "
                f"{'ok' if fit.diagnostics.ok else fit.diagnostics}",
                flush=True,
            )
        n = args.sims
        print(
            f"{label}: coverage of the true DDD by the 95% HDI {_rate(covered, n)}; "
            f"HDI excludes 0 {_rate(excluded, n)}; convergence failures {failed}",
            flush=True,
        )
    print(f"wall time {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
