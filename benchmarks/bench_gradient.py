"""Benchmark: naive vs fast hierarchical gradient model on a synthetic national panel.

* naive: the ridge formulation (free ICB, year and global intercepts, no sum-to-zero, centred
  ICB x year and practice effects, full likelihood over every practice-year row), sampled with
  ``pm.sample`` defaults (PyMC NUTS, default PyTensor mode).
* fast: :func:`hepcausal.models.gradient_pymc.build_pymc_model` (sum-to-zero, data-chosen
  centring, practice effects integrated out, sufficient statistics), sampled with nutpie with the
  4 chains x 1000 + 1000 (twice the naive model's draws, timed in full).
* stan (``--stan``): the same fast model in ``models/gradient_gaussian.stan``.

Prints compile and sampling wall time, min bulk ESS, ESS/s, max R-hat, divergences and the
speed ratios (naive / fast) measured in this run.  Usage::

    python benchmarks/bench_gradient.py                       # 5,400 practices, 42 ICBs, 7 years
    python benchmarks/bench_gradient.py --practices 1200 --draws 500 --tune 500 --skip-naive
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from hepcausal import schema as S
from hepcausal.data.synthetic import SimulationConfig, simulate_panel
from hepcausal.diagnostics import check_convergence
from hepcausal.models.gradient import SAMPLED, add_derived, gradient_stan_data
from hepcausal.models.gradient_data import (
    GradientData,
    GradientPriors,
    choose_centring,
    prepare_gradient_data,
)
from hepcausal.sampling import SamplerSettings


def naive_model(data: GradientData):
    """The ridge formulation (as first written): redundant intercepts, centred effects."""
    import pymc as pm

    g, t = data.n_icb, data.n_year
    coords = {"icb": data.icbs, "year": data.years, "practice": data.practices}
    with pm.Model(coords=coords) as model:
        mu = pm.Normal("mu", data.loc, 2.5 * data.scale)
        b0 = pm.Normal("b0", 0.0, 2.5 * data.scale)
        a = pm.Normal("a", 0.0, pm.HalfNormal("sigma_icb", data.scale), dims="icb")
        b = pm.Normal("b", 0.0, pm.HalfNormal("sigma_icb_slope", data.scale), dims="icb")
        c = pm.Normal("c", 0.0, data.scale, dims="year")
        e = pm.Normal("e", 0.0, data.scale, dims="year")
        d = pm.Normal("d", 0.0, pm.HalfNormal("sigma_int", 0.5 * data.scale), dims=("icb", "year"))
        f = pm.Normal(
            "f", 0.0, pm.HalfNormal("sigma_int_slope", 0.5 * data.scale), dims=("icb", "year")
        )
        u = pm.Normal("u", 0.0, pm.HalfNormal("tau", data.scale), dims="practice")
        alpha = mu + a[:, None] + c[None, :] + d
        beta = b0 + b[:, None] + e[None, :] + f
        pm.Deterministic("sii", beta, dims=("icb", "year"))
        m = (
            alpha.reshape((g * t,))[data.cell_idx]
            + beta.reshape((g * t,))[data.cell_idx] * data.rc
            + u[data.practice_idx]
        )
        pm.Normal("y", m, pm.HalfNormal("sigma", data.scale), observed=data.y)
    return model


def run_naive(data: GradientData, s: SamplerSettings) -> dict:
    import pymc as pm

    model = naive_model(data)
    t0 = time.perf_counter()
    model.logp_dlogp_function()  # C compile (cached for pm.sample below)
    t_compile = time.perf_counter() - t0
    t0 = time.perf_counter()
    with model:
        idata = pm.sample(
            draws=s.draws,
            tune=s.tune,
            chains=s.chains,
            cores=s.chains,
            random_seed=s.seed,
            progressbar=False,
            nuts_sampler="pymc",
        )
    t_sample = time.perf_counter() - t0
    names = [v.name for v in model.free_RVs] + ["sii"]
    return _row("naive (ridge, pm.sample)", idata, names, t_compile, t_sample)


def run_fast(data: GradientData, s: SamplerSettings) -> dict:
    import nutpie

    from hepcausal.models.gradient_pymc import build_pymc_model

    t0 = time.perf_counter()
    cen = choose_centring(data)
    model = build_pymc_model(data, GradientPriors(), centring=cen)
    compiled = nutpie.compile_pymc_model(model)
    t_compile = time.perf_counter() - t0
    t0 = time.perf_counter()
    cores = min(s.chains, os.cpu_count() or 1)
    idata = nutpie.sample(
        compiled,
        draws=s.draws,
        tune=s.tune,
        chains=s.chains,
        cores=cores,
        seed=s.seed,
        target_accept=s.target_accept,
        progress_bar=False,
    )
    t_sample = time.perf_counter() - t0
    add_derived(idata, data)
    names = [v for v in (*SAMPLED, "sigma") if v in idata.posterior] + ["sii", "level"]
    row = _row(
        f"fast (marginalised, nutpie; centred {[k for k, v in cen.items() if v]})",
        idata,
        names,
        t_compile,
        t_sample,
    )
    return row


def run_stan(data: GradientData, s: SamplerSettings) -> dict:
    from hepcausal.models.gradient import _STAN_DIMS, _stan_coords
    from hepcausal.models.stan_engine import sample_stan

    cen = choose_centring(data)
    program, stan_data = gradient_stan_data(data, GradientPriors(), cen)
    t0 = time.perf_counter()
    sample_stan(program, stan_data, s.with_(draws=5, tune=5))  # compile (or load from cache)
    t_compile = time.perf_counter() - t0
    t0 = time.perf_counter()
    idata = sample_stan(program, stan_data, s, coords=_stan_coords(data), dims=_STAN_DIMS)
    t_sample = time.perf_counter() - t0
    names = [v for v in (*SAMPLED, "sigma") if v in idata.posterior] + ["sii", "level"]
    return _row("fast (Stan gradient_gaussian)", idata, names, t_compile, t_sample)


def _row(name, idata, names, t_compile, t_sample) -> dict:
    d = check_convergence(idata, names, warn=False)
    total = t_sample + (0.0 if np.isnan(t_compile) else t_compile)
    return {
        "name": name,
        "compile": t_compile,
        "sample": t_sample,
        "total": total,
        "ess": d.min_ess_bulk,
        "ess_var": d.worst_ess_var,
        "rhat": d.max_rhat,
        "rhat_var": d.worst_rhat_var,
        "div": d.n_divergences,
        "ok": d.ok,
        "idata": idata,
    }


def _print_row(r: dict) -> None:
    print(
        f"[done] {r['name']}: compile {r['compile']:.1f} s, sampling {r['sample']:.1f} s, "
        f"min bulk ESS {r['ess']:.0f}, max R-hat {r['rhat']:.3f}",
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--practices", type=int, default=5400)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--fast-draws", type=int, default=None, help="draws for the fast model")
    ap.add_argument(
        "--fast-chains",
        type=int,
        default=SamplerSettings().chains,
        help="chains for the fast model (default: the package default, 4)",
    )
    ap.add_argument("--seed", type=int, default=20211)
    ap.add_argument("--skip-naive", action="store_true")
    ap.add_argument("--stan", action="store_true", help="also time the Stan program")
    args = ap.parse_args()

    sp = simulate_panel(SimulationConfig(n_practices=args.practices, seed=args.seed))
    data = prepare_gradient_data(sp.panel, S.GP_FTE)
    print(
        f"panel: {data.n_obs} practice-years, {data.n_practice} practices, {data.n_icb} ICBs, "
        f"{data.n_year} years; outcome {S.GP_FTE}"
    )
    s = SamplerSettings(draws=args.draws, tune=args.tune, chains=args.chains, seed=args.seed)
    fast_s = s.with_(draws=args.fast_draws or args.draws, chains=args.fast_chains)
    rows = [run_fast(data, fast_s)]
    _print_row(rows[-1])
    if args.stan:
        rows.append(run_stan(data, fast_s))
        _print_row(rows[-1])
    if not args.skip_naive:
        rows.append(run_naive(data, s))
    print(
        f"\n{'model':58s} {'compile':>8s} {'sample':>8s} {'total':>8s} {'minESS':>7s} "
        f"{'ESS/s':>7s} {'ESS/s*':>7s} {'maxRhat':>8s} {'div':>4s}"
    )
    for r in rows:
        print(
            f"{r['name'][:58]:58s} {r['compile']:8.1f} {r['sample']:8.1f} {r['total']:8.1f} "
            f"{r['ess']:7.0f} {r['ess'] / r['sample']:7.1f} {r['ess'] / r['total']:7.1f} "
            f"{r['rhat']:8.3f} {r['div']:4d}  worst ESS: {r['ess_var']}, R-hat: {r['rhat_var']}"
            f" {'OK' if r['ok'] else 'FAILED'}"
        )
    print("(ESS/s = per sampling second; ESS/s* = per total second incl. compile)")
    truth = sp.truth.sii.query(f"outcome == '{S.GP_FTE}'").set_index([S.ICB, S.YEAR])["sii"]
    for r in rows:
        post = r["idata"].posterior["sii"]
        mean = post.mean(("chain", "draw")).to_series()
        lo, hi = post.quantile(0.05, ("chain", "draw")), post.quantile(0.95, ("chain", "draw"))
        inside = (
            (lo.to_series() <= truth.loc[mean.index]) & (truth.loc[mean.index] <= hi.to_series())
        ).mean()
        print(
            f"{r['name'][:40]:40s} 90% interval coverage of true SII over {len(mean)} cells: "
            f"{inside:.2f}"
        )
    if not args.skip_naive:
        naive, fast = rows[-1], rows[0]
        ess_tot = (fast["ess"] / fast["total"]) / (naive["ess"] / naive["total"])
        ess_smp = (fast["ess"] / fast["sample"]) / (naive["ess"] / naive["sample"])
        print(
            f"\nspeed ratio naive/fast: total wall {naive['total'] / fast['total']:.1f}x, "
            f"sampling {naive['sample'] / fast['sample']:.1f}x, "
            f"ESS/s (total) {ess_tot:.1f}x, ESS/s (sampling) {ess_smp:.1f}x"
        )


if __name__ == "__main__":
    main()
