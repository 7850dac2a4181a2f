"""Role-play evaluation: probes, reference metrics, an MMRole-style judge, ablations and reports.

Library use:

    from rolecraft.evaluation import Configuration, EvalPlan, load_suite, run_eval
    from rolecraft.settings import Settings
    plan = EvalPlan(load_suite(), [Configuration("default"), Configuration("no_bias", {"catchphrase_bias": 0})],
                    out_dir=Path("eval-out"))
    result = run_eval(Settings(), plan)   # writes report.json, report.md, metrics.png, ...

The CLI front end is `rolecraft eval` (cli/eval.py).
"""

from rolecraft.evaluation.capabilities import register_capability
from rolecraft.evaluation.context import Configuration
from rolecraft.evaluation.datasets import DialogueSample, load_dataset
from rolecraft.evaluation.judge import JudgeConfig, parse_score_pair
from rolecraft.evaluation.probes import Probe, available_probes, register_probe
from rolecraft.evaluation.runner import EvalPlan, EvalResult, eval_settings, run_eval
from rolecraft.evaluation.suite import Suite, load_suite

__all__ = [
    "Configuration",
    "DialogueSample",
    "EvalPlan",
    "EvalResult",
    "JudgeConfig",
    "Probe",
    "Suite",
    "available_probes",
    "eval_settings",
    "load_dataset",
    "load_suite",
    "parse_score_pair",
    "register_capability",
    "register_probe",
    "run_eval",
]
