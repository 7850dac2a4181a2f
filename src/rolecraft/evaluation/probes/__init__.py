"""The probe registry: name → probe. Built-in probes and plugins register the same way.

Plugins add probes through the entry-point group "rolecraft.eval_probes"
(name → a `Probe` subclass). Order here is the order of a run and a report.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from rolecraft.errors import RolecraftError
from rolecraft.evaluation.probes.base import MetricSpec, Probe, Record, Sample, SkipSample
from rolecraft.evaluation.probes.media import ExpressionProbe, ImageGroundingProbe
from rolecraft.evaluation.probes.memory import CoherenceProbe, FactRecallProbe
from rolecraft.evaluation.probes.persona import CatchphraseProbe, IdentifiabilityProbe, OutOfCharacterProbe
from rolecraft.evaluation.probes.reference import MMRoleJudgeProbe, ReferenceProbe
from rolecraft.evaluation.probes.speech import CopyingProbe, RepetitionProbe, ThirdPersonProbe

_REGISTRY: dict[str, type[Probe]] = {}


def register_probe(probe: type[Probe]) -> type[Probe]:
    """Class decorator (or plain call): make `probe.name` available to runs."""
    _REGISTRY[probe.name] = probe
    return probe


for _builtin in (CatchphraseProbe, OutOfCharacterProbe, IdentifiabilityProbe, CopyingProbe, ThirdPersonProbe,
                 RepetitionProbe, FactRecallProbe, CoherenceProbe, ReferenceProbe, MMRoleJudgeProbe,
                 ImageGroundingProbe, ExpressionProbe):
    register_probe(_builtin)


def available_probes() -> list[str]:
    """Every probe name, built-ins first in run order, then plugins."""
    plugins = sorted(ep.name for ep in entry_points(group="rolecraft.eval_probes") if ep.name not in _REGISTRY)
    return [*_REGISTRY, *plugins]


def get_probes(names: list[str] | None = None) -> list[Probe]:
    """Probe instances for `names` (default: all), in run order."""
    wanted = names or available_probes()
    unknown = [n for n in wanted if n not in available_probes()]
    if unknown:
        raise RolecraftError(f"unknown probe {', '.join(map(repr, unknown))}; available: "
                             f"{', '.join(available_probes())}", code="invalid_option", param="probes")
    for ep in entry_points(group="rolecraft.eval_probes"):
        if ep.name in wanted and ep.name not in _REGISTRY:
            register_probe(ep.load())
    return [_REGISTRY[n]() for n in available_probes() if n in wanted]


__all__ = ["MetricSpec", "Probe", "Record", "Sample", "SkipSample", "available_probes", "get_probes",
           "register_probe"]
