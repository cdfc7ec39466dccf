"""Sampler settings shared by every backend, and PyMC sampling with the package defaults."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace
from typing import Literal

import arviz as az

PyMCSampler = Literal["nutpie", "pymc", "numpyro"]
MassMatrix = Literal["diag", "low_rank"]


DEFAULT_TARGET_ACCEPT = 0.9  # NUTS target acceptance rate of a model that does not ask for more


@dataclass(frozen=True)
class SamplerSettings:
    """MCMC settings; the same object drives the PyMC and the Stan backends.

    ``seed`` fixes every random stream: the same data, settings and seed give the same draws.
    The default 4 chains (as Stan and PyMC) gives R-hat its intended power; 2000 draws per chain
    (after 1000 tuning steps) is what the hierarchical scales of our models (ICS x year shock and
    interaction SDs) need to reach the bulk and tail ESS of 400 that
    :func:`hepcausal.diagnostics.check_convergence` asks for: at 1000 draws they fell just short in
    about half of the DDD fits on small panels and in the real-data GP gradient fit.

    ``mass_matrix`` (nutpie only): ``"diag"`` or ``"low_rank"`` (nutpie's low-rank modified
    mass matrix, which follows posterior correlations such as a treated-cell effect against that
    cell's shock); ``None`` lets each model choose (the causal panel and synthetic-control models
    use ``"low_rank"``, the gradient model ``"diag"``).

    Parameters
    ----------
    draws : int, default 2000
        Post-warm-up draws per chain (>= 1).
    tune : int, default 1000
        Warm-up (tuning) steps per chain (>= 0), discarded.
    chains : int, default 4
        Number of chains (>= 1).
    target_accept : float or None, default None
        Target acceptance rate of NUTS step-size adaptation, in [0.5, 1) (``adapt_delta`` in
        Stan); None lets each model choose (:data:`DEFAULT_TARGET_ACCEPT` = 0.9, or higher for a
        model whose geometry needs smaller steps: the pre/post panel model uses 0.95).
    seed : int, default 20211
        Seed of every random stream.
    sampler : {"nutpie", "pymc", "numpyro"}, default "nutpie"
        NUTS implementation of the PyMC backend.
    cores : int or None, default None
        Chains run in parallel on at most this many processes; None: one per chain, at most
        the number of CPUs.
    progressbar : bool, default False
        Show the sampler's progress bar.
    mass_matrix : {"diag", "low_rank"} or None, default None
        Mass-matrix adaptation (nutpie only); None lets each model choose.

    Raises
    ------
    ValueError
        When a setting is out of range, or ``mass_matrix="low_rank"`` without nutpie.
    """

    draws: int = 2000
    tune: int = 1000
    chains: int = 4
    target_accept: float | None = None
    seed: int = 20211
    sampler: PyMCSampler = "nutpie"
    cores: int | None = None
    progressbar: bool = False
    mass_matrix: MassMatrix | None = None

    def __post_init__(self) -> None:
        if self.draws < 1 or self.tune < 0 or self.chains < 1:
            raise ValueError(f"invalid sampler settings: {self}")
        if self.target_accept is not None and not 0.5 <= self.target_accept < 1:
            raise ValueError(f"target_accept must be in [0.5, 1), got {self.target_accept}")
        if self.sampler not in ("nutpie", "pymc", "numpyro"):
            raise ValueError(f"sampler must be 'nutpie', 'pymc' or 'numpyro', got {self.sampler!r}")
        if self.mass_matrix not in (None, "diag", "low_rank"):
            raise ValueError(f"mass_matrix must be 'diag' or 'low_rank', got {self.mass_matrix!r}")
        if self.mass_matrix == "low_rank" and self.sampler != "nutpie":
            raise ValueError("mass_matrix='low_rank' needs sampler='nutpie'")

    def accept(self, model_default: float | None = None) -> float:
        """The target acceptance rate to use: the setting, or the model's default when None.

        Parameters
        ----------
        model_default : float or None, default None
            The model's own choice (None: :data:`DEFAULT_TARGET_ACCEPT`).

        Returns
        -------
        float
            ``target_accept`` if set, else ``model_default``.
        """
        if self.target_accept is not None:
            return self.target_accept
        return DEFAULT_TARGET_ACCEPT if model_default is None else model_default

    def with_(self, **changes: object) -> SamplerSettings:
        """A copy with some fields changed."""
        return replace(self, **changes)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def fast_mode() -> bool:
    """True when HEPCAUSAL_FAST=1: slow tests and examples use reduced settings."""
    return os.environ.get("HEPCAUSAL_FAST", "0") not in ("", "0", "false", "False")


def sample_pymc(
    model: object,
    settings: SamplerSettings | None = None,
    *,
    mass_matrix: MassMatrix = "diag",
    target_accept: float | None = None,
) -> az.InferenceData:
    """Sample a PyMC model with NUTS (nutpie by default) and return InferenceData.

    Chains run in parallel on at most ``settings.cores`` threads or processes (default: the
    number of chains, at most the number of CPUs); with nutpie ``cores`` is passed as nutpie's
    own ``cores`` argument (``pm.sample`` alone does not forward it).  ``mass_matrix`` is the
    model's choice, used when ``settings.mass_matrix`` is None (nutpie only; the other
    samplers adapt a diagonal one).

    Parameters
    ----------
    model : pymc.Model
        The model to sample.
    settings : SamplerSettings or None, default None
        Draws, tuning, chains, seed, sampler and cores; None uses ``SamplerSettings()``.
    mass_matrix : {"diag", "low_rank"}, default "diag"
        The model's mass-matrix choice, overridden by ``settings.mass_matrix`` when set.
    target_accept : float or None, default None
        The model's target acceptance rate (None: :data:`DEFAULT_TARGET_ACCEPT`), overridden
        by ``settings.target_accept`` when set.

    Returns
    -------
    arviz.InferenceData
        Posterior and sample statistics (including ``diverging``).
    """
    import pymc as pm

    s = settings or SamplerSettings()
    cores = s.cores or min(s.chains, os.cpu_count() or 1)
    kwargs: dict[str, object] = {}
    if s.sampler == "pymc":
        kwargs["nuts_sampler"] = "pymc"
        kwargs["compile_kwargs"] = {"mode": "NUMBA"}
    else:
        kwargs["nuts_sampler"] = s.sampler
    used = (s.mass_matrix or mass_matrix) if s.sampler == "nutpie" else "diag"
    if s.sampler == "nutpie":
        # pm.sample does not forward ``cores`` to nutpie: pass it as nutpie's own argument, so
        # ``cores`` bounds the sampler's threads (a sweep with 2 workers on 2 cores runs 2 threads)
        nuts_kwargs: dict[str, object] = {"cores": cores}
        if used == "low_rank":
            nuts_kwargs["low_rank_modified_mass_matrix"] = True
        kwargs["nuts_sampler_kwargs"] = nuts_kwargs
    with model:  # type: ignore[attr-defined]
        idata = pm.sample(
            draws=s.draws,
            tune=s.tune,
            chains=s.chains,
            cores=cores,
            target_accept=s.accept(target_accept),
            random_seed=s.seed,
            progressbar=s.progressbar,
            **kwargs,
        )
    # provenance: what the sampler actually used (the settings may say None = model's choice)
    idata.posterior.attrs.update(
        {
            "mass_matrix": used,
            "target_accept": s.accept(target_accept),
            "cores": cores,
            "nuts_sampler": s.sampler,
        }
    )
    return idata


__all__ = ["DEFAULT_TARGET_ACCEPT", "SamplerSettings", "fast_mode", "sample_pymc"]
