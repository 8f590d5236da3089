"""What an edit does to the model's predictions: next-token loss, and the probability of the feature's tokens.

Texts are tokenised as the model sees them (special tokens included), cut at `max_tokens` and
batched by length. For every text, two numbers over its predicted positions (each real token
after the first):

- loss: the mean next-token negative log-likelihood (nats per token);
- relevant: the mean log of the probability mass the model puts on the feature's relevant tokens,
  the tokens that occur most over-proportionally in the feature's own training texts against the
  control texts (smoothed log-odds; `relevant_tokens`).

The effect of an edit contrasts the feature's texts with the control texts (the other class), so
an edit that breaks the model everywhere scores near zero: `effect = mean change on the feature's
texts - mean change on the control texts`.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from probebank.causal.ablate import Prefix, UnitEdit, clean_prefix, edited_logits
from probebank.causal.head import Head
from probebank.extract.device import model_device
from probebank.extract.loaded import LoadedModel


@dataclass
class TextBatch:
    """One padded batch (right padding) and where its rows sit in the caller's list of texts."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    order: list[int]
    prefix: Prefix | None = field(default=None, repr=False)


def token_ids(loaded: LoadedModel, texts: Sequence[str], max_tokens: int) -> list[list[int]]:
    """Each text's token ids as the model reads them, cut at `max_tokens`."""
    enc = loaded.tokenizer(list(texts), add_special_tokens=True, truncation=True, max_length=max_tokens)
    return [list(ids) for ids in enc["input_ids"]]


def text_batches(loaded: LoadedModel, ids: Sequence[Sequence[int]], batch_tokens: int) -> list[TextBatch]:
    """Sequences sorted by length and cut into batches of at most `batch_tokens` padded tokens."""
    pad = loaded.tokenizer.pad_token_id if loaded.tokenizer.pad_token_id is not None else 0
    order = sorted(range(len(ids)), key=lambda i: (len(ids[i]), i))
    batches, lo = [], 0
    while lo < len(order):
        hi = lo + 1
        while hi < len(order) and (hi + 1 - lo) * len(ids[order[hi]]) <= batch_tokens:
            hi += 1
        rows = order[lo:hi]
        width = max(len(ids[i]) for i in rows)
        input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for b, i in enumerate(rows):
            input_ids[b, :len(ids[i])] = torch.tensor(ids[i], dtype=torch.long)
            mask[b, :len(ids[i])] = 1
        batches.append(TextBatch(input_ids, mask, rows))
        lo = hi
    return batches


def relevant_tokens(feature_ids: Sequence[Sequence[int]], control_ids: Sequence[Sequence[int]], n: int,
                    min_count: int = 2) -> list[int]:
    """The `n` tokens most over-represented among the predicted tokens of the feature's texts against the
    control texts (log-odds with add-half smoothing), seen at least `min_count` times in the feature's."""
    feat = Counter(t for ids in feature_ids for t in ids[1:])
    ctrl = Counter(t for ids in control_ids for t in ids[1:])
    n_f, n_c = sum(feat.values()), sum(ctrl.values())
    vocab = len(set(feat) | set(ctrl)) or 1
    scores = {t: np.log((c + 0.5) / (n_f + 0.5 * vocab)) - np.log((ctrl[t] + 0.5) / (n_c + 0.5 * vocab))
              for t, c in feat.items() if c >= min_count}
    return [t for t, _ in sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:n]]


def score_logits(logits: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                 relevant: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per row: mean next-token NLL and mean log-mass on `relevant` over the row's predicted positions."""
    logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)              # predicts tokens 1..T-1
    target = input_ids[:, 1:].to(logp.device)
    valid = (attention_mask[:, 1:] * attention_mask[:, :-1]).to(logp.device).bool()
    nll = -logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)
    mass = torch.logsumexp(logp.index_select(-1, relevant.to(logp.device)), dim=-1) if relevant.numel() \
        else torch.zeros_like(nll)
    count = valid.sum(-1).clamp(min=1)
    loss = (nll * valid).sum(-1) / count
    rel = (mass * valid).sum(-1) / count
    return loss.double().cpu().numpy(), rel.double().cpu().numpy()


@dataclass
class Scores:
    """Per-text loss and relevant-token log-mass, in the caller's order of texts."""

    loss: np.ndarray
    relevant: np.ndarray


class TextSet:
    """Texts ready for many edited passes: tokenised, batched, and (for edits at `layer`) their clean prefix
    kept once."""

    def __init__(self, loaded: LoadedModel, head: Head, ids: Sequence[Sequence[int]], relevant: Sequence[int],
                 layer: int, batch_tokens: int) -> None:
        self.loaded, self.head, self.n = loaded, head, len(ids)
        device = model_device(loaded.model)
        self.relevant = torch.tensor(list(relevant), dtype=torch.long, device=device)
        self.batches = text_batches(loaded, ids, batch_tokens)
        for batch in self.batches:
            batch.input_ids, batch.attention_mask = batch.input_ids.to(device), batch.attention_mask.to(device)
            batch.prefix = clean_prefix(loaded, batch.input_ids, batch.attention_mask, layer)

    def scores(self, edits: Sequence[UnitEdit] = ()) -> Scores:
        """Scores with `edits` made (none: the clean model). An edit with one row of values per text is
        cut to each batch's texts."""
        loss, rel = np.zeros(self.n), np.zeros(self.n)
        for batch in self.batches:
            own = [_rows_of(e, batch.order) for e in edits]
            logits = edited_logits(self.loaded, self.head, batch.input_ids, batch.attention_mask, own, batch.prefix)
            b_loss, b_rel = score_logits(logits, batch.input_ids, batch.attention_mask, self.relevant)
            loss[batch.order], rel[batch.order] = b_loss, b_rel
        return Scores(loss, rel)


def _rows_of(edit: UnitEdit, order: list[int]) -> UnitEdit:
    if edit.values.ndim == 1:
        return edit
    return UnitEdit(edit.site, edit.layer, edit.units, edit.values[order], edit.add)


@dataclass
class Contrast:
    """Scores of the feature's texts and of the control texts under one edit."""

    feature: Scores
    control: Scores


def effect(clean: Contrast, edited: Contrast) -> tuple[float, float]:
    """(loss effect, relevant-token effect): the mean change on the feature's texts minus the mean change on
    the control texts. A unit the feature needs raises the loss (> 0) and lowers the mass on its tokens (< 0)."""
    loss = float(np.mean(edited.feature.loss - clean.feature.loss) - np.mean(edited.control.loss - clean.control.loss))
    rel = float(np.mean(edited.feature.relevant - clean.feature.relevant)
                - np.mean(edited.control.relevant - clean.control.relevant))
    return loss, rel
