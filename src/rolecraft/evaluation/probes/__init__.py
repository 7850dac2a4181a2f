"""The probe registry: name → probe. Built-in probes and plugins register the same way.

Plugins add probes through the entry-point group "rolecraft.eval_probes"
(name → a `Probe` subclass). Order here is the order of a run and a report.
"""

from __future__ import annotations

from rolecraft.errors import RolecraftError
from rolecraft.evaluation.probes.base import MetricSpec, Probe, Record, Sample, SkipSample
from rolecraft.evaluation.probes.media import ExpressionProbe, ImageGroundingProbe
from rolecraft.evaluation.probes.memory import CoherenceProbe, FactRecallProbe, StateTrackingProbe
from rolecraft.evaluation.probes.persona import CatchphraseProbe, IdentifiabilityProbe, OutOfCharacterProbe
from rolecraft.evaluation.probes.reference import MMRoleJudgeProbe, ReferenceProbe
from rolecraft.evaluation.probes.speech import CopyingProbe, RepetitionProbe, ThirdPersonProbe
from rolecraft.registry import Registry

BUILTIN = (CatchphraseProbe, OutOfCharacterProbe, IdentifiabilityProbe, CopyingProbe, ThirdPersonProbe,
           RepetitionProbe, FactRecallProbe, CoherenceProbe, StateTrackingProbe, ReferenceProbe, MMRoleJudgeProbe,
           ImageGroundingProbe, ExpressionProbe)
PROBES: Registry[type[Probe]] = Registry("probe", group="rolecraft.eval_probes", param="probes",
                                         code="invalid_option")


def register_probe(probe: type[Probe]) -> type[Probe]:
    """Class decorator (or plain call): make `probe.name` available to runs."""
    return PROBES.add(probe.name, probe)


for _builtin in BUILTIN:
    register_probe(_builtin)


def available_probes() -> list[str]:
    """Every probe name, built-ins first in run order, then plugins."""
    return PROBES.names()


def get_probes(names: list[str] | None = None) -> list[Probe]:
    """Probe instances for `names` (default: all), in run order."""
    wanted = names or available_probes()
    unknown = [n for n in wanted if n not in available_probes()]
    if unknown:
        raise RolecraftError(f"unknown probe {', '.join(map(repr, unknown))}; available: "
                             f"{', '.join(available_probes())}", code="invalid_option", param="probes")
    return [PROBES.require(n)() for n in available_probes() if n in wanted]


__all__ = ["MetricSpec", "Probe", "Record", "Sample", "SkipSample", "available_probes", "get_probes",
           "register_probe"]
