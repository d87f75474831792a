"""BERT in plain PyTorch, with Hugging Face parameter names so any HF BERT checkpoint loads.

The model is split the way we serve it: a frozen `Trunk` (embeddings + bottom layers, shared by
every task) and a per-task `TaskHead` (a few transformer layers + an output layer).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .checkpoint import BertConfig

if TYPE_CHECKING:
    from .kinds import OutputKind

# Added to attention scores of padding positions; large enough to zero them after softmax,
# small enough to stay finite in float32 and float16.
MASK_VALUE = -10000.0


def extended_attention_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """[batch, seq] of 1/0 -> [batch, 1, 1, seq] additive mask."""
    return (1.0 - attention_mask[:, None, None, :].to(torch.float32)) * MASK_VALUE


class BertEmbeddings(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        # The int8 table and its row scales, once `quantize_words_int8` ran.
        self.register_buffer("word_codes", None)
        self.register_buffer("word_scales", None)

    def quantize_words_int8(self) -> None:
        """Replaces the word-embedding table (the bulk of a trunk file) by int8 codes with one
        scale per row: row ≈ codes × scale, the scale rounded to float16 so that the bundle's
        float16 storage keeps it exact. The exported graph gathers codes and scales of the
        input ids and multiplies, so training, evaluation and serving all see the same values."""
        with torch.no_grad():
            table = self.word_embeddings.weight.float()
            scales = (table.abs().amax(dim=1, keepdim=True) / 127).half().float()
            scales = torch.where(scales > 0, scales, torch.ones_like(scales))
            codes = torch.round(table / scales).clamp(-127, 127).to(torch.int8)
        self.word_codes, self.word_scales = codes, scales
        del self.word_embeddings

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0)
        if self.word_codes is not None and self.word_scales is not None:
            words = self.word_codes[input_ids].float() * self.word_scales[input_ids]
        else:
            words = self.word_embeddings(input_ids)
        x = words + self.position_embeddings(positions) + self.token_type_embeddings(token_type_ids)
        return self.dropout(self.LayerNorm(x))


class RowwiseInt8Linear(nn.Linear):
    """A linear layer that computes as ONNX Runtime does once `export.quantize_matmuls_int8` has
    rewritten its MatMul: weights in int8 with one symmetric scale per output column, activations
    in int8 with one symmetric scale per row (token), so a row's result never depends on the other
    rows of its batch. The integer products are summed exactly (as ONNX Runtime's int32
    accumulator does), then scaled in the same order: ((acc × column scale) × row scale) + bias.
    While exporting it traces as a plain float MatMul, which the rewrite turns into the int8 ops."""

    codes: torch.Tensor
    scales: torch.Tensor

    @staticmethod
    def from_linear(linear: nn.Linear) -> "RowwiseInt8Linear":
        layer = RowwiseInt8Linear(linear.in_features, linear.out_features, bias=linear.bias is not None)
        layer.load_state_dict(linear.state_dict())
        layer.weight.requires_grad_(False)
        layer.codes, layer.scales = layer.weight_codes()  # frozen weights: quantized once
        return layer

    def weight_codes(self) -> tuple[torch.Tensor, torch.Tensor]:
        """[out, in] int8 codes and the [out] scales: weight ≈ codes × scale (per output column
        of the transposed MatMul weight); the export writes these into the graph."""
        weight = self.weight.detach().float()
        scales = weight.abs().amax(dim=1) / 127.0
        scales = torch.where(scales == 0, torch.ones_like(scales), scales)
        return torch.round(weight / scales[:, None]).clamp(-127, 127), scales

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.onnx.is_in_onnx_export():
            return super().forward(x)
        codes, weight_scales = self.codes, self.scales
        absmax = torch.maximum(x.amax(dim=-1, keepdim=True), -x.amin(dim=-1, keepdim=True)).clamp_min(1e-12)
        row_scales = absmax / 127.0
        # uint8 around a zero point of 128 in the graph: the same integers, shifted.
        quantized = torch.round(x / row_scales).clamp(-128, 127)
        # Integer sums are exact in float32 below 2^24; wider layers sum in float64.
        exact = torch.float32 if self.in_features * 128 * 127 < 2**24 else torch.float64
        acc = (quantized.to(exact) @ codes.to(exact).t()).float()
        y = acc * weight_scales * row_scales
        return y + self.bias if self.bias is not None else y


class BertSelfAttention(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_size = config.head_size
        inner = self.num_heads * self.head_size  # hidden_size, except in a thinned layer
        self.query = nn.Linear(config.hidden_size, inner)
        self.key = nn.Linear(config.hidden_size, inner)
        self.value = nn.Linear(config.hidden_size, inner)
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        batch, seq, _ = x.shape
        return x.view(batch, seq, self.num_heads, self.head_size).transpose(1, 2)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        q, k, v = self._split(self.query(hidden)), self._split(self.key(hidden)), self._split(self.value(hidden))
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_size) + mask
        context = self.dropout(scores.softmax(dim=-1)) @ v
        batch, _, seq, _ = context.shape
        return context.transpose(1, 2).reshape(batch, seq, self.num_heads * self.head_size)

    def forward_cls(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Attention output for the [CLS] query alone ([batch, 1, hidden]), without projecting
        keys and values of the other tokens. With one query per head the projections fold:
        q·(Wk h + bk) = (Wkᵀ q)·h + q·bk, where q·bk is the same for every token and cancels in
        the softmax; and Σ p (Wv h + bv) = Wv (Σ p h) + bv because the weights p sum to 1. So
        each head scores and pools the raw hidden states: O(tokens × hidden) per head instead
        of O(tokens × hidden²) for the key and value projections. Equal to `forward(...)[:, :1]`."""
        # Shapes from the configuration, not from `hidden`: the exported graph then reshapes the key
        # and value weights once, at export (constant folding), instead of on every run.
        size = self.key.in_features
        q = self.query(hidden[:, :1]).reshape(-1, self.num_heads, 1, self.head_size)
        folded_q = q @ self.key.weight.reshape(self.num_heads, self.head_size, size)  # [batch, heads, 1, hidden]
        states = hidden.unsqueeze(1)  # [batch, 1, seq, hidden], shared by every head
        scores = folded_q @ states.transpose(-1, -2) / math.sqrt(self.head_size) + mask
        pooled = self.dropout(scores.softmax(dim=-1)) @ states  # [batch, heads, 1, hidden]
        value = self.value.weight.reshape(self.num_heads, self.head_size, size).transpose(-1, -2)  # [heads, hidden, head_size]
        context = pooled @ value + self.value.bias.reshape(self.num_heads, 1, self.head_size)
        # [batch, heads, 1, head_size] is laid out as [batch, 1, heads, head_size]: no transpose needed.
        return context.reshape(-1, 1, self.num_heads * self.head_size)


class BertDenseOutput(nn.Module):
    """dense -> dropout -> residual -> LayerNorm, used after attention and after the FFN."""

    def __init__(self, in_size: int, hidden_size: int, eps: float, dropout: float) -> None:
        super().__init__()
        self.dense = nn.Linear(in_size, hidden_size)
        self.LayerNorm = nn.LayerNorm(hidden_size, eps=eps)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class BertAttention(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.self = BertSelfAttention(config)
        self.output = BertDenseOutput(config.num_attention_heads * config.head_size, config.hidden_size, config.layer_norm_eps, config.hidden_dropout_prob)


class BertIntermediate(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.dense(x))


class BertLayer(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.attention = BertAttention(config)
        self.intermediate = BertIntermediate(config)
        self.output = BertDenseOutput(config.intermediate_size, config.hidden_size, config.layer_norm_eps, config.hidden_dropout_prob)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor, cls_only: bool = False) -> torch.Tensor:
        """With `cls_only`, computes the output for the first position alone ([batch, 1, hidden]):
        attention reads every token (folded projections, see `BertSelfAttention.forward_cls`),
        the attention output and feed-forward block run for [CLS] only. Equal to
        `forward(...)[:, :1]`."""
        if cls_only:
            attended = self.attention.output(self.attention.self.forward_cls(hidden, mask), hidden[:, :1])
        else:
            attended = self.attention.output(self.attention.self(hidden, mask), hidden)
        return self.output(self.intermediate(attended), attended)


def thin_layer(layer: BertLayer, config: BertConfig) -> BertLayer:
    """A copy of `layer` narrowed to `config` (a `BertConfig.thinned` one): it keeps the attention
    heads and feed-forward units that move the residual stream most (weight-magnitude importance:
    a head's value and output projection norms, a unit's input and output weight norms), in their
    original order. A starting point for distillation, not a finished layer."""
    attention, heads, size = layer.attention.self, config.num_attention_heads, config.head_size
    if size != attention.head_size or heads > attention.num_heads or config.intermediate_size > layer.intermediate.dense.out_features:
        raise ValueError("a thinned layer keeps the head width and can only drop heads and units")
    hidden = attention.value.in_features
    with torch.no_grad():
        value = attention.value.weight.view(attention.num_heads, size, hidden)
        out = layer.attention.output.dense.weight.view(hidden, attention.num_heads, size)
        head_score = value.flatten(1).norm(dim=1) * out.transpose(0, 1).flatten(1).norm(dim=1)
        kept_heads = head_score.topk(heads).indices.sort().values
        rows = (kept_heads[:, None] * size + torch.arange(size)).flatten()  # their rows in Q, K, V
        unit_score = layer.intermediate.dense.weight.norm(dim=1) * layer.output.dense.weight.norm(dim=0)
        units = unit_score.topk(config.intermediate_size).indices.sort().values
        thin = BertLayer(config)
        for name in ("query", "key", "value"):
            source, target = getattr(attention, name), getattr(thin.attention.self, name)
            target.weight.copy_(source.weight[rows])
            target.bias.copy_(source.bias[rows])
        thin.attention.output.dense.weight.copy_(layer.attention.output.dense.weight[:, rows])
        thin.attention.output.dense.bias.copy_(layer.attention.output.dense.bias)
        thin.attention.output.LayerNorm.load_state_dict(layer.attention.output.LayerNorm.state_dict())
        thin.intermediate.dense.weight.copy_(layer.intermediate.dense.weight[units])
        thin.intermediate.dense.bias.copy_(layer.intermediate.dense.bias[units])
        thin.output.dense.weight.copy_(layer.output.dense.weight[:, units])
        thin.output.dense.bias.copy_(layer.output.dense.bias)
        thin.output.LayerNorm.load_state_dict(layer.output.LayerNorm.state_dict())
    return thin


def quantize_layer_matmuls(layer: BertLayer) -> None:
    """The six weight matmuls of a layer (query, key, value, attention output, feed-forward in and out) in int8."""
    for owner, name in ((layer.attention.self, "query"), (layer.attention.self, "key"), (layer.attention.self, "value"),
                        (layer.attention.output, "dense"), (layer.intermediate, "dense"), (layer.output, "dense")):
        setattr(owner, name, RowwiseInt8Linear.from_linear(getattr(owner, name)))


class Trunk(nn.Module):
    """Embeddings and the bottom `num_layers` encoder layers; returns every layer's output."""

    def __init__(self, config: BertConfig, num_layers: int) -> None:
        super().__init__()
        if not 0 <= num_layers <= config.num_hidden_layers:
            raise ValueError(f"trunk depth {num_layers} is outside 0..{config.num_hidden_layers}")
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.layer = nn.ModuleList(BertLayer(config) for _ in range(num_layers))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor) -> list[torch.Tensor]:
        """Returns [embeddings, layer 1, ..., layer N] outputs."""
        mask = extended_attention_mask(attention_mask)
        hidden = self.embeddings(input_ids, token_type_ids)
        outputs = [hidden]
        for layer in self.layer:
            hidden = layer(hidden, mask)
            outputs.append(hidden)
        return outputs

    def quantize_matmuls_int8(self) -> None:
        """Every weight matmul of the encoder layers in int8 (`RowwiseInt8Linear`): 1.4-2x faster
        on CPUs with integer dot products, batch-independent. Run after the weights have their final
        (float16-rounded) values: the export's rewrite derives the same codes from the stored weights."""
        for layer in self.layer:
            quantize_layer_matmuls(layer)

    @property
    def int8_matmuls(self) -> bool:
        return any(isinstance(m, RowwiseInt8Linear) for m in self.modules())

    def load_pretrained(self, weights: dict[str, torch.Tensor]) -> None:
        state = {}
        for name in self.state_dict():
            source = name if name.startswith("embeddings.") else "encoder." + name
            if source not in weights:
                raise KeyError(f"checkpoint has no tensor {source}")
            state[name] = weights[source]
        self.load_state_dict(state)


class CRF(nn.Module):
    """Linear-chain CRF over the words of a sentence (one emission row per word: the logits of
    its first piece). transitions[i, j] scores tag i followed by tag j; start/end score the first
    and last tag. Zero-initialised, so an untrained CRF decodes exactly as argmax does."""

    def __init__(self, num_tags: int) -> None:
        super().__init__()
        self.transitions = nn.Parameter(torch.zeros(num_tags, num_tags))
        self.start = nn.Parameter(torch.zeros(num_tags))
        self.end = nn.Parameter(torch.zeros(num_tags))

    def nll(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood of `tags` [batch, words] given `emissions` [batch, words,
        tags]; `mask` [batch, words] is left-aligned (words first, then padding). Rows without
        any word are left out of the mean."""
        rows = mask[:, 0]
        if not bool(rows.any()):
            return emissions.sum() * 0.0
        emissions, tags, mask = emissions[rows], tags[rows], mask[rows]
        return (self._log_partition(emissions, mask) - self._path_score(emissions, tags, mask)).mean()

    def _path_score(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        keep = mask.to(emissions.dtype)
        emitted = emissions.gather(2, tags.unsqueeze(-1)).squeeze(-1)  # [batch, words]
        moves = self.transitions[tags[:, :-1], tags[:, 1:]] * keep[:, 1:]
        last = tags.gather(1, (mask.sum(1, keepdim=True) - 1).clamp(min=0)).squeeze(1)
        return self.start[tags[:, 0]] + (emitted * keep).sum(1) + moves.sum(1) + self.end[last]

    def _log_partition(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        score = self.start + emissions[:, 0]  # [batch, tags]: log-sum over paths ending in each tag
        for i in range(1, emissions.shape[1]):
            step = torch.logsumexp(score.unsqueeze(2) + self.transitions + emissions[:, i].unsqueeze(1), dim=1)
            score = torch.where(mask[:, i : i + 1], step, score)
        return torch.logsumexp(score + self.end, dim=1)

    def decode(self, emissions: torch.Tensor) -> list[int]:
        """Viterbi: the best tag path for one sentence's emissions [words, tags]; ties go to the
        lowest tag index (as the service's decoder does)."""
        return viterbi(emissions.detach().numpy(), self.transitions.detach().numpy(), self.start.detach().numpy(), self.end.detach().numpy())


def viterbi(emissions: np.ndarray, transitions: np.ndarray, start: np.ndarray, end: np.ndarray) -> list[int]:
    """Best path for emissions [words, tags]; np.argmax keeps the first (lowest) index on ties."""
    if len(emissions) == 0:
        return []
    score = start + emissions[0]
    back = []
    for row in emissions[1:]:
        total = score[:, None] + transitions  # [from, to]
        best = total.argmax(0)
        score = total[best, np.arange(len(best))] + row
        back.append(best)
    path = [int((score + end).argmax())]
    for best in reversed(back):
        path.append(int(best[path[-1]]))
    return path[::-1]


class TaskHead(nn.Module):
    """A task's own transformer layers on top of trunk layer `branch_layer`, and its output layer.

    Logits [batch, outputs] from the [CLS] row, or, for a kind with per-token outputs (`kind.per_token`,
    tagging), [batch, seq, outputs] from every token, optionally decoded by a CRF (`crf`), which is
    not part of the exported graph: the service decodes with its matrices.
    """

    def __init__(self, config: BertConfig, num_layers: int, kind: OutputKind, num_outputs: int, crf: bool = False) -> None:
        super().__init__()
        if crf and not kind.supports_crf:
            raise ValueError(f"a {kind.name} head has no CRF layer")
        self.config = config
        self.kind = kind
        self.layer = nn.ModuleList(BertLayer(config) for _ in range(num_layers))
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, num_outputs)
        self.crf = CRF(num_outputs) if crf else None

    @property
    def reads_cls_only(self) -> bool:
        return not self.kind.per_token

    def quantize_token_layers_int8(self) -> None:
        """The layers that run on every token in int8, as an int8 trunk's are: all of a tagging
        head's, all but the last of a classification or regression head's. The [CLS]-only last layer
        stays float32: one row per utterance is too little work to pay for quantizing it (and its
        folded key and value projections are not plain matmuls). Call on the finished head."""
        token_layers = self.layer if not self.reads_cls_only else self.layer[:-1]
        for layer in token_layers:
            quantize_layer_matmuls(layer)

    def forward_layers(self, hidden: torch.Tensor, attention_mask: torch.Tensor, cls_only_last: bool = False) -> list[torch.Tensor]:
        mask = extended_attention_mask(attention_mask)
        outputs = []
        for index, layer in enumerate(self.layer):
            hidden = layer(hidden, mask, cls_only=cls_only_last and index == len(self.layer) - 1)
            outputs.append(hidden)
        return outputs

    def logits_from(self, last_hidden: torch.Tensor) -> torch.Tensor:
        features = last_hidden if self.kind.per_token else last_hidden[:, 0]
        return self.classifier(self.dropout(features))

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor, cls_only_last: bool = False) -> torch.Tensor:
        layers = self.forward_layers(hidden, attention_mask, cls_only_last and self.reads_cls_only)
        return self.logits_from(layers[-1] if layers else hidden)

    def init_layers_from(self, weights: dict[str, torch.Tensor], first_encoder_layer: int) -> None:
        """Initialises layer i from encoder layer `first_encoder_layer + i` of a checkpoint."""
        for index, layer in enumerate(self.layer):
            prefix = f"encoder.layer.{first_encoder_layer + index}."
            layer.load_state_dict({name: weights[prefix + name] for name in layer.state_dict()})


class ExportedHead(nn.Module):
    """The graph that serving runs: [CLS]-only last layer where the output reads [CLS] alone."""

    def __init__(self, head: TaskHead) -> None:
        super().__init__()
        self.head = head

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.head(hidden_states, attention_mask, cls_only_last=True)


class ExportedTrunk(nn.Module):
    """Trunk graph with one named output per requested layer."""

    def __init__(self, trunk: Trunk, output_layers: list[int]) -> None:
        super().__init__()
        self.trunk = trunk
        self.output_layers = output_layers

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outputs = self.trunk(input_ids, attention_mask, token_type_ids)
        return tuple(outputs[layer] for layer in self.output_layers)


class SingleTaskModel(nn.Module):
    """A whole single-task BERT (trunk to the branch layer + the task's head): the deployment
    that one-trunk-many-heads replaces, exported for the benchmark."""

    def __init__(self, trunk: Trunk, branch_layer: int, head: TaskHead) -> None:
        super().__init__()
        self.trunk = trunk
        self.branch_layer = branch_layer
        self.head = head

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        hidden = self.trunk(input_ids, attention_mask, token_type_ids)[self.branch_layer]
        return self.head(hidden, attention_mask)
