"""httpstan's build cache: a build that a killed compile left incomplete is removed, nothing else.

No compile here: the cache folders are made by hand in a temporary ``XDG_CACHE_HOME``.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest

from hepcausal.models.stan_engine import (
    STALE_BUILD_SECONDS,
    remove_incomplete_build,
    stan_program_path,
)

pytest.importorskip("httpstan")


def _folder(code: str) -> Path:
    import httpstan.cache
    import httpstan.models

    return httpstan.cache.model_directory(httpstan.models.calculate_model_name(code))


def _module(folder: Path, age: float) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    so = folder / f"stan_services_model_{folder.name}.cpython-311-x86_64-linux-gnu.so"
    so.write_bytes(b"\x7fELF half written")
    t = time.time() - age
    os.utime(so, (t, t))
    return so


def test_incomplete_build_is_removed_with_a_warning(tmp_path, monkeypatch, caplog) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    code = stan_program_path("panel_prepost").read_text()
    folder = _folder(code)
    assert str(folder).startswith(str(tmp_path))  # the cache follows XDG_CACHE_HOME

    assert remove_incomplete_build(code) is None  # nothing cached: nothing to do

    _module(folder, age=STALE_BUILD_SECONDS + 5)  # killed after linking, before stderr.log
    with caplog.at_level(logging.WARNING, logger="hepcausal.models.stan_engine"):
        assert remove_incomplete_build(code) == folder
    assert not folder.exists()
    assert str(folder) in caplog.text and "incomplete Stan build" in caplog.text


def test_finished_or_running_builds_are_kept(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    code = stan_program_path("panel_prepost").read_text()
    folder = _folder(code)

    so = _module(folder, age=1.0)  # just linked: another process may write stderr.log next
    assert remove_incomplete_build(code) is None and so.exists()

    _module(folder, age=STALE_BUILD_SECONDS + 5)
    (folder / "stderr.log").write_text("")  # a finished build
    assert remove_incomplete_build(code) is None and so.exists()

    other = _folder(stan_program_path("panel_effects").read_text())
    _module(other, age=STALE_BUILD_SECONDS + 5)  # another program's broken build is not touched
    assert remove_incomplete_build(code) is None and other.exists()
