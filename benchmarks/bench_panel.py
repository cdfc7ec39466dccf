"""Row-level panel-effects model: explicit practice intercepts vs integrated out (one run).

On the real published design (``experiments/baseline.toml``: LLR = QK1 + the 10 published
comparators, GP FTE, deprivation rank, start 2022; NHS files from ``$HEPCAUSAL_NHS_DATA``) fits
the DDD with the row-level error model (``error_model="rows"``, Gaussian residuals, ICB residual
scales) twice - explicit intercepts (``marginalise=False``) and marginalised
(:mod:`hepcausal.models.panel_marginal`) - and prints for each: parameters, microseconds per
log-density gradient (nutpie's compiled model, one thread), compile and sampling seconds, the
minimum bulk and tail ESS over the checked parameters, ESS per sampling second, the posterior
mean and SD of ``delta_gradient``, and the ratios.  Then the event study at the registry
defaults (explicit vs marginalised fit time) and the package-default DDD (``prepost``) fit
time.  ``--causalpy`` adds a DiD on a small generator panel, hepcausal vs CausalPy.

    nice -n 5 python benchmarks/bench_panel.py [--draws 2000] [--config experiments/baseline.toml]
"""

from __future__ import annotations

import argparse
import dataclasses
import time
import warnings
from pathlib import Path
from typing import Any

import arviz as az
import numpy as np

from hepcausal.causal.design import build_design
from hepcausal.causal.did import _ddd_effects, fit_ddd, fit_did
from hepcausal.causal.event_study import fit_event_study
from hepcausal.experiments.config import load_config
from hepcausal.experiments.inputs import prepare_data
from hepcausal.experiments.runner import design_of, inference_of
from hepcausal.models import backend
from hepcausal.models.panel_effects import (
    ModelOptions,
    PanelPriors,
    effect_draws,
    model_spec,
    present_check_vars,
)
from hepcausal.sampling import SamplerSettings

ROOT = Path(__file__).resolve().parents[1]


def _gradient_cost(model: Any, n_evals: int = 2000) -> tuple[int, float]:
    """Parameters and microseconds per log density + gradient (the NUMBA function nutpie uses,
    called from Python: includes ~3 us of call overhead), at the initial point."""
    import pytensor
    from pymc.pytensorf import join_nonshared_inputs

    ip = model.initial_point()
    outs, raveled = join_nonshared_inputs(ip, [model.logp(), model.dlogp()], model.value_vars)
    fn = pytensor.function([raveled], outs, mode="NUMBA")
    jit = fn.vm.jit_fn
    shared = [s.data for s in fn.input_storage[1:]]  # the model's shared variables (coords)
    x0 = np.concatenate([np.ravel(ip[v.name]) for v in model.value_vars])
    jit(x0, *shared)
    t0 = time.perf_counter()
    for _ in range(n_evals):
        jit(x0, *shared)
    return x0.size, (time.perf_counter() - t0) / n_evals * 1e6


def _fit_spec(design: Any, options: ModelOptions, settings: SamplerSettings) -> dict[str, Any]:
    """Compile (timed), benchmark the gradient, sample (timed); the numbers of one model."""
    spec = model_spec(design, PanelPriors(), options)
    label = f"bench-{options.marginalise}"
    spec = dataclasses.replace(spec, cache_key=label)  # nutpie path that records the timings
    backend.clear_compiled_cache()
    idata = backend.sample_model(spec, "pymc", settings)
    backend.clear_compiled_cache()
    n_dim, us = _gradient_cost(spec.build_pymc())
    a = idata.posterior.attrs
    names = present_check_vars(idata)
    bulk = min(float(az.ess(idata, var_names=[v], method="bulk")[v].min()) for v in names)
    tail = min(float(az.ess(idata, var_names=[v], method="tail")[v].min()) for v in names)
    div = int(idata.sample_stats["diverging"].sum())
    rhat = max(float(az.rhat(idata, var_names=[v])[v].max()) for v in names)
    dg = effect_draws(idata, design).sel(term="delta_gradient").values.ravel()
    return {
        "params": n_dim,
        "us_grad": us,
        "compile": float(a["hepcausal_compile_seconds"]),
        "sampling": float(a["hepcausal_sampling_seconds"]),
        "bulk": bulk,
        "tail": tail,
        "ess_s": min(bulk, tail) / float(a["hepcausal_sampling_seconds"]),
        "mean": float(dg.mean()),
        "sd": float(dg.std()),
        "rhat": rhat,
        "div": div,
    }


def _row(name: str, r: dict[str, Any]) -> str:
    return (
        f"{name:13s} {r['params']:6d} {r['us_grad']:9.1f} {r['compile']:8.1f} {r['sampling']:9.1f}"
        f" {r['bulk']:7.0f} {r['tail']:7.0f} {r['ess_s']:7.1f} {r['mean']:+9.4f} {r['sd']:7.4f}"
        f" {r['rhat']:6.3f} {r['div']:4d}"
    )


def _timed(fn: Any, *args: Any, **kw: Any) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t0


def _causalpy_did(draws: int) -> None:
    """DiD on a small generator panel: hepcausal (package default) vs CausalPy (same run)."""
    import causalpy as cp
    import pandas as pd

    from hepcausal import schema as S
    from hepcausal.data.synthetic import SimulationConfig, simulate_panel
    from hepcausal.spec import Design, Inference

    sp = simulate_panel(SimulationConfig.small(seed=3))
    panel = sp.panel
    icbs = sorted(str(c) for c in panel[S.ICB].unique() if c != S.LLR_ICB)
    design = Design(comparators=tuple(icbs))
    inf = Inference(settings=SamplerSettings(draws=draws))
    fit, t_h = _timed(fit_did, panel, S.GP_FTE, design, inf)
    h = fit.headline
    print(
        f"hepcausal DiD (default prepost):  {t_h:6.1f} s  delta {h.mean:+.4f} +- {h.sd:.4f}  "
        f"converged {fit.diagnostics.ok}  (truth {sp.truth.did(S.GP_FTE, icbs):+.4f})"
    )
    df = panel[[S.PRACTICE, S.ICB, S.YEAR, S.GP_FTE]].dropna().copy()
    df = pd.DataFrame(
        {
            "y": df[S.GP_FTE].to_numpy(float),
            "group": (df[S.ICB] == S.LLR_ICB).to_numpy(int),
            "t": df[S.YEAR].to_numpy(int),
            "post_treatment": (df[S.YEAR] >= S.HEP_START_YEAR).to_numpy(bool),
            "unit": df[S.PRACTICE].astype(str).to_numpy(),
        }
    )
    sample_kwargs = {"draws": draws, "tune": 1000, "chains": 4, "random_seed": 1}
    sample_kwargs["progressbar"] = False
    t0 = time.perf_counter()
    res = cp.DifferenceInDifferences(
        df,
        # group and year effects plus the DiD term (``group * post_treatment + C(t)`` is not
        # identified: post_treatment is a function of the year; measured R-hat 1.99)
        formula="y ~ 1 + group + C(t) + group:post_treatment",
        time_variable_name="t",
        group_variable_name="group",
        model=cp.pymc_models.LinearRegression(sample_kwargs=sample_kwargs),
    )
    t_c = time.perf_counter() - t0
    post = res.idata.posterior
    beta = post["beta"]
    name = next(c for c in beta.coords["coeffs"].values if "group" in c and "post" in c)
    d = beta.sel(coeffs=name).values.ravel()
    rhat = float(az.rhat(res.idata)["beta"].max())
    print(
        f"CausalPy DiD (group + time FE):   {t_c:6.1f} s  delta {d.mean():+.4f} +- {d.std():.4f}"
        f"  max R-hat {rhat:.3f}"
    )
    print(f"ratio CausalPy / hepcausal fit time: {t_c / t_h:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "experiments" / "baseline.toml"))
    ap.add_argument("--draws", type=int, default=None, help="default: the config's")
    ap.add_argument("--skip-event-study", action="store_true")
    ap.add_argument("--causalpy", action="store_true")
    args = ap.parse_args()
    cfg = load_config(args.config)
    t0 = time.perf_counter()
    data = prepare_data(cfg)
    panel, outcome = data.panel, cfg.analysis.outcome
    spec_design = design_of(cfg)
    inf = inference_of(cfg)
    settings = (
        inf.settings if args.draws is None else dataclasses.replace(inf.settings, draws=args.draws)
    )
    inf = dataclasses.replace(inf, settings=settings)
    design = build_design(panel, outcome, spec_design, effects=_ddd_effects)
    print(
        f"real published design: {design.n_obs:,} rows, {len(design.units):,} practices, "
        f"{len(design.groups)} ICBs, {len(design.times)} years ({time.perf_counter() - t0:.1f} s "
        f"to load); sampler {settings.chains} x {settings.draws} (+{settings.tune} tune)"
    )
    warnings.simplefilter("ignore")
    base = ModelOptions(gradient=True, error_model="rows", ics_scales=True, family="gaussian")
    res = {}
    for name, marg in (("explicit", False), ("marginalised", True)):
        res[name] = _fit_spec(design, dataclasses.replace(base, marginalise=marg), settings)
    print("\nDDD, error_model='rows', Gaussian, ICB residual scales (PyMC + nutpie, low-rank)")
    print(
        "model         params  us/grad  compile  sampling  ESSbulk ESStail  ESS/s"
        "  dG mean   dG sd   Rhat  div"
    )
    for name, r in res.items():
        print(_row(name, r))
    e, m = res["explicit"], res["marginalised"]
    print(
        f"ratios explicit/marginalised: params {e['params'] / m['params']:.1f}x, gradient "
        f"{e['us_grad'] / m['us_grad']:.1f}x, sampling {e['sampling'] / m['sampling']:.1f}x, "
        f"compile {e['compile'] / m['compile']:.2f}x, fit (compile + sampling) "
        f"{(e['compile'] + e['sampling']) / (m['compile'] + m['sampling']):.1f}x; ESS/s "
        f"marginalised/explicit {m['ess_s'] / e['ess_s']:.1f}x; delta_gradient mean difference "
        f"{abs(e['mean'] - m['mean']) / e['sd']:.3f} posterior SD"
    )
    if not args.skip_event_study:
        print("\nevent study (registry defaults: gradient target, rows, Gaussian)")
        times = {}
        for name, marg in (("explicit", False), ("marginalised", True)):
            fit, dt = _timed(fit_event_study, panel, outcome, spec_design, inf, marginalise=marg)
            times[name] = dt
            h = fit.effects["post_mean"]
            print(
                f"{name:13s} fit {dt:6.1f} s  post_mean {h.mean:+.4f} +- {h.sd:.4f}  "
                f"converged {fit.diagnostics.ok}"
            )
        print(
            "ratio explicit/marginalised fit time: "
            f"{times['explicit'] / times['marginalised']:.1f}x"
        )
    fit, dt = _timed(fit_ddd, panel, outcome, spec_design, inf)
    h = fit.headline
    print(
        f"\npackage-default DDD (prepost, ICB scales, Student-t): fit {dt:.1f} s (target < 30 s) "
        f"delta_gradient {h.mean:+.4f} +- {h.sd:.4f} converged {fit.diagnostics.ok}"
    )
    if args.causalpy:
        print("\nDiD on the small generator panel (SimulationConfig.small(seed=3)), same run")
        _causalpy_did(settings.draws)


if __name__ == "__main__":
    main()
