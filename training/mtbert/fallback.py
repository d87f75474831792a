"""Out-of-scope fallback of a classification head: which rule, at which threshold, chosen on dev.

A rule measures how sure the head is of an input (`measures`); the service answers the fallback
label when the measure is below the threshold (docs/bundle-format.md, `output.fallback`). The
threshold is chosen on the dev split alone, by one stated criterion: the highest out-of-scope recall
whose in-scope accuracy is at most `max_cost` points below the head's accuracy without a fallback.
Out-of-scope examples are the dev examples of the fallback label, when the task has it as a class
(CLINC150's `oos`), plus the out-of-scope examples of a probe task's dev split (e.g. CLINC150's
`oos` queries for Banking77), which measure what the threshold buys on a task without its own.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from .checkpoint import Checkpoint, sha256_file  # noqa: E402
from .data import Example, load_task_spec, read_examples, split_file  # noqa: E402
from .kinds import KINDS  # noqa: E402
from .pipeline import served_dev_logits, served_logits  # noqa: E402
from .runs import WEIGHTS_FILE  # noqa: E402

# Manifest spellings, in the service's order (FallbackPolicy.RuleNames).
RULES = ("maxProbability", "margin", "energy")
FALLBACK_FILE, CURVE_FILE = "fallback.json", "fallback.png"


def measures(logits: torch.Tensor) -> dict[str, np.ndarray]:
    """Each rule's measure of each row of `logits` [n, classes], as the service computes it (float64)."""
    logits = logits.to(torch.float64)
    probabilities = torch.softmax(logits, -1)
    top = probabilities.topk(2, dim=-1).values
    return {
        "maxProbability": top[:, 0].numpy(),
        "margin": (top[:, 0] - top[:, 1]).numpy(),
        "energy": torch.logsumexp(logits, -1).numpy(),
    }


@dataclass
class Curve:
    """A rule's trade-off over its thresholds: in-scope accuracy and out-of-scope recall (%)."""

    thresholds: list[float]
    accuracy: list[float]
    recall: list[float]


@dataclass
class FallbackChoice:
    label: str
    rule: str
    threshold: float
    selection: dict[str, float]  # manifest `selection`: the chosen point and the head without a fallback
    curves: dict[str, Curve]
    chosen: dict[str, dict[str, float]]  # per rule: its best point under the criterion
    weights_sha256: str = ""  # the run's head.pt it was chosen for (a retrained run needs a new choice)

    def manifest_entry(self) -> dict:
        return {"label": self.label, "rule": self.rule, "threshold": self.threshold, "selection": self.selection}

    def save(self, run: Path) -> None:
        (run / FALLBACK_FILE).write_text(json.dumps(asdict(self), indent=2), encoding="utf-8")

    @staticmethod
    def load(run: Path) -> "FallbackChoice | None":
        """The run's fallback, if one was chosen; refused when the run was retrained since."""
        path = run / FALLBACK_FILE
        if not path.is_file():
            return None
        raw = json.loads(path.read_text(encoding="utf-8"))
        raw["curves"] = {rule: Curve(**curve) for rule, curve in raw["curves"].items()}
        choice = FallbackChoice(**raw)
        if choice.weights_sha256 != sha256_file(run / WEIGHTS_FILE):
            raise ValueError(f"{path}: chosen for other weights than {run / WEIGHTS_FILE} (the run was retrained); run `mtbert fallback` again")
        return choice


def _thresholds(values: np.ndarray) -> np.ndarray:
    """Every distinct way to split `values` by "fires below t": midpoints between neighbours, and
    one threshold below all of them (the rule never fires)."""
    distinct = np.unique(values)
    mids = (distinct[:-1] + distinct[1:]) / 2
    return np.concatenate([[distinct[0] - 1e-6], mids, [distinct[-1] + 1e-6]])


def choose_fallback(
    label: str, logits: torch.Tensor, gold: np.ndarray, label_index: int | None, probe_logits: torch.Tensor | None, max_cost: float
) -> FallbackChoice:
    """The rule and threshold with the best out-of-scope recall at most `max_cost` points of in-scope
    accuracy below the head's own (dev). `label_index`: the fallback label's class, when the task
    has one (its dev examples are the out-of-scope ones and predicting it counts as out of scope);
    `probe_logits`: the head's outputs on out-of-scope examples of another dataset. With no
    out-of-scope example at all, the highest threshold within the cost is taken."""
    predicted = logits.argmax(-1).numpy()
    in_scope = gold != label_index if label_index is not None else np.ones(len(gold), dtype=bool)
    correct = (predicted == gold)[in_scope]
    model_says_oos = (predicted == label_index)[~in_scope] if label_index is not None else np.zeros(0, dtype=bool)
    base_accuracy = 100 * correct.mean()
    dev_measures = measures(logits)
    probe_measures = measures(probe_logits) if probe_logits is not None else None
    n_oos = int((~in_scope).sum()) + (len(probe_logits) if probe_logits is not None else 0)
    curves: dict[str, Curve] = {}
    best: dict[str, dict[str, float]] = {}
    for rule in RULES:
        inside = dev_measures[rule][in_scope]
        outside = np.concatenate([dev_measures[rule][~in_scope], probe_measures[rule] if probe_measures is not None else np.zeros(0)])
        thresholds = _thresholds(np.concatenate([inside, outside]))
        # Fires below t: an in-scope answer stays right only if it does not fire; an out-of-scope
        # one is caught if it fires (or the model itself answered the fallback class).
        accuracy = 100 * (correct[None, :] & (inside[None, :] >= thresholds[:, None])).mean(1)
        caught_model = np.concatenate([model_says_oos, np.zeros(n_oos - len(model_says_oos), dtype=bool)])
        recall = 100 * (caught_model[None, :] | (outside[None, :] < thresholds[:, None])).mean(1) if n_oos else np.zeros(len(thresholds))
        curves[rule] = Curve([float(t) for t in thresholds], [float(a) for a in accuracy], [float(r) for r in recall])
        allowed = np.flatnonzero(accuracy >= base_accuracy - max_cost - 1e-9)
        # Best recall within the cost; among equals, the highest threshold (the most cautious answer
        # that costs no more), which is also the rule when there is nothing out of scope to measure.
        pick = allowed[np.lexsort((thresholds[allowed], recall[allowed]))[-1]]
        best[rule] = {"threshold": float(thresholds[pick]), "inScopeAccuracy": float(accuracy[pick]), "oosRecall": float(recall[pick])}
    rule = max(RULES, key=lambda r: (best[r]["oosRecall"], -RULES.index(r)))  # ties: the simplest rule
    without_recall = 100 * model_says_oos.sum() / n_oos if n_oos else 0.0
    selection = {
        "maxCost": float(max_cost),
        "inScopeAccuracy": best[rule]["inScopeAccuracy"],
        "oosRecall": best[rule]["oosRecall"],
        "inScopeAccuracyWithout": float(base_accuracy),
        "oosRecallWithout": float(without_recall),
        "inScopeExamples": float(in_scope.sum()),
        "oosExamples": float(n_oos),
    }
    return FallbackChoice(label, rule, round(best[rule]["threshold"], 9), selection, curves, best)


def plot_curves(choice: FallbackChoice, task: str, path: Path) -> None:
    """In-scope accuracy against out-of-scope recall, one line per rule; the chosen point marked."""
    figure, axes = plt.subplots(figsize=(6, 4), dpi=100)
    for rule, curve in choice.curves.items():
        axes.plot(curve.recall, curve.accuracy, label=f"{rule}{' (chosen)' if rule == choice.rule else ''}", linewidth=2 if rule == choice.rule else 1)
    s = choice.selection
    axes.plot([s["oosRecall"]], [s["inScopeAccuracy"]], "ko", label=f"chosen: {choice.rule} < {choice.threshold:.4g}")
    axes.axhline(s["inScopeAccuracyWithout"] - s["maxCost"], color="grey", linestyle=":", label=f"accuracy without fallback − {s['maxCost']:g}")
    low = max(0.0, s["inScopeAccuracyWithout"] - 10)
    axes.set_ylim(low, min(100.0, s["inScopeAccuracyWithout"] + 1))
    axes.set_xlabel("out-of-scope recall (dev, %)")
    axes.set_ylabel("in-scope accuracy (dev, %)")
    axes.set_title(f"{task}: fallback thresholds")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def fit_fallback(
    checkpoint: Checkpoint, data_root: Path, run: Path, label: str, max_cost: float, probe: str | None = None, probe_label: str = "oos", max_length: int = 128
) -> FallbackChoice:
    """Chooses a classification run's fallback on dev (`choose_fallback`) and keeps it in the run
    folder (fallback.json, which `bundle add`/`replace` carry into the manifest, and the curve).
    `probe`: a task of `data_root` whose dev examples labelled `probe_label` are out of scope for this one."""
    info, served, dev, logits = served_dev_logits(checkpoint, data_root, run, max_length)
    spec = info.spec
    if not spec.output_kind.supports_fallback:
        fallback_kinds = ", ".join(k.name for k in KINDS if k.supports_fallback)
        raise ValueError(f"{run}: a fallback is for {fallback_kinds} heads; {spec.name} is a {spec.kind} task")
    label_index = spec.labels.index(label) if label in spec.labels else None
    probe_logits = None
    if probe is not None:
        probe_spec = load_task_spec(data_root, probe)
        if probe_label not in probe_spec.labels:
            raise ValueError(f"{data_root / probe}: the probe task has no {probe_label!r} class to take out-of-scope examples from")
        outside = [e for e in read_examples(split_file(data_root, probe, "dev"), probe_spec) if e.label == probe_spec.labels.index(probe_label)]
        # Encoded as this task's inputs; their labels are not read.
        _, probe_logits = served_logits(checkpoint, info, served, [Example(e.text, None, 0) for e in outside], max_length)
    choice = choose_fallback(label, logits, dev.labels.numpy(), label_index, probe_logits, max_cost)
    choice.weights_sha256 = sha256_file(run / WEIGHTS_FILE)
    choice.save(run)
    plot_curves(choice, spec.name, run / CURVE_FILE)
    return choice
