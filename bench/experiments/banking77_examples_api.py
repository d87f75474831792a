"""Banking77 from 10 training examples per label (seed 0), added through POST /admin/tasks of a running service,
scored on dev through /classify/batch (issue #27). Run from the repository root against a service on a copy of a bundle
with an embedding task and Admin:ApiKey=k, e.g. ASPNETCORE_URLS=http://127.0.0.1:5271:
    /usr/bin/python3 bench/experiments/banking77_examples_api.py
"""
import json, sys, time, urllib.request
sys.path.insert(0, "training")
from pathlib import Path
from mtbert.embedding_eval import _rows, sample_examples

BASE = "http://127.0.0.1:5271"
def post(path, body, key=None):
    req = urllib.request.Request(BASE + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json", **({"X-Api-Key": key} if key else {})})
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.loads(r.read())

data = Path("../shared/data")
examples = sample_examples(_rows(data, "banking77", "train"), 10, 0)
t = time.time()
answer = post("/admin/tasks", {"name": "banking_examples", "output": {"kind": "examples", "examples": examples}}, key="k")
print("added", answer, f"{time.time() - t:.1f}s")
dev = _rows(data, "banking77", "dev")
right = fallbacks = 0
for start in range(0, len(dev), 64):
    chunk = dev[start:start + 64]
    results = post("/classify/batch", {"inputs": [{"text": r["text"]} for r in chunk], "tasks": ["banking_examples"]})["results"]
    for row, result in zip(chunk, results):
        r = result["banking_examples"]
        top = r["fallback"]["topLabel"] if "fallback" in r else r["label"]
        fallbacks += "fallback" in r
        right += top == row["label"]
print(f"dev accuracy (nearest centroid, through the API): {100 * right / len(dev):.2f}% of {len(dev)}; fallback label answered for {fallbacks}")
v = post("/v1/embeddings", {"model": "sentence-transformers/all-MiniLM-L6-v2", "input": ["hello"]})
print("v1/embeddings dims", len(v["data"][0]["embedding"]), v["usage"])
