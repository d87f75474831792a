"""The README's "Your own task" section, run as written on a small sample: its shell blocks are
extracted from training/README.md and executed (a tiny checkpoint, bundle and CSV stand in for
the real ones; the service is the one built from this repository)."""

from __future__ import annotations

import csv
import json
import os
import re
import socket
import subprocess
from pathlib import Path

import pytest

from mtbert.bundle import BundleWriter
from mtbert.fixtures import make_tiny_checkpoint
from mtbert.pipeline import TaskSession
from mtbert.train import Hyper

from .conftest import REPO, VOCAB

MARKER = "<!-- own-task: run by tests/test_own_task.py -->"
API = REPO / "src" / "MultiTaskBert.Api" / "bin" / "Debug" / "net10.0" / "MultiTaskBert.Api.dll"


def readme_blocks() -> list[str]:
    text = (REPO / "training" / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(re.escape(MARKER) + r"\n```sh\n(.*?)```", text, re.S)
    assert len(blocks) == 3, "the section's three runnable blocks"
    return blocks


def substitute(script: str, values: dict[str, str], port: int) -> str:
    """Points the documented commands at the test's stand-ins; every substitution must apply."""
    for name, value in values.items():
        script, count = re.subn(rf"^{name}=.*$", f"{name}={value}", script, flags=re.M)
        assert count == 1, name
    for old, new in (("dotnet run --project src/MultiTaskBert.Api --", f"dotnet {API}"), ("localhost:5176", f"localhost:{port}")):
        assert old in script, old
        script = script.replace(old, new)
    return script


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def json_objects_in(text: str) -> list[dict]:
    """Every JSON object that starts anywhere in text. curl prints no newline after an answer, and the
    service in the background shares the terminal: a log line written in pieces can end up on either
    side of an answer, so answers are not found by line."""
    decoder = json.JSONDecoder()
    found = []
    for start in (m.start() for m in re.finditer(r'\{"', text)):
        try:
            value = decoder.raw_decode(text, start)[0]
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            found.append(value)
    return found


def test_the_readme_takes_a_csv_to_a_served_and_hot_replaced_head(tiny_data: Path, tmp_path: Path) -> None:
    if not API.is_file():
        pytest.skip(f"{API} not built (./test.sh builds it first: dotnet build MultiTaskBert.sln)")
    # Stand-ins: a tiny 6-layer checkpoint, an int8 bundle on it whose trunk outputs layers 2..5,
    # and SST-2 sample rows written as a CSV with label strings.
    checkpoint = make_tiny_checkpoint(tmp_path / "ckpt", VOCAB, seed=3, num_hidden_layers=6)
    base = tmp_path / "base-bundle"
    writer = BundleWriter(base)
    for task, frozen in (("sst2", 5), ("snips", 4), ("rte", 3), ("stsb", 2)):
        TaskSession.open(checkpoint, tiny_data, task, max_length=32, int8_matmuls=True).partial(frozen, Hyper(epochs=1, batch_size=16, lr=1e-3), tmp_path / "base-runs" / task)
        writer.add(tmp_path / "base-runs" / task, name="tiny", version="1.0.0" if task == "sst2" else None, max_length=32)
    assert json.loads((base / "manifest.json").read_text(encoding="utf-8"))["version"] == "1.0.3"  # each later add bumped it
    data = tmp_path / "my-data"
    data.mkdir()
    for split in ("train", "dev"):
        with open(data / f"{split}.csv", "w", newline="", encoding="utf-8") as stream:
            rows = csv.writer(stream)
            rows.writerow(["text", "label"])
            for line in (tiny_data / "sst2" / f"{split}.jsonl").read_text(encoding="utf-8").splitlines():
                row = json.loads(line)
                rows.writerow([row["text"], ["negative", "positive"][int(row["label"])]])

    root = tmp_path / "root"
    (root / "training").mkdir(parents=True)
    port = free_port()
    script = substitute("\n".join(readme_blocks()), {"DATA": str(data), "PRETRAINED": str(checkpoint), "BUNDLE": str(base)}, port)
    env = {**os.environ, "PYTHONPATH": str(REPO / "training"), "ASPNETCORE_ENVIRONMENT": "Production"}
    result = subprocess.run(
        ["bash", "-c", "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n" + script],
        cwd=root, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert re.search(r"^chosen head: \.\./runs/reviews/f[345]", out, re.M)
    assert "my-bundle: tiny@1.0.4, tasks " in out  # bundle add bumped the copy's version
    answers = json_objects_in(out)
    assert any("results" in a for a in answers), out[-3000:] + result.stderr[-3000:]
    classify = next(a for a in answers if "results" in a)
    # The tiny random checkpoint's features put any text far from the 500 reviews: the out-of-domain
    # fallback may answer; the model's own label is then its topLabel.
    review = classify["results"]["reviews"]
    assert classify["model"] == "tiny@1.0.4" and review.get("fallback", review)["topLabel" if "fallback" in review else "label"] in ("negative", "positive")
    upload = next(a for a in answers if a.get("action"))
    assert (upload["action"], upload["task"], upload["version"], upload["previousVersion"], upload["model"]) == ("replaced", "reviews", 2, 1, "tiny@1.0.5")
    manifest = json.loads((root / "my-bundle" / "manifest.json").read_text(encoding="utf-8"))
    entry = next(t for t in manifest["tasks"] if t["name"] == "reviews")
    assert entry["description"] == "Polarity of a product review." and entry["output"]["labels"] == ["negative", "positive"]
