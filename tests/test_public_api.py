"""The public contract: every public entry point documents its parameters (numpydoc) and the
modules and registry entries that docs/ARCHITECTURE.md names exist."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Modules whose ``__all__`` is the public API.
PUBLIC_MODULES = (
    "hepcausal.api",
    "hepcausal.outcomes",
    "hepcausal.spec",
    "hepcausal.summaries",
    "hepcausal.diagnostics",
    "hepcausal.sampling",
    "hepcausal.results",
    "hepcausal.causal.did",
    "hepcausal.causal.event_study",
    "hepcausal.causal.dose",
    "hepcausal.models.gradient",
    "hepcausal.models.families",
    "hepcausal.inequality.classical",
    "hepcausal.data.nhs",
    "hepcausal.data.synthetic",
    "hepcausal.plots",
    "hepcausal.report",
)


def _entry_points() -> list[tuple[str, object]]:
    out = []
    for mod_name in PUBLIC_MODULES:
        mod = importlib.import_module(mod_name)
        names = getattr(mod, "__all__", None)
        assert names is not None, f"{mod_name} has no __all__"
        for name in names:
            obj = getattr(mod, name)
            if inspect.isfunction(obj) or inspect.isclass(obj):
                out.append((f"{mod_name}.{name}", obj))
    return out


def _documented_params(doc: str) -> set[str]:
    """Names listed in the numpydoc Parameters (or Attributes) section."""
    names: set[str] = set()
    for header in ("Parameters", "Attributes"):
        m = re.search(rf"^\s*{header}\n\s*-{{3,}}\n(.*?)(?:\n\s*\n\s*[A-Z][A-Za-z ]+\n\s*-{{3,}}|\Z)",
                      doc, flags=re.S | re.M)
        if m:
            for line in m.group(1).splitlines():
                hit = re.match(r"^\s*\**([A-Za-z_][\w, *]*?)\s*(?::|$)", line)
                if hit and not line.startswith(" " * 8):
                    names.update(p.strip(" *") for p in hit.group(1).split(","))
    return names


def _parameters(obj: object) -> list[str]:
    target = obj.__init__ if inspect.isclass(obj) else obj  # type: ignore[misc]
    try:
        sig = inspect.signature(target)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return []
    skip = {"self", "cls", "args", "kwargs"}
    return [p for p in sig.parameters if p not in skip]


ENTRY_POINTS = _entry_points()


@pytest.mark.parametrize("name,obj", ENTRY_POINTS, ids=[n for n, _ in ENTRY_POINTS])
def test_public_entry_point_documents_its_parameters(name: str, obj: object) -> None:
    doc = inspect.getdoc(obj) or ""
    assert doc, f"{name} has no docstring"
    params = _parameters(obj)
    if not params:
        return
    documented = _documented_params(doc)
    missing = [p for p in params if p not in documented]
    assert not missing, f"{name}: parameters not in its numpydoc Parameters section: {missing}"
