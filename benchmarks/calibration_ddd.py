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
* ``new_t``: the default with Student-t residuals;
* ``pool``: the default with the pool (``Design.pool = "all"``: the spread of the ICBs' changes
  also from every other ICB of the panel; needs ``--preset national``).

Presets (``--preset``): ``published_design`` (QK1 + the 10 comparators only), ``national`` (all
42 ICBs, ~6,300 practices as in the real national panel: the ``pool`` model's 31 other ICBs
inform the spread of the ICBs' changes; the comparison stays QK1 vs the 10 comparators) and
``small``.  ``--workers N`` fits the panels on N processes (one process per panel, all models).

Usage (CPU-heavy; ``--backend stan`` avoids recompiling for every panel)::

    python benchmarks/calibration_ddd.py --sims 40 --backend stan
    python benchmarks/calibration_ddd.py --sims 4 --preset small --models old new   # quick
"""

from __future__ import annotations

import argparse
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
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
# design changes of a model beyond its options (the default design has no pool)
DESIGNS: dict[str, dict[str, Any]] = {"pool": {"pool": "all"}}
MODELS["pool"] = {}  # the default model with every other ICB of the panel in the pool


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
    preset : {"published_design", "national", "small"}
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
    elif preset == "national":
        base = SimulationConfig(
            n_practices=6300, gradient_effect=effect, level_effect=0.0, seed=seed
        )
    else:
        base = SimulationConfig.small(gradient_effect=effect, level_effect=0.0, seed=seed)
    return scenario(error, base)


def fit_panel(job: tuple[Any, ...]) -> list[dict[str, Any]]:
    """Simulate one panel and fit every model on it.

    Parameters
    ----------
    job : tuple
        ``(i, label, effect, seed, args)``.

    Returns
    -------
    list of dict
        One record per model: label, model, truth, realised contrast, HDI, convergence, time.
    """
    i, label, effect, seed, args = job
    sp = simulate_panel(config(args.preset, args.scenario, effect, seed))
    if args.preset == "national":
        comps = [str(c) for c in S.PUBLISHED_COMPARATORS]
    else:
        comps = sorted(str(g) for g in sp.panel[S.ICB].unique() if g != S.LLR_ICB)
    realised = sp.truth.ddd(S.GP_FTE, comps)
    out = []
    for m in args.models:
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # counted below
            fit = fit_ddd(
                sp.panel,
                S.GP_FTE,
                Design(treated=S.LLR_ICB, comparators=tuple(comps), **DESIGNS.get(m, {})),
                Inference(
                    backend=args.backend,
                    settings=SamplerSettings(
                        draws=args.draws,
                        tune=args.tune,
                        chains=args.chains,
                        seed=seed,
                        cores=args.cores,
                    ),
                ),
                **MODELS[m],
            )
        h = fit.effects["delta_gradient"]
        rec = {
            "i": i,
            "label": label,
            "model": m,
            "truth": effect,  # the structural effect (see the module docstring)
            "realised": realised,
            "mean": h.mean,
            "sd": h.sd,
            "low": h.hdi_low,
            "high": h.hdi_high,
            "ok": fit.diagnostics.ok,
            "diag": str(fit.diagnostics),
            "time": time.perf_counter() - t,
        }
        print(
            f"  {label} {i} {m}: truth {effect:+.3f} (realised {realised:+.3f}), "
            f"DDD {h.mean:+.3f} [{h.hdi_low:+.3f}, {h.hdi_high:+.3f}] {rec['time']:.0f} s "
            f"{'ok' if rec['ok'] else 'NOT CONVERGED: ' + rec['diag']}",
            flush=True,
        )
        out.append(rec)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sims", type=int, default=40, help="panels per scenario")
    ap.add_argument("--effect", type=float, default=-0.1, help="true SII change (FTE per 1k)")
    ap.add_argument("--scenario", default="realistic")
    ap.add_argument(
        "--preset", default="published_design", choices=["published_design", "national", "small"]
    )
    ap.add_argument("--models", nargs="+", default=["old", "new"], choices=list(MODELS))
    ap.add_argument("--backend", default="pymc", choices=["pymc", "stan"])
    ap.add_argument("--draws", type=int, default=SamplerSettings().draws)
    ap.add_argument("--tune", type=int, default=SamplerSettings().tune)
    ap.add_argument("--chains", type=int, default=SamplerSettings().chains)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workers", type=int, default=1, help="panels fitted in parallel")
    args = ap.parse_args()
    # with several workers each sampler runs its chains on one core (never more threads than cores)
    args.cores = 1 if args.workers > 1 else None
    t0 = time.perf_counter()
    jobs = [
        (i, label, effect, args.seed * 10_000 + i + (0 if label == "null" else 5_000), args)
        for i in range(args.sims)
        for label, effect in (("null", 0.0), ("effect", args.effect))
    ]
    if args.workers > 1:
        with ProcessPoolExecutor(max_workers=args.workers) as ex:
            recs = [r for rs in ex.map(fit_panel, jobs) for r in rs]
    else:
        recs = [r for j in jobs for r in fit_panel(j)]
    print(
        f"\nscenario {args.scenario!r}, preset {args.preset}, backend {args.backend}, "
        f"{args.chains} chains x {args.draws} draws ({args.tune} tuning), {args.sims} panels "
        "per scenario"
    )
    summary(recs, args.models)
    print(f"wall time {time.perf_counter() - t0:.0f} s")


def summary(recs: list[dict[str, Any]], models: list[str]) -> None:
    """Print coverage, false-positive rate, power and z spread per model, side by side.

    Parameters
    ----------
    recs : list of dict
        The records of :func:`fit_panel`.
    models : list of str
        Model names in print order.
    """
    for m in models:
        for label in ("null", "effect"):
            rs = [r for r in recs if r["model"] == m and r["label"] == label]
            n = len(rs)
            cov = sum(r["low"] <= r["truth"] <= r["high"] for r in rs)
            cov_r = sum(r["low"] <= r["realised"] <= r["high"] for r in rs)
            exc = sum(not (r["low"] <= 0 <= r["high"]) for r in rs)
            failed = sum(not r["ok"] for r in rs)
            mean_t = sum(r["time"] for r in rs) / max(n, 1)
            print(
                f"{m:6s} {label:6s}: coverage {_rate(cov, n)} (realised contrast "
                f"{_rate(cov_r, n)}); HDI excludes 0 {_rate(exc, n)}; not converged {failed}; "
                f"mean fit {mean_t:.0f} s",
                flush=True,
            )
    for m in models:
        rs = [r for r in recs if r["model"] == m]
        n = len(rs)
        cov = sum(r["low"] <= r["truth"] <= r["high"] for r in rs)
        err = np.array([r["mean"] - r["truth"] for r in rs])
        sd = np.array([r["sd"] for r in rs])
        z = err / sd
        print(
            f"{m:6s} pooled: coverage {_rate(cov, n)} (target 0.93-0.97); error RMSE "
            f"{np.sqrt(np.mean(err**2)):.4f} vs mean posterior SD {sd.mean():.4f}; "
            f"z SD {z.std(ddof=1) if n > 1 else float('nan'):.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
