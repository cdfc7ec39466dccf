"""Real-data placebo DDDs beyond the design: every unfunded ICB outside it as if funded.

The in-design placebo (``[analysis] placebo = true``) refits each of the 10 published
comparators as if funded against the other 9: 10 z-scores, whose SD has a sampling SE of about
25%.  This benchmark adds the 31 ICBs that are neither LLR nor a published comparator: each is
treated as if funded from the config's start year and compared with the 10 published
comparators, with the package-default DDD of ``experiments/baseline.toml`` (real NHS files from
``$HEPCAUSAL_NHS_DATA``).  None of them was funded, so their HDIs should exclude 0 about 5% of
the time.

The 31 placebo effects share one comparator mean, so they are correlated: their spread around
their own mean omits the comparator mean's error.  If the intervals are calibrated, the SD of the
z-scores (mean / posterior SD) is about ``sqrt(C / (C + 1)) = 0.95`` for C = 10 comparators and
the root mean square of the z-scores about 1 (averaged over data sets); the mean z-score is the
comparators' own change relative to the rest of England, in posterior SDs.

    nice python benchmarks/placebo_national.py [--outcome gp|nurse|admin] [--config ...]
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np

from hepcausal import schema as S
from hepcausal.causal.did import fit_ddd
from hepcausal.diagnostics import ConvergenceWarning
from hepcausal.experiments.config import load_config
from hepcausal.experiments.inputs import prepare_data
from hepcausal.experiments.runner import design_of, inference_of

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "experiments" / "baseline.toml"))
    ap.add_argument("--outcome", default=None, help="analysis.outcome (default: the config's)")
    args = ap.parse_args()
    cfg = load_config(args.config)
    if args.outcome is not None:
        cfg = cfg.with_overrides({"analysis.outcome": args.outcome})
    t0 = time.perf_counter()
    data = prepare_data(cfg)
    design = design_of(cfg)
    inference = inference_of(cfg)
    panel = data.panel
    comps = tuple(str(c) for c in design.comparators)
    others = sorted(set(panel[S.ICB].dropna().astype(str)) - set(comps) - {design.treated})
    print(
        f"outcome {cfg.analysis.outcome}; {len(others)} pseudo-treated ICBs vs the "
        f"{len(comps)} comparators {list(comps)} ({design.treated} left out), from "
        f"{design.start_year}; sampler {inference.settings.chains} x {inference.settings.draws}"
    )
    z, excl, div, bad = [], 0, 0, 0
    for g in others:
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # counted below
            fit = fit_ddd(panel, cfg.analysis.outcome, design.with_(treated=g), inference)
        e, d = fit.headline, fit.diagnostics
        z.append(e.mean / e.sd)
        excl += int(e.hdi_low > 0 or e.hdi_high < 0)
        div += d.n_divergences
        bad += int(not d.ok)
        print(
            f"  {g}: {e.mean:+.4f} (SD {e.sd:.4f}) z {z[-1]:+.2f} HDI [{e.hdi_low:+.4f}, "
            f"{e.hdi_high:+.4f}] R-hat {d.max_rhat:.3f} ESS {d.min_ess_bulk:.0f}/"
            f"{d.min_ess_tail:.0f} div {d.n_divergences} {time.perf_counter() - t:.0f} s",
            flush=True,
        )
    zs = np.array(z)
    n = zs.size
    print(
        f"\n{n} placebo ICBs: z SD {zs.std(ddof=1):.3f} (calibrated ~"
        f"{np.sqrt(len(comps) / (len(comps) + 1)):.2f}), RMS {np.sqrt(np.mean(zs**2)):.3f} "
        f"(~1), mean {zs.mean():+.3f}; HDIs excluding 0: {excl} of {n} ({excl / n:.1%}; "
        f"nominal 5%); |z| > 1.96: {int((np.abs(zs) > 1.96).sum())}; not converged {bad}, "
        f"divergences {div}; {time.perf_counter() - t0:.0f} s"
    )


if __name__ == "__main__":
    main()
