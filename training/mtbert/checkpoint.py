"""Loading Hugging Face BERT checkpoints without `transformers`.

Reads `config.json`, `vocab.txt` and either `model.safetensors` (parsed with numpy: an 8-byte
header length, a JSON header, then raw little-endian tensors) or `pytorch_model.bin`.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch


class CheckpointError(ValueError):
    """A checkpoint folder that cannot be used, with the reason."""


@dataclass(frozen=True)
class BertConfig:
    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    hidden_act: str = "gelu"
    # Width of one attention head when it is not hidden_size / num_attention_heads: a thinned
    # student layer keeps the pretrained head width with fewer heads (see `thinned`).
    attention_head_size: int | None = None

    @property
    def head_size(self) -> int:
        return self.attention_head_size or self.hidden_size // self.num_attention_heads

    def thinned(self, width: float) -> "BertConfig":
        """The configuration of a layer `width` times as wide inside (0 < width <= 1): that fraction
        of the attention heads (each as wide as before) and of the feed-forward units, at least one
        of each. The hidden size, read and written by every layer, stays. Width 1 is this layer."""
        if not 0 < width <= 1:
            raise ValueError(f"a layer width must be in (0, 1], not {width}")
        if width == 1:
            return self
        return replace(
            self,
            num_attention_heads=max(1, round(self.num_attention_heads * width)),
            intermediate_size=max(1, round(self.intermediate_size * width)),
            attention_head_size=self.head_size,
        )

    @staticmethod
    def from_dict(raw: dict) -> "BertConfig":
        if raw.get("model_type", "bert") != "bert":
            raise CheckpointError(f"config.json: model_type is {raw.get('model_type')!r}, expected 'bert'")
        if raw.get("hidden_act", "gelu") != "gelu":
            raise CheckpointError(f"config.json: hidden_act {raw['hidden_act']!r} is not supported (only 'gelu')")
        fields = BertConfig.__dataclass_fields__
        missing = [f for f in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size") if f not in raw]
        if missing:
            raise CheckpointError(f"config.json: missing field(s) {', '.join(missing)}")
        return BertConfig(**{k: v for k, v in raw.items() if k in fields})

    def to_dict(self) -> dict:
        """Hugging Face config fields (attention_head_size only where a thinned layer sets it)."""
        return {k: v for k, v in self.__dict__.items() if not (k == "attention_head_size" and v is None)}


_SAFETENSORS_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "I32": np.int32}


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Reads every tensor of a .safetensors file as a float32 (or integer) numpy array."""
    data = path.read_bytes()
    if len(data) < 8:
        raise CheckpointError(f"{path}: too short to be a safetensors file")
    (header_len,) = struct.unpack("<Q", data[:8])
    try:
        header = json.loads(data[8 : 8 + header_len])
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{path}: bad safetensors header ({error})") from error
    body = memoryview(data)[8 + header_len :]
    tensors: dict[str, np.ndarray] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype, shape, (start, end) = info["dtype"], info["shape"], info["data_offsets"]
        raw = body[start:end]
        if dtype == "BF16":
            # bfloat16 is the top half of a float32: widen by shifting the bits up.
            bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            array = bits.view(np.float32)
        elif dtype in _SAFETENSORS_DTYPES:
            array = np.frombuffer(raw, dtype=np.dtype(_SAFETENSORS_DTYPES[dtype]).newbyteorder("<"))
        else:
            raise CheckpointError(f"{path}: tensor {name} has unsupported dtype {dtype}")
        array = array.reshape(shape)
        tensors[name] = array.astype(np.float32) if array.dtype.kind == "f" else array.copy()
    return tensors


@dataclass
class Checkpoint:
    """A pretrained BERT: its config, vocabulary path and float32 weights (HF names, no `bert.` prefix)."""

    path: Path
    name: str
    config: BertConfig
    vocab_path: Path
    weights: dict[str, torch.Tensor]

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.weights)


def _strip_prefix(name: str) -> str:
    return name[len("bert.") :] if name.startswith("bert.") else name


def load_checkpoint(path: str | Path) -> Checkpoint:
    folder = Path(path)
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: checkpoint folder not found")
    config_path, vocab_path = folder / "config.json", folder / "vocab.txt"
    for required in (config_path, vocab_path):
        if not required.is_file():
            raise CheckpointError(f"{folder}: {required.name} is missing")
    try:
        config = BertConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")))
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{config_path}: not valid JSON ({error})") from error

    if (folder / "model.safetensors").is_file():
        arrays = read_safetensors(folder / "model.safetensors")
        weights = {_strip_prefix(k): torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}
    elif (folder / "pytorch_model.bin").is_file():
        state = torch.load(folder / "pytorch_model.bin", map_location="cpu")
        weights = {_strip_prefix(k): v.float() if v.is_floating_point() else v for k, v in state.items()}
    else:
        raise CheckpointError(f"{folder}: neither model.safetensors nor pytorch_model.bin is present")

    # Older checkpoints name LayerNorm parameters gamma/beta.
    weights = {k.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias"): v for k, v in weights.items()}
    if "embeddings.word_embeddings.weight" not in weights:
        raise CheckpointError(f"{folder}: no embeddings.word_embeddings.weight tensor: not a BERT checkpoint")
    return Checkpoint(path=folder, name=folder.name, config=config, vocab_path=vocab_path, weights=weights)


def fingerprint(weights: dict[str, torch.Tensor]) -> str:
    """SHA-256 of the embeddings and encoder weights as float32, in name order (docs/bundle-format.md)."""
    digest = hashlib.sha256()
    for name in sorted(k for k in weights if k.startswith(("embeddings.", "encoder.layer."))):
        if name.endswith("position_ids"):
            continue  # a buffer some exporters save, not a weight
        digest.update(name.encode("utf-8") + b"\0")
        digest.update(weights[name].detach().to(torch.float32).contiguous().numpy().astype("<f4").tobytes())
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_safetensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    """Writes float32 tensors as a .safetensors file (used for test and fixture checkpoints)."""
    header: dict[str, dict] = {}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        data = tensors[name].detach().to(torch.float32).contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    raw_header = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw_header += b" " * (-len(raw_header) % 8)
    path.write_bytes(struct.pack("<Q", len(raw_header)) + raw_header + b"".join(blobs))
