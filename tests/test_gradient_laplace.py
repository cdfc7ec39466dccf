"""The Laplace marginal of the count families' practice effects (:mod:`hepcausal.models.laplace`).

* against brute-force quadrature of the exact 1-D marginal of every practice, at realistic QOF
  denominators (hundreds of points per practice-year);
* its gradient (the implicit derivative of the mode, no differentiation through the Newton
  loop) against finite differences of its value;
* the posterior of the gradient model against the explicit practice-effects model (slow).
"""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.compile.mode import Mode
from scipy import stats

from hepcausal.models.families import get_family
from hepcausal.models.laplace import CountRows, laplace_loglik

# pure-Python evaluation: no C / numba compile for these small graphs
PY = Mode(linker="py", optimizer=None)
TAU, OD = 0.4, 0.12  # practice SD and 1/sqrt(phi) on the logit scale (QOF-like)


def _panel(seed: int = 0, p_n: int = 40, slots: int = 5) -> tuple[np.ndarray, CountRows]:
    """Counts of ``p_n`` practices with 3-5 rows each, denominators 300-700, p about 0.9."""
    rng = np.random.default_rng(seed)
    n = rng.integers(300, 700, size=(p_n, slots)).astype(float)
    n[rng.random((p_n, slots)) < 0.2] = 0.0  # padding slots
    n[:, 0] = np.maximum(n[:, 0], 300)
    eta0 = 2.2 + rng.normal(0, 0.3, size=(p_n, slots))
    u = rng.normal(0, TAU, size=p_n)
    p = 1 / (1 + np.exp(-(eta0 + u[:, None])))
    phi = 1 / OD**2
    y = rng.binomial(n.astype(int), rng.beta(p * phi, (1 - p) * phi)).astype(float)
    y[n == 0] = 0
    return eta0, CountRows.from_padded(y, n)


def _exact(family: str, eta0: np.ndarray, rows: CountRows, tau: float, od: float) -> np.ndarray:
    """log int prod_s p(y_s | eta0_s + u) N(u | 0, tau) du per practice, by brute force.

    The integrand is evaluated (scipy's log-pmfs) on a grid around its maximum that spans 12
    of its standard deviations, and integrated by the trapezoid rule (spectrally accurate for
    these smooth, rapidly decaying integrands; 4,001 points).
    """
    out = []
    for i in range(eta0.shape[0]):
        m = rows.trials[i] > 0
        y, n, e = rows.successes[i, m], rows.trials[i, m], eta0[i, m]

        def logf(u: np.ndarray, y=y, n=n, e=e) -> np.ndarray:
            p = 1 / (1 + np.exp(-(e[None, :] + u[:, None])))
            if family == "binomial":
                lp = stats.binom.logpmf(y, n, p)
            else:
                phi = 1 / od**2
                lp = stats.betabinom.logpmf(y, n, p * phi, (1 - p) * phi)
            return np.sum(lp, axis=1) + stats.norm.logpdf(u, 0, tau)

        coarse = np.linspace(-8 * tau, 8 * tau, 801)
        vc = logf(coarse)
        mode = coarse[np.argmax(vc)]
        sd = 1 / np.sqrt(-(vc[np.argmax(vc) + 1] - 2 * vc.max() + vc[np.argmax(vc) - 1]))
        sd *= coarse[1] - coarse[0]
        grid = np.linspace(mode - 12 * sd, mode + 12 * sd, 4001)
        v = logf(grid)
        out.append(v.max() + np.log(np.trapezoid(np.exp(v - v.max()), grid)))
    return np.array(out)


def _laplace_fn(family: str, rows: CountRows):
    e0, tau, od = pt.dmatrix("e0"), pt.dscalar("tau"), pt.dscalar("od")
    phi = None if family == "binomial" else 1 / pt.sqr(od)
    ll, _, g = laplace_loglik(family, e0, rows, tau, phi)
    total = pt.sum(ll)
    grads = (
        pytensor.grad(total, [e0, tau, od])
        if phi is not None
        else [
            *pytensor.grad(total, [e0, tau]),
            pt.constant(0.0),
        ]
    )
    return pytensor.function(
        [e0, tau, od], [ll, g, total, *grads], mode=PY, on_unused_input="ignore"
    )


@pytest.mark.parametrize("family", ["binomial", "beta_binomial"])
def test_laplace_matches_quadrature(family) -> None:
    eta0, rows = _panel()
    ll, g, *_ = _laplace_fn(family, rows)(eta0, TAU, OD)
    exact = _exact(family, eta0, rows, TAU, OD)
    err = np.abs(ll - exact)
    print(f"{family}: Laplace - quadrature per practice: max {err.max():.1e} mean {err.mean():.1e}")
    assert np.max(np.abs(g)) < 1e-6  # the Newton steps converged
    # the Laplace error is O(1 / information of u_i): binomial, hundreds of points per row: about
    # 1e-4; beta-binomial, where phi (70 here) caps the information per row: about 5e-3
    assert err.max() < (1e-3 if family == "binomial" else 1e-2)
    # the check can fail: dropping the curvature (log-determinant) term is far off
    assert np.max(np.abs(ll + 0.5 * np.log1p(TAU**2 * 100.0) - exact)) > 1e-2


@pytest.mark.parametrize("family", ["binomial", "beta_binomial"])
def test_laplace_gradient_matches_finite_differences(family) -> None:
    eta0, rows = _panel(seed=1, p_n=12)
    f = _laplace_fn(family, rows)
    _, _, _, g_eta, g_tau, g_od = f(eta0, TAU, OD)
    h = 1e-5
    fd_tau = (f(eta0, TAU + h, OD)[2] - f(eta0, TAU - h, OD)[2]) / (2 * h)
    np.testing.assert_allclose(g_tau, fd_tau, rtol=1e-5)
    if family == "beta_binomial":
        fd_od = (f(eta0, TAU, OD + h)[2] - f(eta0, TAU, OD - h)[2]) / (2 * h)
        np.testing.assert_allclose(g_od, fd_od, rtol=1e-5)
    rng = np.random.default_rng(2)
    d = rng.normal(size=eta0.shape) * (rows.trials > 0)
    fd = (f(eta0 + h * d, TAU, OD)[2] - f(eta0 - h * d, TAU, OD)[2]) / (2 * h)
    np.testing.assert_allclose(np.sum(g_eta * d), fd, rtol=1e-5)


def test_marginal_method_options() -> None:
    bb, gauss, st = get_family("beta_binomial"), get_family("gaussian"), get_family("student_t")
    assert bb.marginal_method(True) is None  # the default keeps the exact explicit model
    assert bb.marginal_method("laplace") == "laplace"
    assert gauss.marginal_method("laplace") == gauss.marginal_method(True) == "exact"
    assert st.marginal_method("laplace") is None
    assert bb.marginal_method(False) is None
    with pytest.raises(ValueError, match="marginalise"):
        bb.marginal_method("quadrature")


@pytest.mark.slow
@pytest.mark.parametrize("family", ["binomial"])
def test_laplace_posterior_matches_explicit(family) -> None:
    """Posterior of the treated SII change and the national change: Laplace vs explicit model.

    2 x 1000 draws each (bulk ESS of the contrasts ~1,000+): the Monte-Carlo SE of the difference
    of two posterior means is about 0.05 posterior SD, so 0.2 SD is a 4-SE bound; the posterior
    SDs agree within 10%.  (The beta-binomial graph takes minutes to compile in numba, so its
    posterior check is the real-data run of ``benchmarks/bench_qof.py``.)
    """
    from hepcausal import schema as S
    from hepcausal.data.synthetic import SimulationConfig, simulate_panel
    from hepcausal.models.gradient import fit_gradient
    from hepcausal.sampling import SamplerSettings

    cfg = SimulationConfig.small(n_practices=40, seed=4)
    panel = simulate_panel(cfg).panel
    icb = str(panel[S.ICB].iloc[0])
    start = int(sorted(panel[S.YEAR].unique())[2])
    s = SamplerSettings(draws=1000, tune=500, chains=2, seed=3)
    fits = {
        m: fit_gradient(
            panel,
            S.QOF,
            likelihood=family,
            settings=s,
            marginalise=m,
            treated=icb,
            start_year=start,
        )
        for m in ("laplace", True)
    }
    lap, exp_ = fits["laplace"], fits[True]
    assert lap.meta["practice_effects"] == "laplace" and exp_.meta["practice_effects"] == "explicit"
    assert "z_u" not in lap.idata.posterior and "z_u" in exp_.idata.posterior
    for term in ("sii_prob_treated_change", next(k for k in exp_.effects if "_change_" in k)):
        a, b = lap.effects[term], exp_.effects[term]
        print(f"{term}: laplace {a.mean:+.5f} ({a.sd:.5f}), explicit {b.mean:+.5f} ({b.sd:.5f})")
        assert abs(a.mean - b.mean) < 0.2 * b.sd, term
        assert abs(a.sd / b.sd - 1) < 0.1, term
