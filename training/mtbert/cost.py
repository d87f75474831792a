"""Serving cost of a head, in layer-equivalents per token: a full layer of the pretrained model
costs 1 per token (its projections and feed-forward block: 4·h·h + 2·h·I multiply-adds, 12 h²
for BERT's shapes). The token-mixing terms (attention scores) are left out: at the utterance
lengths served they are a few percent of a layer.

- A layer that reads every token (every layer of a head with per-token outputs, tagging; every
  layer but the last of a classification or regression head) costs its width: `layer_cost`.
- A classification or regression head's last layer runs on [CLS] alone with folded key and value
  projections (modeling.BertSelfAttention.forward_cls): per token, scoring and pooling cost
  2 × heads × h; once per utterance, the rest costs one token of the layer (`1 / tokens`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .checkpoint import BertConfig

if TYPE_CHECKING:
    from .kinds import OutputKind


def _per_token(config: BertConfig) -> int:
    inner = config.num_attention_heads * config.head_size
    return 4 * config.hidden_size * inner + 2 * config.hidden_size * config.intermediate_size


def layer_cost(layer: BertConfig, base: BertConfig) -> float:
    """A layer shaped by `layer` (a `BertConfig.thinned` one, or `base` itself) per token, in full `base` layers."""
    return _per_token(layer) / _per_token(base)


def head_cost(kind: OutputKind, layers: int, layer: BertConfig, base: BertConfig, mean_tokens: float) -> float:
    """Per-token cost of a head of `layers` layers shaped by `layer`, for utterances of `mean_tokens` tokens."""
    if layers == 0:
        return 0.0  # the output layer alone, on [CLS] (or per token: a classifier, not a layer)
    full = layer_cost(layer, base)
    if kind.per_token:
        return layers * full
    cls_layer = 2 * layer.num_attention_heads * layer.hidden_size / _per_token(base) + full / mean_tokens
    return (layers - 1) * full + cls_layer
