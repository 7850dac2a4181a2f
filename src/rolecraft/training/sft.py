"""Supervised fine-tuning: cross-entropy on the character's turns only (the renderer's loss mask)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rolecraft.training.render import Encoded

IGNORE = -100


def pad(batch: Sequence[Encoded], device: Any) -> tuple[Any, Any, Any]:
    """Right-padded input ids, labels (IGNORE off the mask and on padding) and attention mask."""
    import torch

    width = max(len(e.ids) for e in batch)
    ids = torch.zeros((len(batch), width), dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    attention = torch.zeros((len(batch), width), dtype=torch.long)
    for row, item in enumerate(batch):
        n = len(item.ids)
        ids[row, :n] = torch.tensor(item.ids)
        labels[row, :n] = torch.tensor([t if m else IGNORE for t, m in zip(item.ids, item.mask, strict=True)])
        attention[row, :n] = 1
    return ids.to(device), labels.to(device), attention.to(device)


def token_logprobs(model: Any, batch: Sequence[Encoded]) -> tuple[Any, Any]:
    """Log-probability of every predicted token that counts, and which ones count (on the mask).

    Logits are computed only at positions whose next token is on some row's mask: the
    vocabulary projection of a long character prompt would otherwise dominate the step."""
    import torch

    ids, labels, attention = pad(batch, next(model.parameters()).device)
    wanted = (labels[:, 1:] != IGNORE).any(0).nonzero().squeeze(-1)
    logits = model(input_ids=ids, attention_mask=attention, logits_to_keep=wanted).logits.float()
    target = labels[:, wanted + 1]
    counted = target != IGNORE
    picked = torch.gather(logits.log_softmax(-1), 2, target.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return picked * counted, counted


def sft_loss(model: Any, batch: list[Encoded]) -> tuple[Any, int, dict[str, float]]:
    """Mean negative log-likelihood per masked token."""
    picked, counted = token_logprobs(model, batch)
    tokens = int(counted.sum())
    return -picked.sum() / max(1, tokens), tokens, {}


def sft_objective(train: list[Encoded], evals: list[Encoded]) -> Any:
    from rolecraft.training.loop import Objective

    return Objective("sft", train, evals, sft_loss, lambda item: len(item.ids))


