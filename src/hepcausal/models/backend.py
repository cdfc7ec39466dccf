"""The one PyMC / Stan dispatch used by every model of :mod:`hepcausal.models`.

A model describes itself to the backends with a :class:`ModelSpec` (a PyMC model builder and,
when it has one, a Stan program with its data, coordinates and dimensions);
:func:`sample_model` samples it with the requested backend and returns ``InferenceData`` whose
posterior looks the same for both backends (:func:`tidy_stan`).  The samplers themselves are
:func:`hepcausal.sampling.sample_pymc` (nutpie by default) and
:func:`hepcausal.models.stan_engine.sample_stan` (cmdstanpy or pystan).

Which models have which backends:

* gradient model (:mod:`hepcausal.models.gradient`): PyMC and Stan (``models/gradient_*.stan``);
* panel-effects model (:mod:`hepcausal.models.panel_effects`): PyMC and Stan
  (``models/panel_effects.stan``);
* synthetic control (:mod:`hepcausal.models.synthetic_control`): PyMC only (no Stan program;
  asking for Stan is a ``ValueError`` saying so).

Both backends share the sum-to-zero basis :func:`zero_sum_basis`, passed to Stan as data, so
the two implementations use the same parameterisation (and the same unconstrained parameters).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import arviz as az
import numpy as np
import xarray as xr

from hepcausal.sampling import DEFAULT_TARGET_ACCEPT, MassMatrix, SamplerSettings

Backend = Literal["pymc", "stan"]
BACKENDS: tuple[str, ...] = get_args(Backend)

__all__ = [
    "BACKENDS",
    "Backend",
    "ModelSpec",
    "check_backend",
    "clear_compiled_cache",
    "sample_model",
    "tidy_stan",
    "zero_sum_basis",
]


def zero_sum_basis(n: int) -> np.ndarray:
    """Orthonormal (Helmert) basis ``(n, n - 1)`` of the vectors of R^n that sum to zero.

    ``B @ z`` with ``z ~ N(0, s I)`` has PyMC's ``ZeroSumNormal(sigma=s)`` distribution; passing
    ``B`` to Stan as data lets the Stan programs use exactly the same parameterisation.

    Parameters
    ----------
    n : int
        Length of the vectors (number of levels).

    Returns
    -------
    numpy.ndarray
        ``(n, n - 1)`` matrix with orthonormal columns that each sum to zero (``(n, 0)`` when
        ``n < 2``).
    """
    if n < 2:
        return np.zeros((n, 0))
    H = np.zeros((n, n - 1))
    for k in range(1, n):
        H[:k, k - 1] = 1.0
        H[k, k - 1] = -k
        H[:, k - 1] /= np.sqrt(k * (k + 1))
    return H


def check_backend(backend: str, *, model: str, supported: Iterable[str] = BACKENDS) -> Backend:
    """Validate ``backend`` for ``model``.

    Parameters
    ----------
    backend : str
        Requested backend.
    model : str
        Model name, for the error message.
    supported : iterable of str
        Backends the model has (default both).

    Returns
    -------
    Backend
        ``backend`` (validated).

    Raises
    ------
    ValueError
        For a name that is not a backend, or a backend the model does not have.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {list(BACKENDS)}, got {backend!r}")
    ok = tuple(supported)
    if backend not in ok:
        only = " and ".join("PyMC" if b == "pymc" else "Stan" for b in ok)
        raise ValueError(
            f"the {model} model has a {only} backend only (no {backend!r} implementation); "
            f"use backend={ok[0]!r}"
        )
    return backend  # type: ignore[return-value]


@dataclass(frozen=True)
class ModelSpec:
    """A model as the backends see it.

    Parameters
    ----------
    name : str
        Model name (error messages).
    build_pymc : callable
        No-argument function returning the ``pymc.Model``.
    mass_matrix : {"diag", "low_rank"}
        The model's nutpie mass matrix (used unless ``SamplerSettings.mass_matrix`` is set).
    target_accept : float
        The model's NUTS target acceptance rate / Stan ``adapt_delta`` (used unless
        ``SamplerSettings.target_accept`` is set).
    stan_program : str or None
        Name of the program in ``models/`` (None: the model is PyMC-only).
    stan_data : callable or None
        No-argument function returning the Stan data dict.
    coords, dims : mapping
        ArviZ coordinates and dimensions of the Stan output.
    stan_scalars : tuple of str
        Optional scalars declared as ``array[flag] real`` in Stan (squeezed to scalars, or dropped
        when the flag is 0).
    cache_key : hashable or None
        The model's structure (everything the compiled graph depends on except its ``pm.Data``
        containers).  With nutpie, the compiled model of a key is kept for the process and later
        fits with the same key re-use it with new data (:func:`sample_model`); None: compile
        every time.
    pymc_data : callable or None
        No-argument function returning the values of the model's ``pm.Data`` containers (by
        name), set on a re-used compiled model.
    """

    name: str
    build_pymc: Callable[[], Any]
    mass_matrix: MassMatrix = "diag"
    target_accept: float = DEFAULT_TARGET_ACCEPT
    stan_program: str | None = None
    stan_data: Callable[[], Mapping[str, Any]] | None = None
    coords: Mapping[str, Any] = field(default_factory=dict)
    dims: Mapping[str, list[str]] = field(default_factory=dict)
    stan_scalars: tuple[str, ...] = ()
    cache_key: Hashable | None = None
    pymc_data: Callable[[], Mapping[str, Any]] | None = None

    @property
    def backends(self) -> tuple[str, ...]:
        """The backends this model has."""
        return BACKENDS if self.stan_program is not None else ("pymc",)


def sample_model(
    spec: ModelSpec, backend: str = "pymc", settings: SamplerSettings | None = None
) -> az.InferenceData:
    """Sample a model with PyMC or Stan (same model, same priors, same parameter names).

    Parameters
    ----------
    spec : ModelSpec
        The model.
    backend : {"pymc", "stan"}
        Backend; a model without a Stan program is PyMC-only.
    settings : SamplerSettings or None
        Sampler settings shared by both backends (default ``SamplerSettings()``).

    Returns
    -------
    arviz.InferenceData
        The draws; Stan output tidied by :func:`tidy_stan`.
    """
    which = check_backend(backend, model=spec.name, supported=spec.backends)
    s = settings or SamplerSettings()
    s = s.with_(target_accept=s.accept(spec.target_accept))  # None: the model's choice
    if which == "pymc":
        if spec.cache_key is not None and s.sampler == "nutpie":
            return _sample_nutpie_cached(spec, s)
        from hepcausal.sampling import sample_pymc

        t0 = time.perf_counter()
        idata = sample_pymc(spec.build_pymc(), s, mass_matrix=spec.mass_matrix)
        idata.posterior.attrs["hepcausal_fit_seconds"] = time.perf_counter() - t0
        return idata
    from hepcausal.models.stan_engine import sample_stan

    assert spec.stan_program is not None and spec.stan_data is not None
    idata = sample_stan(spec.stan_program, spec.stan_data(), s, coords=spec.coords, dims=spec.dims)
    return tidy_stan(idata, spec.stan_scalars)


_COMPILED: dict[Hashable, Any] = {}
"""nutpie compiled models by ``ModelSpec.cache_key`` (this process)."""


def clear_compiled_cache() -> None:
    """Forget every compiled model kept by :func:`sample_model` (the next fits compile again)."""
    _COMPILED.clear()


def _sample_nutpie_cached(spec: ModelSpec, s: SamplerSettings) -> az.InferenceData:
    """nutpie with the compiled model of ``spec.cache_key`` re-used (new ``pm.Data`` values).

    The same seed derivation, settings and ``cores`` as :func:`hepcausal.sampling.sample_pymc`
    (so a first fit gives the draws ``pm.sample`` would).  Timings are recorded in the posterior
    attributes ``hepcausal_compile_seconds``, ``hepcausal_sampling_seconds`` and
    ``hepcausal_compiled_model_reused``.
    """
    import os

    import nutpie
    from pymc.util import _get_seeds_per_chain

    key = (spec.name, spec.cache_key)
    t0 = time.perf_counter()
    compiled = _COMPILED.get(key)
    reused = compiled is not None
    if compiled is None:
        compiled = nutpie.compile_pymc_model(spec.build_pymc())
        _COMPILED[key] = compiled
    elif spec.pymc_data is not None:
        # containers the graph does not use (e.g. the rank of a level-only model) were pruned
        # from the compiled model: set only those it has
        shared = compiled.shared_data
        compiled = compiled.with_data(
            **{k: v for k, v in dict(spec.pymc_data()).items() if k in shared}
        )
    t1 = time.perf_counter()
    cores = s.cores or min(s.chains, os.cpu_count() or 1)
    kwargs: dict[str, Any] = {}
    if (s.mass_matrix or spec.mass_matrix) == "low_rank":
        kwargs["low_rank_modified_mass_matrix"] = True
    idata = nutpie.sample(
        compiled,
        draws=s.draws,
        tune=s.tune,
        chains=s.chains,
        cores=cores,
        target_accept=s.accept(spec.target_accept),
        seed=_get_seeds_per_chain(s.seed, 1)[0],
        progress_bar=s.progressbar,
        **kwargs,
    )
    t2 = time.perf_counter()
    idata.posterior.attrs.update(
        hepcausal_compile_seconds=t1 - t0,
        hepcausal_sampling_seconds=t2 - t1,
        hepcausal_compiled_model_reused=int(reused),
    )
    return idata


def tidy_stan(idata: az.InferenceData, scalars: Iterable[str] = ()) -> az.InferenceData:
    """Make Stan output look like PyMC's: drop switched-off blocks, squeeze optional scalars.

    Stan programs declare optional parameters with a flag as their size (``array[flag] real``,
    ``vector[flag * n]``).  Variables with a size-0 dimension (switched-off blocks) are dropped;
    the optional ``scalars`` (size-1 arrays) become scalars, as in PyMC.

    Parameters
    ----------
    idata : arviz.InferenceData
        Output of :func:`hepcausal.models.stan_engine.sample_stan`; modified in place.
    scalars : iterable of str
        Names of the optional scalar parameters.

    Returns
    -------
    arviz.InferenceData
        ``idata``.
    """
    post = idata.posterior
    names = set(scalars)
    keep = {}
    for name, da in post.data_vars.items():
        extra = [d for d in da.dims if d not in ("chain", "draw")]
        if any(post.sizes[d] == 0 for d in extra):
            continue  # switched-off block
        if name in names and len(extra) == 1 and post.sizes[extra[0]] == 1:
            da = da.squeeze(extra[0], drop=True)
        keep[name] = da
    idata.posterior = xr.Dataset(keep, attrs=post.attrs)
    return idata
