"""Sweep timing of the gradient model: compile, sampling and save per run; compiled-model reuse.

One process fits a sequence of gradient models with the same structure (same ICBs, years,
priors, centring): GP, nurse and admin FTE and two placebo runs (another ICB as the treated one,
the treated x post term moved) on one synthetic panel.  The first run compiles; the later runs
re-use its compiled model with new data containers (:class:`hepcausal.models.backend.ModelSpec`
``cache_key``).  A row-level baseline (explicit practice effects, ``marginalise=False``) is fitted
once for GP FTE.  Prints per-run compile / sampling / save seconds, the first-vs-later and
row-level-vs-marginalised ratios and the sweep total, all from this run::

    python benchmarks/bench_sweep.py [--preset small|published] [--draws 2000] [--cores 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from hepcausal import schema as S
from hepcausal.data.synthetic import SimulationConfig, simulate_panel
from hepcausal.models.backend import clear_compiled_cache
from hepcausal.models.gradient import fit_gradient
from hepcausal.sampling import SamplerSettings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", choices=("small", "published"), default="published")
    ap.add_argument("--draws", type=int, default=SamplerSettings().draws)
    ap.add_argument("--cores", type=int, default=None)
    ap.add_argument("--no-row-level", action="store_true")
    args = ap.parse_args()
    preset = SimulationConfig.small if args.preset == "small" else SimulationConfig.published_design
    panel = simulate_panel(preset(seed=7)).panel
    icbs = sorted(panel[S.ICB].unique())
    placebo = [c for c in icbs if c != S.LLR_ICB][:2]
    settings = SamplerSettings(draws=args.draws, cores=args.cores)
    runs: list[tuple[str, dict[str, object]]] = [
        ("gp", {"outcome": S.GP_FTE, "treated": S.LLR_ICB}),
        ("nurse", {"outcome": S.NURSE_FTE, "treated": S.LLR_ICB}),
        ("admin", {"outcome": S.ADMIN_FTE, "treated": S.LLR_ICB}),
        *[(f"placebo {c}", {"outcome": S.GP_FTE, "treated": c}) for c in placebo],
    ]
    cen = {"a": True, "b": False, "d": False, "f": False}  # one structure for every run
    clear_compiled_cache()
    rows = []
    t_sweep = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, kw in runs:
            t0 = time.perf_counter()
            fit = fit_gradient(
                panel,
                str(kw["outcome"]),
                settings=settings,
                centring=cen,
                treated=str(kw["treated"]),
                start_year=S.HEP_START_YEAR,
            )
            t1 = time.perf_counter()
            fit.idata.to_netcdf(Path(tmp) / f"{len(rows)}.nc")
            t2 = time.perf_counter()
            a = fit.idata.posterior.attrs
            rows.append(
                (
                    name,
                    a["hepcausal_compile_seconds"],
                    a["hepcausal_sampling_seconds"],
                    t2 - t1,
                    t1 - t0,
                    a["hepcausal_compiled_model_reused"],
                    fit.diagnostics.ok,
                )
            )
            print(
                f"{name:14s} compile {rows[-1][1]:6.1f}s  sampling {rows[-1][2]:6.1f}s  "
                f"save {rows[-1][3]:5.2f}s  fit {rows[-1][4]:6.1f}s  reused={rows[-1][5]}  "
                f"converged={rows[-1][6]}",
                flush=True,
            )
    total = time.perf_counter() - t_sweep
    first, later = rows[0], rows[1:]
    later_compile = float(np.mean([r[1] for r in later]))
    print(
        f"\nsweep of {len(rows)} runs: {total:.1f}s; compile first {first[1]:.1f}s vs later mean "
        f"{later_compile:.2f}s (ratio {first[1] / max(later_compile, 1e-9):.0f}x); "
        f"fit first {first[4]:.1f}s vs later mean {np.mean([r[4] for r in later]):.1f}s"
    )
    if not args.no_row_level:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            row = fit_gradient(
                panel,
                S.GP_FTE,
                settings=settings,
                centring=cen,
                marginalise=False,
                treated=S.LLR_ICB,
                start_year=S.HEP_START_YEAR,
            )
            t_row = time.perf_counter() - t0
        print(
            f"row-level GP (explicit practice effects): fit {t_row:.1f}s "
            f"(sampling+compile; {row.diagnostics}); ratio row-level / marginalised first fit "
            f"{t_row / first[4]:.1f}x, / later fits {t_row / np.mean([r[4] for r in later]):.1f}x"
        )


if __name__ == "__main__":
    main()
