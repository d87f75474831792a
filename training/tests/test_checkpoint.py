from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from mtbert.checkpoint import CheckpointError, fingerprint, load_checkpoint, read_safetensors


def _write_raw_safetensors(path: Path, name: str, array: np.ndarray, dtype: str, raw: bytes) -> None:
    header = json.dumps({name: {"dtype": dtype, "shape": list(array.shape), "data_offsets": [0, len(raw)]}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + raw)


def test_reads_f16_and_bf16_tensors_as_float32(tmp_path: Path) -> None:
    values = np.array([[1.5, -2.25], [0.0, 1024.0]], dtype=np.float32)
    _write_raw_safetensors(tmp_path / "h.safetensors", "w", values, "F16", values.astype("<f2").tobytes())
    assert np.array_equal(read_safetensors(tmp_path / "h.safetensors")["w"], values)
    bf16 = (values.view(np.uint32) >> 16).astype("<u2").tobytes()  # these values are exact in bfloat16
    _write_raw_safetensors(tmp_path / "b.safetensors", "w", values, "BF16", bf16)
    assert np.array_equal(read_safetensors(tmp_path / "b.safetensors")["w"], values)


def test_loads_the_shared_checkpoint_and_a_pytorch_bin_the_same_way(tiny_checkpoint: Path, tmp_path: Path) -> None:
    checkpoint = load_checkpoint(tiny_checkpoint)
    assert checkpoint.config.num_hidden_layers == 3
    # The same weights saved as pytorch_model.bin (with the bert. prefix) give the same fingerprint.
    other = tmp_path / "bin"
    other.mkdir()
    for name in ("config.json", "vocab.txt"):
        (other / name).write_bytes((tiny_checkpoint / name).read_bytes())
    torch.save({"bert." + k: v.half() for k, v in checkpoint.weights.items()}, other / "pytorch_model.bin")
    reloaded = load_checkpoint(other)
    rounded = {k: v.half().float() for k, v in checkpoint.weights.items()}
    assert reloaded.fingerprint == fingerprint(rounded)
    assert reloaded.fingerprint != checkpoint.fingerprint  # fp16 rounding changed the weights


def test_fingerprint_ignores_storage_and_mlm_head(tiny_checkpoint: Path) -> None:
    weights = load_checkpoint(tiny_checkpoint).weights
    with_mlm = {**weights, "cls.predictions.bias": torch.zeros(3)}
    assert fingerprint(with_mlm) == fingerprint(weights)
    changed = dict(weights)
    changed["encoder.layer.0.output.dense.bias"] = changed["encoder.layer.0.output.dense.bias"] + 1e-3
    assert fingerprint(changed) != fingerprint(weights)


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: None, "checkpoint folder not found"),
        (lambda p: p.mkdir(), "config.json is missing"),
        (lambda p: (p.mkdir(), (p / "config.json").write_text("{"), (p / "vocab.txt").write_text("[PAD]")), "not valid JSON"),
        (lambda p: (p.mkdir(), (p / "config.json").write_text('{"model_type": "gpt2"}'), (p / "vocab.txt").write_text("[PAD]")), "model_type"),
        (
            lambda p: (p.mkdir(), (p / "config.json").write_text(json.dumps({"vocab_size": 5, "hidden_size": 4, "num_hidden_layers": 1, "num_attention_heads": 1, "intermediate_size": 8})), (p / "vocab.txt").write_text("[PAD]")),
            "neither model.safetensors nor pytorch_model.bin",
        ),
    ],
)
def test_bad_checkpoints_are_refused_with_the_reason(tmp_path: Path, setup, message: str) -> None:  # noqa: ANN001
    folder = tmp_path / "ckpt"
    setup(folder)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(folder)
