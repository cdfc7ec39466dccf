"""Stan engine: the programs in ``models/*.stan`` run through cmdstanpy or pystan.

Used through :func:`hepcausal.models.backend.sample_model` (the one PyMC / Stan dispatch).

cmdstanpy is used where CmdStan is installed (the ``CMDSTAN`` environment variable points at it);
otherwise the same program is compiled and sampled offline by pystan/httpstan, which ship stanc
and the Stan C++ headers.  Compiled models are cached (httpstan: under ``XDG_CACHE_HOME``), so
only the first fit of a program pays the ~60 s compile.  A cached httpstan build that a killed
process left incomplete (the extension module written, its ``stderr.log`` not: every later
build of that program then fails inside httpstan with an unreadable JSON reply) is removed
first and rebuilt, with a warning naming the folder (:func:`remove_incomplete_build`).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import arviz as az
import numpy as np

from hepcausal.sampling import SamplerSettings

StanEngine = Literal["auto", "cmdstanpy", "pystan"]

log = logging.getLogger(__name__)

STALE_BUILD_SECONDS = 60.0
"""Age of an extension module without ``stderr.log`` after which its build counts as killed.

httpstan writes ``stderr.log`` right after linking the module, so a module this old without it
is not a build still in progress in another process."""


def stan_dir() -> Path:
    """Folder of the Stan programs: ``HEPCAUSAL_STAN_DIR``, else the repository's ``models/``."""
    env = os.environ.get("HEPCAUSAL_STAN_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "models"


def stan_program_path(name: str) -> Path:
    """Path of ``models/<name>.stan``; a clear error when it does not exist."""
    path = stan_dir() / f"{name.removesuffix('.stan')}.stan"
    if not path.is_file():
        available = sorted(p.stem for p in stan_dir().glob("*.stan"))
        raise FileNotFoundError(
            f"Stan program '{name}' not found at {path}; available: {available}. "
            "Set HEPCAUSAL_STAN_DIR if the programs live elsewhere."
        )
    return path


def cmdstan_available() -> bool:
    """True when CMDSTAN is set to a usable CmdStan installation."""
    if not os.environ.get("CMDSTAN"):
        return False
    try:
        import cmdstanpy

        cmdstanpy.cmdstan_path()
    except Exception:
        return False
    return True


def resolve_engine(engine: StanEngine = "auto") -> Literal["cmdstanpy", "pystan"]:
    """The engine that ``sample_stan`` will use."""
    if engine == "auto":
        return "cmdstanpy" if cmdstan_available() else "pystan"
    if engine == "cmdstanpy" and not cmdstan_available():
        raise RuntimeError("engine='cmdstanpy' needs CMDSTAN set to a CmdStan install")
    if engine not in ("cmdstanpy", "pystan"):
        raise ValueError(f"engine must be 'auto', 'cmdstanpy' or 'pystan', got {engine!r}")
    return engine


def _jsonable(data: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        arr = np.asarray(value)
        if arr.dtype.kind in "iub":
            out[key] = arr.astype(int).tolist() if arr.ndim else int(arr)
        elif arr.dtype.kind == "f":
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"Stan data '{key}' has missing or non-finite values")
            out[key] = arr.tolist() if arr.ndim else float(arr)
        else:
            raise TypeError(f"Stan data '{key}' has unsupported dtype {arr.dtype}")
    return out


def pystan_model(program: str, data: Mapping[str, Any], *, seed: int | None = None) -> Any:
    """Compile (or load from the cache) ``models/<program>.stan`` with pystan, with ``data``.

    The returned ``stan.model.Model`` samples (``.sample``) and evaluates the log density and its
    gradient on the unconstrained scale (``.log_prob``, ``.grad_log_prob``), which the backend
    agreement tests compare with PyMC.

    Parameters
    ----------
    program : str
        Program name in ``models/`` (with or without ``.stan``).
    data : mapping
        Stan data (NumPy arrays are converted to JSON).
    seed : int or None
        Random seed of the model's sampler.

    Returns
    -------
    stan.model.Model
        The compiled model bound to ``data``.
    """
    import stan

    code = stan_program_path(program).read_text()
    remove_incomplete_build(code)
    return stan.build(code, data=_jsonable(data), random_seed=seed)


def remove_incomplete_build(program_code: str) -> Path | None:
    """Delete httpstan's cached build of ``program_code`` when a killed compile left it incomplete.

    httpstan treats a model folder whose extension module imports as a finished build and then
    reads its ``stderr.log``; a compile killed between linking and writing that file leaves a
    folder that fails every later fit of the program (pystan reports an improper JSON reply).
    Such a folder (module present, ``stderr.log`` absent, module older than
    :data:`STALE_BUILD_SECONDS`) is removed with a warning so that the next build recompiles.

    Parameters
    ----------
    program_code : str
        The Stan program text.

    Returns
    -------
    Path or None
        The removed folder, or None when the cache holds no incomplete build of the program.
    """
    import httpstan.cache
    import httpstan.models

    folder = httpstan.cache.model_directory(httpstan.models.calculate_model_name(program_code))
    modules = list(folder.glob("stan_services_*.so")) if folder.is_dir() else []
    if not modules or (folder / "stderr.log").is_file():
        return None
    if time.time() - max(m.stat().st_mtime for m in modules) < STALE_BUILD_SECONDS:
        return None  # another process may be finishing this build
    log.warning(
        "removing the incomplete Stan build %s (an interrupted compile left no stderr.log); "
        "the program is compiled again (about 60 s)",
        folder,
    )
    shutil.rmtree(folder)
    return folder


def sample_stan(
    program: str,
    data: Mapping[str, Any],
    settings: SamplerSettings | None = None,
    *,
    coords: Mapping[str, Any] | None = None,
    dims: Mapping[str, list[str]] | None = None,
    engine: StanEngine = "auto",
) -> az.InferenceData:
    """Sample ``models/<program>.stan`` with NUTS and return InferenceData.

    The same :class:`~hepcausal.sampling.SamplerSettings` as the PyMC backend are used
    (``tune`` = warm-up iterations, ``target_accept`` = Stan's ``adapt_delta``, ``seed``).

    Parameters
    ----------
    program : str
        Program name in ``models/``.
    data : mapping
        Stan data.
    settings : SamplerSettings or None
        Sampler settings (default ``SamplerSettings()``).
    coords, dims : mapping or None
        ArviZ coordinates and dimensions.
    engine : {"auto", "cmdstanpy", "pystan"}
        Engine (:func:`resolve_engine`).

    Returns
    -------
    arviz.InferenceData
        The draws; ``posterior.attrs`` record the engine and program.
    """
    s = settings or SamplerSettings()
    path = stan_program_path(program)
    payload = _jsonable(data)
    which = resolve_engine(engine)
    coords = dict(coords or {})
    dims = dict(dims or {})
    if which == "cmdstanpy":
        import cmdstanpy

        model = cmdstanpy.CmdStanModel(stan_file=str(path))
        fit = model.sample(
            data=payload,
            chains=s.chains,
            parallel_chains=s.cores or min(s.chains, os.cpu_count() or 1),
            iter_warmup=s.tune,
            iter_sampling=s.draws,
            adapt_delta=s.accept(),
            seed=s.seed,
            show_progress=s.progressbar,
        )
        idata = az.from_cmdstanpy(fit, coords=coords, dims=dims)
    else:
        posterior = pystan_model(program, data, seed=s.seed)
        fit = posterior.sample(
            num_chains=s.chains,
            num_samples=s.draws,
            num_warmup=s.tune,
            delta=s.accept(),
        )
        idata = az.from_pystan(posterior=fit, posterior_model=posterior, coords=coords, dims=dims)
    idata.posterior.attrs["stan_engine"] = which
    idata.posterior.attrs["stan_program"] = path.name
    return idata
