"""Frequentist calibration of the Bayesian triple difference (DDD): old vs new error model.

For ``--sims`` independent panels of a named error scenario (default ``realistic``: practice
drift, AR(1), ICB noise scales, heavy tails and zeros at the real panel's magnitudes) at the
published design (QK1 + 10 comparators, ~1,660 practices, 2018-2024) with no effect, and as many
with a known gradient effect, fits :func:`hepcausal.causal.did.fit_ddd` with each error model on
the SAME panels and prints, side by side: the 95% HDI coverage of the true DDD (both scenarios),
the rate at which the HDI excludes zero under the null (false positives; nominal 5%), the power
under the effect, convergence failures and the fit times.

Two truths are scored.  The estimand is the *structural* effect of the scheme on the treated ICB's
gradient (``gradient_effect``: 0 under the null); the ICB x year gradient deviations of the treated
ICB are noise that the model integrates over, so coverage of the structural effect is the headline
(and the one consistent with the false-positive rate).  The *realised* contrast (structural effect
plus the realised ICB x year deviations, ``SimulationTruth.ddd``) is printed as well: an interval
that covers the structural effect but not the realised contrast is wide for the right reason.

Models (``--models``):

* ``old``: the row-level model (``error_model="rows"``, one residual SD) - the default before
  issue 10;
* ``new``: the package default (``error_model="prepost"``, ICB-specific residual scales);
* ``new_t``: the default with Student-t residuals.

Usage (CPU-heavy; ``--backend stan`` avoids recompiling for every panel)::

    python benchmarks/calibration_ddd.py --sims 40 --backend stan
    python benchmarks/calibration_ddd.py --sims 4 --preset small --models old new   # quick
"""

from __future__ import annotations

import argparse
import time
import warnings
from typing import Any

from scipy import stats

from hepcausal import schema as S
from hepcausal.causal.did import fit_ddd
from hepcausal.data.synthetic import SimulationConfig, scenario, simulate_panel
from hepcausal.diagnostics import ConvergenceWarning
from hepcausal.sampling import SamplerSettings
from hepcausal.spec import Design, Inference

MODELS: dict[str, dict[str, Any]] = {
    "old": {"error_model": "rows", "ics_scales": False, "family": "gaussian"},
    "new": {},  # the package default
    "new_t": {"family": "student_t"},
}


def _rate(k: int, n: int) -> str:
    if not n:
        return "0/0"
    lo, hi = stats.beta.ppf([0.025, 0.975], [k, k + 1], [n - k + 1, n - k])
    lo = 0.0 if k == 0 else lo
    hi = 1.0 if k == n else hi
    return f"{k}/{n} = {k / n:.2f} (95% CI {lo:.2f}-{hi:.2f})"


def config(preset: str, error: str, effect: float, seed: int) -> SimulationConfig:
    """The simulation config of one panel.

    Parameters
    ----------
    preset : {"published_design", "small"}
        Design preset.
    error : str
        Error scenario (:func:`hepcausal.data.synthetic.scenario`).
    effect : float
        True gradient effect in the treated ICB.
    seed : int
        Seed.

    Returns
    -------
    SimulationConfig
        The configuration.
    """
    if preset == "published_design":
        base = SimulationConfig.published_design(
            gradient_effect=effect, level_effect=0.0, seed=seed
        )
    else:
        base = SimulationConfig.small(gradient_effect=effect, level_effect=0.0, seed=seed)
    return scenario(error, base)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sims", type=int, default=40, help="panels per scenario")
    ap.add_argument("--effect", type=float, default=-0.1, help="true SII change (FTE per 1k)")
    ap.add_argument("--scenario", default="realistic")
    ap.add_argument("--preset", default="published_design", choices=["published_design", "small"])
    ap.add_argument("--models", nargs="+", default=["old", "new"], choices=list(MODELS))
    ap.add_argument("--backend", default="pymc", choices=["pymc", "stan"])
    ap.add_argument("--draws", type=int, default=SamplerSettings().draws)
    ap.add_argument("--tune", type=int, default=SamplerSettings().tune)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    t0 = time.perf_counter()
    counts = ("covered", "covered_realised", "excluded", "failed", "n", "time")
    tally = {
        (m, lab): dict.fromkeys(counts, 0.0) for m in args.models for lab in ("null", "effect")
    }
    for i in range(args.sims):
        for label, effect in (("null", 0.0), ("effect", args.effect)):
            seed = args.seed * 10_000 + i + (0 if label == "null" else 5_000)
            sp = simulate_panel(config(args.preset, args.scenario, effect, seed))
            comps = sorted(str(g) for g in sp.panel[S.ICB].unique() if g != S.LLR_ICB)
            realised = sp.truth.ddd(S.GP_FTE, comps)
            truth = effect  # the structural effect (see the module docstring)
            for m in args.models:
                t = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)  # counted below
                    fit = fit_ddd(
                        sp.panel,
                        S.GP_FTE,
                        Design(treated=S.LLR_ICB, comparators=tuple(comps)),
                        Inference(
                            backend=args.backend,
                            settings=SamplerSettings(draws=args.draws, tune=args.tune, seed=seed),
                        ),
                        **MODELS[m],
                    )
                dt = time.perf_counter() - t
                h = fit.effects["delta_gradient"]
                c = tally[(m, label)]
                c["n"] += 1
                c["covered"] += h.hdi_low <= truth <= h.hdi_high
                c["covered_realised"] += h.hdi_low <= realised <= h.hdi_high
                c["excluded"] += not (h.hdi_low <= 0 <= h.hdi_high)
                c["failed"] += not fit.diagnostics.ok
                c["time"] += dt
                print(
                    f"  {label} {i} {m}: truth {truth:+.3f} (realised {realised:+.3f}), "
                    f"DDD {h.mean:+.3f} "
                    f"[{h.hdi_low:+.3f}, {h.hdi_high:+.3f}] {dt:.0f} s "
                    f"{'ok' if fit.diagnostics.ok else 'NOT CONVERGED: ' + str(fit.diagnostics)}",
                    flush=True,
                )
    print(f"\nscenario {args.scenario!r}, preset {args.preset}, backend {args.backend}")
    for (m, label), c in tally.items():
        n = int(c["n"])
        print(
            f"{m:6s} {label:6s}: coverage {_rate(int(c['covered']), n)} (realised contrast "
            f"{_rate(int(c['covered_realised']), n)}); HDI excludes 0 "
            f"{_rate(int(c['excluded']), n)}; not converged {int(c['failed'])}; "
            f"mean fit {c['time'] / max(n, 1):.0f} s",
            flush=True,
        )
    for m in args.models:
        both = [tally[(m, lab)] for lab in ("null", "effect")]
        n = int(sum(c["n"] for c in both))
        cov = int(sum(c["covered"] for c in both))
        print(f"{m:6s} pooled: coverage {_rate(cov, n)} (target 0.93-0.97)", flush=True)
    print(f"wall time {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
