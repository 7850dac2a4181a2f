"""The probe contract: samples in, per-sample records out, metrics declared up front.

A probe lists its samples for a configuration, runs one sample at a time
(returning a `Record` of metric values), and declares how each metric is
aggregated. `prepare` returns a reason when the probe cannot run at all
(a capability or the judge is missing, or the suite has no data for it); the
report then shows "skipped: <reason>" rather than leaving the probe out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from rolecraft.evaluation.context import ProbeContext


@dataclass(frozen=True)
class Sample:
    """One unit of work; `group` buckets results (e.g. turn depth) in the report."""

    id: str
    item: Any
    group: str = ""


@dataclass
class Record:
    """A probe's result for one sample. A value of None means "not measured" (see `failures`)."""

    probe: str
    sample_id: str
    group: str = ""
    values: dict[str, float | None] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    skipped: str | None = None
    failures: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"probe": self.probe, "sample": self.sample_id, "group": self.group, "values": self.values,
                "skipped": self.skipped, "failures": self.failures, "details": self.details}


# A corpus-level statistic over the records chosen by an index array (for BLEU and chrF).
CorpusStatistic = Callable[[Sequence[Record], np.ndarray], float]


@dataclass(frozen=True)
class MetricSpec:
    """How a metric is shown and aggregated (mean of per-sample values unless `corpus` is given)."""

    key: str
    label: str
    higher_is_better: bool = True
    scale: str = "rate"  # "rate" (0–1, shown as %), "score" (0–100), "ratio" (judge a/b), "f1" (0–1)
    corpus: CorpusStatistic | None = None


class SkipSample(Exception):  # noqa: N818 - it is a control-flow signal, not an error
    """Raised by `Probe.run` when a sample cannot be measured; `code` is the counted reason."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(message or code)
        self.code = code
        self.message = message or code


class Probe:
    """Base class of all probes; subclasses register with `rolecraft.evaluation.probes.register_probe`."""

    name = ""
    title = ""
    metrics: tuple[MetricSpec, ...] = ()
    group_label = ""

    def prepare(self, ctx: ProbeContext) -> str | None:
        """A reason this probe cannot run in this configuration, or None."""
        return None

    def samples(self, ctx: ProbeContext) -> list[Sample]:
        raise NotImplementedError

    def run(self, ctx: ProbeContext, sample: Sample) -> Record:
        raise NotImplementedError

    def notes(self, ctx: ProbeContext) -> list[str]:
        """How the metrics were measured (method, weaknesses), for the report."""
        return []

    def baselines(self, ctx: ProbeContext) -> dict[str, float]:
        """Chance levels per metric key, when a metric has one."""
        return {}

    def record(self, sample: Sample, values: dict[str, float | None], **details: Any) -> Record:
        return Record(self.name, sample.id, sample.group, values, details)


def flag(value: object) -> float:
    """A truth value as a 0/1 metric value."""
    return 1.0 if value else 0.0
