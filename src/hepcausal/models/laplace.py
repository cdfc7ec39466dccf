"""Laplace approximation of the practice effects of the count families (binomial, beta-binomial).

Practice ``i`` has the random intercept ``u_i ~ N(0, tau)`` on the log-odds of its rows,
``eta_is = eta0_is + u_i`` (``eta0``: the pooled log-odds plus the cell level and SII terms).
Each ``u_i`` enters only its own rows, so the marginal likelihood is a product of 1-D integrals

    L_i = int prod_s p(y_is | eta0_is + u) N(u | 0, tau) du

and the Laplace approximation at the mode ``u_i*`` of the integrand is

    log L_i ~ f_i(u*) - u*^2 / (2 tau^2) - log tau - 0.5 log(-H_i),
    f_i(u) = sum_s log p(y_is | eta0_is + u),   -H_i = -f_i''(u*) + 1 / tau^2

(equivalently ``- 0.5 log(1 + tau^2 (-f_i''))`` for the last three terms).  The modes of all
practices are found at once by a fixed number of vectorised Newton steps (``n_newton``) from the
closed-form Gaussian guess on the empirical logits; the first and second derivatives of the
log-pmf in ``eta`` are written out (binomial: ``y - n p`` and ``-n p (1 - p)``; beta-binomial
with ``a = p phi``, ``b = phi - a``: ``phi w D`` and ``phi w (1 - 2p) D + phi^2 w^2 T`` with
``w = p (1 - p)``, ``D = psi(y + a) - psi(a) - psi(n - y + b) + psi(b)``,
``T = psi1(y + a) - psi1(a) + psi1(n - y + b) - psi1(b)``).

Gradients: the Newton iterates before the last are constants for autodiff and the last step
divides by a constant Hessian, so the mode's derivative in the parameters is the implicit one
(``du*/dtheta = f_i'_theta / -H_i`` at the mode, exact once the iterates have converged) without
differentiating through the iterations; the log-determinant is differentiated in full, with
the trigamma written as a shifted asymptotic series (:func:`trigamma`) so that its derivative
uses elementwise arithmetic (PyTensor's ``polygamma`` has no compiled numba kernel).

The approximation error is measured against 1-D quadrature of the exact marginal
(``tests/test_gradient_laplace.py``) and the posterior against the explicit practice-effects
model (same file; ``benchmarks/bench_qof.py`` on the real QOF data); see
``docs/ERROR_MODEL.md``.  ``models/gradient_explicit.stan`` computes the same marginal
(``laplace = 1``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.gradient import disconnected_grad

N_NEWTON = 6
"""Newton steps of the Laplace mode search (default; the last one carries the gradient).

Measured on the real QOF data (43k practice-years, 6,000 practices) at plausible parameter
points (tau 0.05-1, 1/sqrt(phi) 0.05-0.5): after 6 steps the largest |d log integrand / du| over
all practices is below 1e-4 (beta-binomial; 5e-13 binomial), after 5 steps up to 5e-2 (a
practice with one outlying year among near-perfect ones)."""

MAX_STEP = 3.0
"""Largest Newton step on the log-odds scale (guards the first steps far from the mode)."""

_SHIFT = 6
"""Recurrence shift of the asymptotic series of :func:`trigamma`."""


@dataclass(frozen=True)
class CountRows:
    """The rows of the count families as a (practice, slot) matrix (padding: zero counts).

    Padding slots have ``trials = successes = 0``; they contribute exactly zero to every
    log-pmf and derivative below.
    """

    successes: np.ndarray  # (P, S) float
    trials: np.ndarray  # (P, S) float
    log_binom: np.ndarray  # (P, S) log binomial coefficient (0 in padding)
    elogit: np.ndarray  # (P, S) empirical logits log((y + 0.5) / (n - y + 0.5))
    ew: np.ndarray  # (P, S) their binomial weights n p (1 - p) at the empirical proportion

    @classmethod
    def from_padded(cls, successes: np.ndarray, trials: np.ndarray) -> CountRows:
        """Counts of the padded (practice, slot) layout.

        Parameters
        ----------
        successes, trials : numpy.ndarray
            (P, S) integer counts, zero in padding slots.

        Returns
        -------
        CountRows
            Counts with the constants of the log-pmf and of the Gaussian starting guess.
        """
        from scipy.special import gammaln

        y = np.asarray(successes, dtype=float)
        n = np.asarray(trials, dtype=float)
        elogit = np.log((y + 0.5) / (n - y + 0.5))
        ph = (y + 0.5) / (n + 1.0)
        ew = np.where(n > 0, n * ph * (1 - ph), 0.0)
        lb = gammaln(n + 1.0) - gammaln(y + 1.0) - gammaln(n - y + 1.0)
        return cls(y, n, lb, elogit, ew)


def digamma(x: Any) -> Any:
    """Digamma ``psi(x)`` for ``x > 0`` in elementwise arithmetic (differentiable to any order).

    ``psi(x) = psi(x + 6) - sum_{j<6} 1 / (x + j)`` with the asymptotic series of ``psi(z)`` at
    ``z = x + 6 >= 6`` to ``z^-10`` (truncation error below 1e-10).

    Parameters
    ----------
    x : tensor
        Positive arguments.

    Returns
    -------
    tensor
        ``psi(x)``.
    """
    head = sum(1.0 / (x + j) for j in range(_SHIFT))
    z = x + _SHIFT
    r2 = 1.0 / pt.sqr(z)
    series = (
        pt.log(z)
        - 0.5 / z
        - r2 * (1 / 12 - r2 * (1 / 120 - r2 * (1 / 252 - r2 * (1 / 240 - r2 * 1 / 132))))
    )
    return series - head


def trigamma(x: Any) -> Any:
    """Trigamma ``psi1(x)`` for ``x > 0`` in elementwise arithmetic (differentiable to any order).

    ``psi1(x) = sum_{j<6} 1 / (x + j)^2 + psi1(x + 6)`` with the asymptotic series of
    ``psi1(z)`` at ``z = x + 6 >= 6`` to ``z^-11`` (truncation error below 1e-10).

    Parameters
    ----------
    x : tensor
        Positive arguments.

    Returns
    -------
    tensor
        ``psi1(x)``.
    """
    head = sum(1.0 / pt.sqr(x + j) for j in range(_SHIFT))
    z = x + _SHIFT
    r = 1.0 / z
    r2 = r * r
    series = r * (
        1.0
        + r * (0.5 + r * (1 / 6 + r2 * (-1 / 30 + r2 * (1 / 42 + r2 * (-1 / 30 + r2 * 5 / 66)))))
    )
    return head + series


def _derivs(
    family: str, eta: Any, rows: CountRows, phi: Any, *, compiled_psi: bool
) -> tuple[Any, Any]:
    """First and second derivatives of every row's log-pmf in its log-odds ``eta``.

    ``compiled_psi``: PyTensor's ``psi`` (steps that carry no gradient; its derivative has no
    compiled numba kernel) instead of the series :func:`digamma`.
    """
    y, n = rows.successes, rows.trials
    p = pt.sigmoid(eta)
    w = p * (1.0 - p)
    if family == "binomial":
        return y - n * p, -n * w
    a = p * phi
    b = phi - a
    psi = digamma
    d = psi(y + a) - psi(a) - psi(n - y + b) + psi(b)
    t = trigamma(y + a) - trigamma(a) + trigamma(n - y + b) - trigamma(b)
    return phi * w * d, phi * w * (1.0 - 2.0 * p) * d + pt.sqr(phi * w) * t


def count_logpmf(family: str, eta: Any, rows: CountRows, phi: Any) -> Any:
    """Log-pmf of every row (binomial or beta-binomial with mean ``expit(eta)``, precision phi).

    Parameters
    ----------
    family : {"binomial", "beta_binomial"}
        Count family.
    eta : tensor
        (P, S) log-odds.
    rows : CountRows
        Counts.
    phi : tensor or None
        Beta-binomial precision (unused for the binomial).

    Returns
    -------
    tensor
        (P, S) log-pmf values (0 in padding slots).
    """
    y, n = rows.successes, rows.trials
    if family == "binomial":
        return rows.log_binom + y * eta - n * pt.softplus(eta)
    a = pt.sigmoid(eta) * phi
    b = phi - a
    return (
        rows.log_binom
        + pt.gammaln(y + a)
        - pt.gammaln(a)
        + pt.gammaln(n - y + b)
        - pt.gammaln(b)
        - pt.gammaln(n + phi)
        + pt.gammaln(phi)
    )


def laplace_loglik(
    family: str,
    eta0: Any,
    rows: CountRows,
    tau: Any,
    phi: Any = None,
    n_newton: int = N_NEWTON,
) -> tuple[Any, Any, Any]:
    """Laplace-approximate log marginal likelihood of every practice (see the module docstring).

    Parameters
    ----------
    family : {"binomial", "beta_binomial"}
        Count family.
    eta0 : tensor
        (P, S) log-odds without the practice effect.
    rows : CountRows
        Counts in the same (practice, slot) layout.
    tau : tensor
        Practice-effect SD.
    phi : tensor or None
        Beta-binomial precision.
    n_newton : int
        Newton steps (>= 1; the last carries the gradient).

    Returns
    -------
    (tensor, tensor, tensor)
        (P,) log marginal likelihoods, (P,) modes ``u*`` and (P,) the gradient of the log
        integrand at ``u*`` (convergence check: ~0).
    """
    if family not in ("binomial", "beta_binomial"):
        raise ValueError(f"the Laplace marginal is for binomial / beta_binomial, not {family!r}")
    if n_newton < 1:
        raise ValueError(f"n_newton must be >= 1, got {n_newton}")
    prec = 1.0 / pt.sqr(tau)
    # Gaussian guess: weighted least squares of the empirical logits on u, with the prior; the
    # weights are the inverse variances of the empirical logits (beta-binomial: the binomial
    # variance inflated by 1 + (n - 1) / (phi + 1))
    ew = pt.as_tensor_variable(rows.ew)
    if family == "beta_binomial":
        ew = ew / (1.0 + (rows.trials - 1.0) / (phi + 1.0))
    u = pt.sum(ew * (rows.elogit - eta0), axis=1) / (pt.sum(ew, axis=1) + prec)

    def score(u: Any, eta0: Any, prec: Any, phi: Any, compiled_psi: bool) -> tuple[Any, Any]:
        g, h = _derivs(family, eta0 + u[:, None], rows, phi, compiled_psi=compiled_psi)
        return pt.sum(g, axis=1) - u * prec, pt.maximum(-pt.sum(h, axis=1), 0.0) + prec

    def newton(u: Any, eta0: Any, prec: Any, *phi: Any) -> tuple[Any, Any]:
        grad, neg_h = score(u, eta0, prec, phi[0] if phi else None, compiled_psi=True)
        return u + pt.clip(grad / neg_h, -MAX_STEP, MAX_STEP), neg_h

    # the mode search is a loop (one compiled step, whatever n_newton) on inputs cut from the
    # gradient (no derivative of the loop is built); the last step is repeated outside it with
    # the Hessian held constant, so that the mode's derivative in the parameters is the
    # implicit one
    const = [disconnected_grad(v) for v in (u, eta0, prec, *([] if phi is None else [phi]))]
    (us, neg_hs), _ = pytensor.scan(
        newton,
        outputs_info=[const[0], None],
        non_sequences=const[1:],
        n_steps=n_newton,
        strict=True,
    )
    u_prev = us[-2] if n_newton > 1 else const[0]
    grad, _ = score(u_prev, eta0, prec, phi, compiled_psi=False)
    u = u_prev + pt.clip(grad / neg_hs[-1], -MAX_STEP, MAX_STEP)
    eta = eta0 + u[:, None]
    g, h = _derivs(family, eta, rows, phi, compiled_psi=False)
    lik_curv = pt.maximum(-pt.sum(h, axis=1), 0.0)
    ll = (
        pt.sum(count_logpmf(family, eta, rows, phi), axis=1)
        - 0.5 * pt.sqr(u) * prec
        - 0.5 * pt.log1p(pt.sqr(tau) * lik_curv)
    )
    return ll, u, pt.sum(g, axis=1) - u * prec
