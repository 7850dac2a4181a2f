"""Direct preference optimisation: prefer the in-character reply over the bland or out-of-character one.

The reference model is the model training starts from (the base, or the base
with --init-adapter, e.g. an SFT adapter); its reply log-probabilities are
computed once, before training, since they never change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rolecraft.training.render import Encoded
from rolecraft.training.sft import token_logprobs


@dataclass(frozen=True)
class Pair:
    """A rendered preference pair with the reference model's reply log-probabilities."""

    chosen: Encoded
    rejected: Encoded
    ref_chosen: float = 0.0
    ref_rejected: float = 0.0


def _sums(model: Any, batch: list[Encoded]) -> Any:
    picked, _ = token_logprobs(model, batch)
    return picked.sum(-1)


def with_reference(model: Any, pairs: list[tuple[Encoded, Encoded]], batch_size: int) -> list[Pair]:
    """Attach the reference log-probabilities of `model` as it is now."""
    import torch

    out, was_training = [], model.training
    model.eval()
    with torch.no_grad():
        for start in range(0, len(pairs), batch_size):
            chunk = pairs[start:start + batch_size]
            scores = _sums(model, [c for c, _ in chunk] + [r for _, r in chunk]).tolist()
            n = len(chunk)
            out += [Pair(c, r, scores[i], scores[n + i]) for i, (c, r) in enumerate(chunk)]
    model.train(was_training)
    return out


def dpo_loss_for(beta: float) -> Any:
    def loss(model: Any, batch: list[Pair]) -> tuple[Any, int, dict[str, float]]:
        import torch

        n = len(batch)
        scores = _sums(model, [p.chosen for p in batch] + [p.rejected for p in batch])
        ref = torch.tensor([p.ref_chosen for p in batch] + [p.ref_rejected for p in batch], device=scores.device)
        margin = beta * ((scores[:n] - ref[:n]) - (scores[n:] - ref[n:]))
        tokens = sum(sum(p.chosen.mask) + sum(p.rejected.mask) for p in batch)
        accuracy = float((margin.detach() > 0).float().mean())
        loss = -torch.nn.functional.logsigmoid(margin).mean()
        return loss, tokens, {"reward_accuracy": accuracy, "margin": float(margin.detach().mean())}

    return loss


def dpo_objective(train: list[Pair], evals: list[Pair], beta: float) -> Any:
    from rolecraft.training.loop import Objective

    return Objective("dpo", train, evals, dpo_loss_for(beta), lambda p: len(p.chosen.ids) + len(p.rejected.ids))
