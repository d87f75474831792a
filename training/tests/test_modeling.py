from __future__ import annotations

from pathlib import Path

import torch

from mtbert.checkpoint import load_checkpoint
from mtbert.kinds import kind_named
from mtbert.modeling import BertLayer, ExportedHead, TaskHead, Trunk, thin_layer


def test_cls_only_layer_equals_the_full_layer_at_cls(tiny_checkpoint: Path) -> None:
    config = load_checkpoint(tiny_checkpoint).config
    torch.manual_seed(0)
    layer = BertLayer(config).eval()
    hidden = torch.randn(3, 9, config.hidden_size)
    mask = torch.ones(3, 9, dtype=torch.long)
    mask[1, 5:] = 0
    additive = (1.0 - mask[:, None, None, :].float()) * -10000.0
    full = layer(hidden, additive)[:, :1]
    cls_only = layer(hidden, additive, cls_only=True)
    assert cls_only.shape == (3, 1, config.hidden_size)
    assert torch.allclose(full, cls_only, atol=1e-6)


def _masked_input(config, seq: int = 9) -> tuple[torch.Tensor, torch.Tensor]:  # noqa: ANN001
    hidden = torch.randn(3, seq, config.hidden_size)
    mask = torch.ones(3, seq, dtype=torch.long)
    mask[1, 5:] = 0
    return hidden, (1.0 - mask[:, None, None, :].float()) * -10000.0


def test_thinning_to_every_head_and_unit_keeps_the_layer(tiny_checkpoint: Path) -> None:
    config = load_checkpoint(tiny_checkpoint).config
    torch.manual_seed(0)
    layer = BertLayer(config).eval()
    hidden, additive = _masked_input(config)
    same = thin_layer(layer, config.thinned(1.0)).eval()
    assert torch.allclose(same(hidden, additive), layer(hidden, additive), atol=1e-6)


def test_a_thinned_layer_keeps_the_strongest_heads_and_units_and_folds_at_cls(tiny_checkpoint: Path) -> None:
    config = load_checkpoint(tiny_checkpoint).config  # 4 heads of 8, 64 feed-forward units
    torch.manual_seed(0)
    layer = BertLayer(config).eval()
    size = config.head_size
    with torch.no_grad():
        layer.attention.self.value.weight[2 * size : 3 * size] *= 10  # head 2 dominates
        layer.intermediate.dense.weight[[5, 40]] *= 10  # units 5 and 40 dominate
    narrow = config.thinned(0.25)  # 1 head, 16 units
    assert (narrow.num_attention_heads, narrow.head_size, narrow.intermediate_size) == (1, size, 16)
    thin = thin_layer(layer, narrow).eval()
    assert torch.equal(thin.attention.self.value.weight, layer.attention.self.value.weight[2 * size : 3 * size])
    kept = [int(torch.nonzero((layer.intermediate.dense.weight == row).all(1))[0]) for row in thin.intermediate.dense.weight]
    assert {5, 40} <= set(kept) and kept == sorted(kept)
    assert sum(p.numel() for p in thin.parameters()) < sum(p.numel() for p in layer.parameters()) / 3
    hidden, additive = _masked_input(config)
    # The folded [CLS]-only path holds for a layer whose attention is narrower than the hidden size.
    assert torch.allclose(thin(hidden, additive)[:, :1], thin(hidden, additive, cls_only=True), atol=1e-6)


def test_exported_head_graph_module_matches_training_forward(tiny_checkpoint: Path) -> None:
    config = load_checkpoint(tiny_checkpoint).config
    torch.manual_seed(0)
    head = TaskHead(config, 2, kind_named("classification"), 5).eval()
    hidden = torch.randn(2, 6, config.hidden_size)
    mask = torch.tensor([[1] * 6, [1] * 3 + [0] * 3])
    assert torch.allclose(ExportedHead(head)(hidden, mask), head(hidden, mask), atol=1e-6)


def test_padding_does_not_change_outputs(tiny_checkpoint: Path) -> None:
    checkpoint = load_checkpoint(tiny_checkpoint)
    trunk = Trunk(checkpoint.config, 3)
    trunk.load_pretrained(checkpoint.weights)
    trunk.eval()
    ids = torch.tensor([[101, 7592, 2088, 102]])
    alone = trunk(ids, torch.ones_like(ids), torch.zeros_like(ids))[-1]
    padded_ids = torch.tensor([[101, 7592, 2088, 102, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 0, 0]])
    padded = trunk(padded_ids, mask, torch.zeros_like(padded_ids))[-1]
    assert torch.allclose(alone, padded[:, :4], atol=1e-5)


def test_trunk_layers_are_the_pretrained_ones(tiny_checkpoint: Path) -> None:
    checkpoint = load_checkpoint(tiny_checkpoint)
    trunk = Trunk(checkpoint.config, 2)
    trunk.load_pretrained(checkpoint.weights)
    assert torch.equal(trunk.layer[1].output.dense.weight, checkpoint.weights["encoder.layer.1.output.dense.weight"])


def test_int8_word_embeddings_stay_within_half_a_step_of_the_table(tiny_checkpoint: Path) -> None:
    checkpoint = load_checkpoint(tiny_checkpoint)
    trunk = Trunk(checkpoint.config, 1)
    trunk.load_pretrained(checkpoint.weights)
    table = trunk.embeddings.word_embeddings.weight.detach().clone()
    trunk.embeddings.quantize_words_int8()
    codes, scales = trunk.embeddings.word_codes, trunk.embeddings.word_scales
    assert codes is not None and scales is not None and codes.dtype == torch.int8
    assert torch.equal(scales, scales.half().float())  # float16 storage keeps the scales exact
    restored = codes.float() * scales
    assert bool(((restored - table).abs() <= scales / 2 + 1e-7).all())
    # The int8 path embeds exactly as a float table holding the restored rows.
    reference = Trunk(checkpoint.config, 1)
    reference.load_pretrained(checkpoint.weights)
    with torch.no_grad():
        reference.embeddings.word_embeddings.weight.copy_(restored)
    ids = torch.tensor([[101, 7592, 2088, 102]])
    types = torch.zeros_like(ids)
    assert torch.allclose(trunk.embeddings.eval()(ids, types), reference.embeddings.eval()(ids, types), atol=1e-6)
