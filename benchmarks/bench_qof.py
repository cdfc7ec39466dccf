"""Benchmark: the QOF gradient model (binomial, beta-binomial), real data: explicit vs Laplace.

The national design of the registry's gradient entry with ``comparators = "all"``: every ICB,
the treated term for LLR (QK1) from 2022, QOF achievement (points / max points) with its default
family (beta-binomial) and the binomial family, at the package sampler defaults
(``SamplerSettings()``: nutpie, 4 chains x 2000 draws, 1000 tuning, target_accept 0.8).

Variants (``--variants``, in the order given, every family of a variant before the next):

* ``laplace``: the practice effects integrated out by the Laplace approximation
  (``marginalise="laplace"``, :mod:`hepcausal.models.laplace`): NUTS samples only the cell hierarchy
  and the hyperparameters.
* ``explicit``: explicit practice effects (the default ``marginalise=True``), hierarchically centred
  (``centring="auto"`` chooses ``u`` centred on these data), the beta-binomial log-pmf with the
  ``phi``-only terms per distinct denominator: the previous default and the exact model.
* ``before``: the default before that: non-centred practice effects and PyMC's
  ``BetaBinomial`` (six ``gammaln`` per row per gradient).

Every fit goes through the package's own nutpie path (:func:`hepcausal.models.backend.sample_model`
machinery with compile and sampling timed separately).  Prints, per family and variant: compile
and sampling wall time, leapfrog steps (= gradient evaluations) per draw and tree depth, ms per
gradient (sampling time x parallel chains / all leapfrog steps incl. tuning), min bulk / tail
ESS, max R-hat, divergences, and the posterior mean / SD of the LLR SII change against the other
ICBs (``sii_prob_treated_change``, probability scale) and of the national SII change; then the
explicit/laplace ratios and the difference of the posterior means in posterior SDs.  Usage::

    python benchmarks/bench_qof.py                        # binomial and beta_binomial
    python benchmarks/bench_qof.py --families binomial --variants laplace
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import time
from collections.abc import Iterator
from types import MappingProxyType
from typing import Any

from hepcausal import schema as S
from hepcausal.data.nhs import build_nhs_panel
from hepcausal.diagnostics import check_convergence
from hepcausal.models import backend, families
from hepcausal.models.gradient import SAMPLED, _national_effects, add_derived, model_spec
from hepcausal.models.gradient_data import GradientPriors, prepare_gradient_data, resolve_centring
from hepcausal.sampling import SamplerSettings

TREATED, START = S.LLR_ICB, 2022
VARIANTS = ("laplace", "explicit", "before")


def _legacy_beta_binomial(data: Any, eta: Any, params: Any) -> None:
    """The previous beta-binomial likelihood (PyMC's BetaBinomial; same density)."""
    import pymc as pm
    import pytensor.tensor as pt

    phi = 1.0 / pt.sqr(params["overdispersion"])
    p = pm.math.invlogit(eta)
    pm.BetaBinomial("y", alpha=p * phi, beta=(1 - p) * phi, n=data.trials, observed=data.successes)


@contextlib.contextmanager
def legacy_likelihood() -> Iterator[None]:
    """Temporarily swap the family table's beta-binomial likelihood for the previous one."""
    old = families.FAMILIES
    bb = dataclasses.replace(old["beta_binomial"], pymc_likelihood=_legacy_beta_binomial)
    families.FAMILIES = MappingProxyType({**old, "beta_binomial": bb})
    try:
        yield
    finally:
        families.FAMILIES = old


def run(panel: Any, family: str, variant: str, s: SamplerSettings) -> dict[str, Any]:
    """Fit one family/variant; return its row of timings, diagnostics and the headline."""
    data = prepare_gradient_data(panel, S.QOF, likelihood=family).with_treated_period(
        TREATED, START
    )
    centring = resolve_centring(data, {"u": False} if variant == "before" else "auto")
    laplace = variant == "laplace"
    if laplace:
        centring = {**centring, "u": False}  # no explicit practice effects to centre
    pr = GradientPriors()
    ctx = legacy_likelihood() if variant == "before" else contextlib.nullcontext()
    t0 = time.perf_counter()
    with ctx:
        spec = model_spec(data, pr, centring, marginalise="laplace" if laplace else True)
        # the package's nutpie path, with compile and sampling timed separately
        spec = dataclasses.replace(spec, cache_key=("bench_qof", family, variant))
        backend.clear_compiled_cache()
        idata = backend.sample_model(spec, "pymc", s)
    wall = time.perf_counter() - t0
    add_derived(idata, data)
    names = [v for v in (*SAMPLED, *data.family.extra_names) if v in idata.posterior]
    d = check_convergence(idata, [*names, "sii", "level"], warn=False)
    effects = _national_effects(idata, data, TREATED, START)
    st = idata.sample_stats
    steps = float(st["n_steps"].mean())
    all_steps = float(st["n_steps"].sum())
    if "warmup_sample_stats" in idata:
        all_steps += float(idata.warmup_sample_stats["n_steps"].sum())
    cores = s.cores or min(s.chains, os.cpu_count() or 1)
    sampling = float(idata.posterior.attrs["hepcausal_sampling_seconds"])
    change = next(k for k in effects if k.endswith("_treated_change"))
    national = next(k for k in effects if "_change_" in k)
    return {
        "family": family,
        "variant": variant,
        "centred": "".join(k for k, v in centring.items() if v),
        "params": sum(idata.posterior[v].size for v in [*names, "z_u"] if v in idata.posterior)
        // (s.chains * s.draws),
        "compile": float(idata.posterior.attrs["hepcausal_compile_seconds"]),
        "sampling": sampling,
        "wall": wall,
        "steps": steps,
        "depth": float(st["depth"].mean()),
        "ms_grad": 1e3 * sampling * min(cores, s.chains) / all_steps,
        "ess_bulk": d.min_ess_bulk,
        "ess_tail": d.min_ess_tail,
        "rhat": d.max_rhat,
        "div": d.n_divergences,
        "ok": d.ok,
        "worst": f"{d.worst_ess_var}/{d.worst_rhat_var}",
        "llr": (effects[change].mean, effects[change].sd),
        "nat": (effects[national].mean, effects[national].sd),
    }


HEADER = (
    f"{'family':14s} {'variant':8s} {'centred':7s} {'params':>6s} {'compile':>7s} "
    f"{'sampling':>8s} {'wall':>6s} {'steps':>6s} {'depth':>5s} {'ms/grad':>7s} "
    f"{'ESSbulk':>7s} {'ESStail':>7s} {'Rhat':>6s} {'div':>4s}  LLR SII change (mean, SD)"
    "  national change (mean, SD)"
)


def _line(r: dict[str, Any]) -> str:
    return (
        f"{r['family']:14s} {r['variant']:8s} {r['centred']:7s} {r['params']:6d} "
        f"{r['compile']:7.1f} {r['sampling']:8.1f} {r['wall']:6.1f} {r['steps']:6.1f} "
        f"{r['depth']:5.2f} {r['ms_grad']:7.2f} {r['ess_bulk']:7.0f} {r['ess_tail']:7.0f} "
        f"{r['rhat']:6.3f} {r['div']:4d}  {r['llr'][0]:+.5f} {r['llr'][1]:.5f}"
        f"  {r['nat'][0]:+.5f} {r['nat'][1]:.5f}  {'OK' if r['ok'] else 'FAILED'} "
        f"(worst {r['worst']})"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("HEPCAUSAL_NHS_DATA"))
    ap.add_argument("--families", nargs="+", default=["binomial", "beta_binomial"])
    ap.add_argument("--variants", nargs="+", default=["laplace", "explicit"], choices=VARIANTS)
    ap.add_argument("--chains", type=int, default=None, help="default: package")
    ap.add_argument("--draws", type=int, default=None, help="smoke tests only (default: package)")
    ap.add_argument("--tune", type=int, default=None, help="smoke tests only (default: package)")
    args = ap.parse_args()
    if not args.data:
        raise SystemExit("give --data or set HEPCAUSAL_NHS_DATA to the NHS data folder")
    panel = build_nhs_panel(args.data).panel
    s = SamplerSettings()
    s = s.with_(
        draws=args.draws or s.draws, tune=args.tune or s.tune, chains=args.chains or s.chains
    )
    print(f"sampler: {s.chains} chains x {s.draws} draws, {s.tune} tuning; load {os.getloadavg()}")
    rows = []
    print(HEADER)
    for variant in args.variants:  # every family of a variant first: partial output is useful
        for fam in args.families:
            rows.append(run(panel, fam, variant, s))
            print(_line(rows[-1]), f"load {os.getloadavg()[0]:.1f}", flush=True)
    print("\n" + HEADER)
    for r in rows:
        print(_line(r))
    by = {(r["family"], r["variant"]): r for r in rows}
    for fam in args.families:
        a, b = by.get((fam, "laplace")), by.get((fam, "explicit"))
        if a is None or b is None:
            continue
        dz = (a["llr"][0] - b["llr"][0]) / b["llr"][1]
        dn = (a["nat"][0] - b["nat"][0]) / b["nat"][1]
        print(
            f"{fam}: explicit/laplace wall {b['wall'] / a['wall']:.2f}x, sampling "
            f"{b['sampling'] / a['sampling']:.2f}x, ms/grad {b['ms_grad'] / a['ms_grad']:.2f}x, "
            f"steps/draw {b['steps'] / a['steps']:.2f}x, min bulk ESS/s (sampling) "
            f"{(a['ess_bulk'] / a['sampling']) / (b['ess_bulk'] / b['sampling']):.2f}x; "
            f"laplace - explicit: LLR change {dz:+.2f} SD, national change {dn:+.2f} SD, "
            f"posterior SD ratio LLR {a['llr'][1] / b['llr'][1]:.3f}"
        )


if __name__ == "__main__":
    main()
