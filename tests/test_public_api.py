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
    "hepcausal.inequality.ranks",
    "hepcausal.data.nhs",
    "hepcausal.data.inclusion",
    "hepcausal.data.validate",
    "hepcausal.data.synthetic",
    "hepcausal.experiments.store",
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
    """Names listed in the numpydoc Parameters (or Attributes) section.

    A name line sits at the section header's own indentation (``name : type`` or a bare
    ``name``; ``a, b : type`` names several; ``*args`` / ``**kwargs`` lose their stars).
    Description lines are indented deeper and never count as names.
    """
    names: set[str] = set()
    for header in ("Parameters", "Attributes"):
        m = re.search(
            rf"^([ \t]*){header}\n[ \t]*-{{3,}}\n(.*?)"
            r"(?=\n[ \t]*\n[ \t]*[A-Z][A-Za-z ]+\n[ \t]*-{3,}|\Z)",
            doc,
            flags=re.S | re.M,
        )
        if not m:
            continue
        base = len(m.group(1))
        for line in m.group(2).splitlines():
            if not line.strip() or len(line) - len(line.lstrip()) != base:
                continue
            hit = re.match(r"^[ \t]*(\**[A-Za-z_][\w, *]*?)[ \t]*(?::|$)", line)
            if hit:
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
