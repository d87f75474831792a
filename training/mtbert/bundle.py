"""Writing bundles (docs/bundle-format.md): create on first add, add, replace, remove, verify.

The trunk is the frozen pretrained bottom of BERT and never changes; it is re-exported only to
reach a deeper branch layer or add an output, which leaves every existing head valid and untouched.
"""

from __future__ import annotations

import gzip
import json
import math
import re
import sys
from pathlib import Path

import onnx
import torch

from .calibrate import MAX_TRAIN, PROBE_SOURCES, BundleTaskData, distance_input, ood_rates, TaskCalibration, apply_to_entry, calibrate_task, recorded_settings
from .checkpoint import Checkpoint, load_checkpoint, sha256_file
from .export import export_head, export_trunk
from .fallback import FallbackChoice
from .kinds import KINDS, kind_named
from .float16 import has_int8_matmuls, write_float_head
from .manifest_file import FORMAT_VERSION, default_pretrained, MANIFEST, PARITY, TRUNK, VOCAB, BundleError, int8_matmuls, read_manifest, write_json_atomic
from .modeling import TaskHead
from .onnx_eval import Graph
from .ood import DISTANCE_OUTPUT, DistanceCalibration, add_distance_output
from .data import TaskSpec, split_file
from .runs import RUN_FILE, RunInfo, load_run, read_info, run_checkpoint
from .tokenization import WordPieceTokenizer, read_vocab
from .train import build_trunk, served_head

# How far the service's outputs may be from PyTorch's. Float graphs differ only in summation order.
# With int8 matmuls they differ by rounding flips: a float32 difference of 1e-6 upstream (summation
# order) can move one activation to the neighbouring int8 step, and each flip perturbs the next
# layers enough to flip more, so a few flips cascade. Found on default@2.0.0's 128-token parity text
# (0.44 on an atis logit): its trunk diverges at one row of layer 2's attention output matmul, whose
# input agreed to 2e-6. Measured over 92 dev texts (bench/experiments/int8_parity_spread.py: the
# exported graph evaluated exactly vs PyTorch, same heads): half the short texts agree to 1e-5, but
# the largest logit difference per text reaches 0.63 (p90 0.29 short, 0.39 long), 3 of 552 top-1
# labels differ, softmax by at most 0.14. The tolerance covers that with margin.
PARITY_TOLERANCE, INT8_PARITY_TOLERANCE = 1e-4, 1.0
# The service's rule (BundleLoader.TaskNameRule): the whole name, ASCII only. fullmatch, not
# match with "$": "$" also matches before a final newline, so "nl\n" would pass.
TASK_NAME = re.compile(r"[a-z0-9_-]{1,64}", re.ASCII)


def valid_task_name(name: str) -> bool:
    """Whether `name` may name a task in a bundle (and in the service's admin API)."""
    return TASK_NAME.fullmatch(name) is not None

LAST_NUMBER = re.compile(r"(\d+)(?!.*\d)")


def bump_version(version: str) -> str:
    """The version after a change of the bundle's heads: its last number + 1 (1.4.1 -> 1.4.2, 3 -> 4);
    ".1" appended when it has no number. The service reports name@version with every answer."""
    match = LAST_NUMBER.search(version)
    if match is None:
        return f"{version}.1"
    return version[: match.start()] + str(int(match.group(1)) + 1) + version[match.end() :]

# Texts whose token ids and outputs are stored in parity.json: accents, case, punctuation,
# CJK, repeated spaces, an unknown word, and one past the maximum length (truncation).
PARITY_SINGLE = [
    "wake me up at 7 am tomorrow",
    "It's a charming and often affecting journey.",
    "Héllo   WORLD!! Café, naïve façade — 中文 ok?",
    "what is the balance of my checking account",
    "unaffable xyzzyqq 1234.56 $5 [SEP] don't",
    " ".join(["the film is long but the ending makes up for every slow minute"] * 14),
]
PARITY_PAIRS = [
    ("A man is playing a guitar.", "A person plays an instrument."),
    ("The company said profits rose 5%.", "Profits fell, the firm reported."),
    ("Ünïcödé text with accents", "plain text"),
    (" ".join(["a very long premise about the weather in spring"] * 12), "short hypothesis here " * 9),
]


def _task_entry(info: RunInfo, head: TaskHead, head_path: Path, head_file: str, version: int, extra_metrics: dict | None, run: Path) -> dict:
    spec = info.spec
    output = spec.output_kind.manifest_output(spec, head)
    fallback = FallbackChoice.load(run) if spec.output_kind.supports_fallback else None
    if fallback is not None:  # chosen on dev by `mtbert fallback` (or a recipe's "fallback")
        output["fallback"] = fallback.manifest_entry()
    # A head without transformer layers reads the [CLS] row alone: its graph has no mask input.
    graph_inputs = {i.name for i in onnx.load(str(head_path), load_external_data=False).graph.input}
    metrics = {"split": "dev", "primary": spec.primary_metric, "values": info.metrics}
    # A distilled head: what its teacher scored (a sweep names the teacher's folder beside the student's).
    teacher = next((t for t in ([run.parent / info.teacher, Path(info.teacher)] if info.teacher else []) if (t / RUN_FILE).is_file()), None)
    if teacher is not None:
        metrics["teacher"] = read_info(teacher).metrics
    metrics.update(extra_metrics or {})
    return {
        "name": spec.name,
        "version": version,
        "description": spec.description,
        "input": spec.input,
        "branchLayer": info.branch_layer,
        "output": output,
        "head": {
            "file": head_file,
            "sha256": "",
            "numLayers": info.head_layers,
            "inputs": {"hiddenStates": "hidden_states", "attentionMask": "attention_mask" if "attention_mask" in graph_inputs else None},
            "output": "logits",
        },
        "pretrainedFingerprint": info.fingerprint,
        "metrics": metrics,
        # The share of train the head never trained on (`holdout`): `calibrate` measures its own features on it.
        **({"calibrationShare": info.hyper["calibration_share"]} if info.hyper.get("calibration_share") else {}),
    }


class BundleWriter:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    # -- helpers ---------------------------------------------------------------------------
    def _new_manifest(self, checkpoint: Checkpoint, name: str, version: str, max_length: int, int8_matmuls: bool) -> dict:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "heads").mkdir(exist_ok=True)
        with gzip.GzipFile(self.folder / VOCAB, "wb", mtime=0) as stream:  # mtime=0: stable bytes
            stream.write(checkpoint.vocab_path.read_bytes())
        return {
            "formatVersion": FORMAT_VERSION,
            "name": name,
            "version": version,
            "tokenizer": {"vocabFile": VOCAB, "lowercase": True, "stripAccents": True, "maxSequenceLength": max_length},
            "trunk": {
                "file": TRUNK,
                "sha256": "",
                "hiddenSize": checkpoint.config.hidden_size,
                "numLayers": 0,
                "pretrained": {"name": checkpoint.name, "fingerprint": checkpoint.fingerprint, "numLayers": checkpoint.config.num_hidden_layers},
                "inputs": {"inputIds": "input_ids", "attentionMask": "attention_mask", "tokenTypeIds": "token_type_ids"},
                "outputs": [],
                "int8Matmuls": int8_matmuls,
            },
            "tasks": [],
        }

    def _ensure_trunk(self, manifest: dict, checkpoint: Checkpoint, branch_layer: int) -> None:
        trunk = manifest["trunk"]
        layers = sorted({o["layer"] for o in trunk["outputs"]} | {branch_layer})
        if layers == [o["layer"] for o in trunk["outputs"]]:
            return
        model = build_trunk(checkpoint, max(layers), int8_matmuls(manifest))
        if "float16" in trunk:  # exported for the old depth and outputs: stale now
            (self.folder / trunk.pop("float16")["file"]).unlink(missing_ok=True)
            print(f"{self.folder}: trunk re-exported, trunk.float16 removed; run `mtbert bundle add-cuda-trunk` again", file=sys.stderr)
        trunk["outputs"] = export_trunk(model, layers, self.folder / TRUNK)
        trunk["numLayers"] = max(layers)
        trunk["sha256"] = sha256_file(self.folder / TRUNK)

    def _trunk_checkpoint(self, manifest: dict, pretrained: str | Path | None) -> Checkpoint:
        """The checkpoint the bundle's trunk was made from (`pretrained`, else `default_pretrained`), checked by fingerprint."""
        checkpoint = load_checkpoint(pretrained or default_pretrained(manifest))
        if checkpoint.fingerprint != manifest["trunk"]["pretrained"]["fingerprint"]:
            raise BundleError(f"{checkpoint.path}: not the checkpoint of the bundle's trunk (trunk.pretrained.fingerprint)")
        return checkpoint

    def _tokenizer(self, manifest: dict) -> WordPieceTokenizer:
        t = manifest["tokenizer"]
        return WordPieceTokenizer(read_vocab(self.folder / t["vocabFile"]), lowercase=t["lowercase"], strip_accents=t["stripAccents"], max_length=t["maxSequenceLength"])

    def _update_parity(self, manifest: dict, checkpoint: Checkpoint, spec: TaskSpec, head: TaskHead, branch_layer: int) -> None:
        """Stores token ids for the standard texts and this task's PyTorch outputs, and what its kind
        records besides (`OutputKind.parity_extras`: for tagging, the tag PyTorch decodes for each
        whitespace-split word)."""
        task, input_kind = spec.name, spec.input
        path = self.folder / PARITY
        tolerance = INT8_PARITY_TOLERANCE if int8_matmuls(manifest) else PARITY_TOLERANCE
        parity = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {"tolerance": tolerance, "cases": []}
        if not parity["cases"]:
            tokenizer = self._tokenizer(manifest)
            for text, pair in [(t, None) for t in PARITY_SINGLE] + PARITY_PAIRS:
                encoding = tokenizer.encode(text, pair)
                parity["cases"].append({"text": text, "textPair": pair, "inputIds": encoding.input_ids, "tokenTypeIds": encoding.token_type_ids, "outputs": {}})
        for case in parity["cases"]:
            _drop_task(case, task)
        tokenizer = self._tokenizer(manifest)
        trunk = build_trunk(checkpoint, branch_layer, int8_matmuls(manifest))
        cases = [c for c in parity["cases"] if (c["textPair"] is None) == (input_kind == "single")]
        with torch.no_grad():
            for case in cases:  # one at a time: the service must agree for each input alone
                ids = torch.tensor([case["inputIds"]])
                types = torch.tensor([case["tokenTypeIds"]])
                mask = torch.ones_like(ids)
                hidden = trunk(ids, mask, types)[branch_layer]
                logits = head(hidden, mask)
                case["outputs"][task] = [round(float(v), 7) for v in logits.flatten()]
                for key, value in spec.output_kind.parity_extras(tokenizer, case["text"], logits[0], spec, head).items():
                    case.setdefault(key, {})[task] = value
        write_json_atomic(path, parity)

    def _save(self, manifest: dict) -> None:
        for task in manifest["tasks"]:
            task["head"]["sha256"] = sha256_file(self.folder / task["head"]["file"])
        write_json_atomic(self.folder / MANIFEST, manifest)

    def _load_run(self, run: Path, pretrained: str | None) -> tuple[RunInfo, TaskHead, Checkpoint]:
        info, head = load_run(run)
        return info, head, run_checkpoint(info, pretrained)

    def _check_fits(self, manifest: dict, info: RunInfo, run: Path) -> None:
        expected = manifest["trunk"]["pretrained"]["fingerprint"]
        if info.fingerprint != expected:
            raise BundleError(
                f"{run / 'run.json'}: fingerprint {info.fingerprint[:12]}… differs from the bundle trunk's "
                f"trunk.pretrained.fingerprint {expected[:12]}…: the head was trained on other pretrained weights"
            )
        depth = manifest["trunk"]["pretrained"]["numLayers"]
        if not 0 <= info.branch_layer <= depth:
            raise BundleError(f"{run / 'run.json'}: branch_layer {info.branch_layer} is outside 0..{depth}")
        if info.branch_layer == 0:
            raise BundleError(f"{run / 'run.json'}: a fully fine-tuned model (branch layer 0) shares no frozen layer; export it with `export-single` instead")
        int8 = int8_matmuls(manifest)
        if info.int8_matmuls != int8:
            served, trained = ("int8" if flag else "float32" for flag in (int8, info.int8_matmuls))
            raise BundleError(
                f"{run / 'run.json'}: int8_matmuls is {info.int8_matmuls} but the bundle's trunk.int8Matmuls is {int8}: "
                f"the head was trained on {trained} trunk matmuls and would be served {served} ones; train it with{'' if int8 else 'out'} --int8-matmuls"
            )

    # -- commands --------------------------------------------------------------------------
    def add(
        self, run: Path, name: str | None = None, version: str | None = None, pretrained: str | None = None, max_length: int = 128, extra_metrics: dict | None = None,
        data_root: Path | None = None, ood: bool = True, rejection: float | None = None, weights: tuple[float, float, float] | None = None,
    ) -> dict:
        info, head, checkpoint = self._load_run(run, pretrained)
        if (self.folder / MANIFEST).is_file():
            manifest = read_manifest(self.folder)
            manifest["version"] = version or bump_version(manifest["version"])
        else:
            manifest = self._new_manifest(checkpoint, name or self.folder.name, version or "1", max_length, info.int8_matmuls)
        self._check_fits(manifest, info, run)
        task = info.spec.name
        if not valid_task_name(task):
            raise BundleError(f"{run / 'run.json'}: task name {task!r} must match {TASK_NAME.pattern}")
        if any(t["name"] == task for t in manifest["tasks"]):
            raise BundleError(f"{self.folder / MANIFEST}: tasks already holds {task!r}; use `bundle replace`")
        manifest = self._put(manifest, info, head, checkpoint, run, 1, extra_metrics)
        return self._calibrate_added(manifest, info, checkpoint, data_root, rejection, weights=weights) if ood else manifest

    def _calibrate_added(
        self, manifest: dict, info: RunInfo, checkpoint: Checkpoint, data_root: Path | None, rejection: float | None, label: str | None = None,
        weights: tuple[float, float, float] | None = None,
    ) -> dict:
        """A classification task just added or replaced gets its out-of-domain fallback (aiming at the
        in-scope rejection rate `rejection`, its combined measure weighted by `weights`), temperature and served-by-default decision from its data
        (`data_root`, else where the run was trained), at the version the change gave the bundle.
        Skipped, with a line saying so, when no data is found."""
        if not info.spec.output_kind.supports_fallback:
            return manifest
        root = data_root or (Path(info.data_root) if info.data_root else None)
        if root is None or not split_file(root, info.spec.name, "train").is_file():
            print(f"{self.folder}: {info.spec.name} has no out-of-domain fallback: its training data was not found (give --data)", file=sys.stderr)
            return manifest
        manifest, _ = self.calibrate(root, checkpoint.path, [info.spec.name], rejection, label, version=manifest["version"], weights=weights)
        return manifest

    def replace(
        self, run: Path, pretrained: str | None = None, extra_metrics: dict | None = None, version: str | None = None, data_root: Path | None = None, ood: bool = True,
        rejection: float | None = None, weights: tuple[float, float, float] | None = None,
    ) -> dict:
        manifest = read_manifest(self.folder)
        manifest["version"] = version or bump_version(manifest["version"])
        info, head, checkpoint = self._load_run(run, pretrained)
        self._check_fits(manifest, info, run)
        old = next((t for t in manifest["tasks"] if t["name"] == info.spec.name), None)
        if old is None:
            raise BundleError(f"{self.folder / MANIFEST}: no task {info.spec.name!r} to replace; use `bundle add`")
        manifest["tasks"].remove(old)
        if extra_metrics is None and old.get("pretrainedFingerprint") == info.fingerprint and "fullFineTuning" in old.get("metrics", {}):
            extra_metrics = {"fullFineTuning": old["metrics"]["fullFineTuning"]}  # the task's reference, not the head's: it stays
        manifest = self._put(manifest, info, head, checkpoint, run, old["version"] + 1, extra_metrics)
        new = next(t for t in manifest["tasks"] if t["name"] == info.spec.name)
        # The replaced head's fallback label stays (CLINC150's own `oos`), unless the run chose one.
        label = None if new["output"].get("fallback") else (old["output"].get("fallback") or {}).get("label")
        # So do the rate and weights its calibration was asked for, unless given again (weights only
        # where the new head, too, left a calibration part out of training).
        old_rejection, old_weights = recorded_settings(old)
        rejection = rejection if rejection is not None else old_rejection
        if weights is None and info.hyper.get("calibration_share"):
            weights = old_weights
        return self._calibrate_added(manifest, info, checkpoint, data_root, rejection, label, weights) if ood else manifest

    def _put(self, manifest: dict, info: RunInfo, head: TaskHead, checkpoint: Checkpoint, run: Path, version: int, extra_metrics: dict | None) -> dict:
        self._ensure_trunk(manifest, checkpoint, info.branch_layer)
        head = served_head(head, int8_matmuls(manifest))
        head_file = f"heads/{info.spec.name}.onnx"
        # Exported from the run's weights, not copied from its head.onnx: a run kept from an older
        # toolkit (a resumed study reuses runs) then still gets today's graph (e.g. folded attention).
        export_head(head, self.folder / head_file, info.head_metadata)
        entry = _task_entry(info, head, self.folder / head_file, head_file, version, extra_metrics, run)
        if "float16" in manifest["trunk"] and has_int8_matmuls(self.folder / head_file):
            # The bundle has CUDA graphs: this head gets its float graph too (scored by the next add-cuda-trunk).
            float_file = head_file.removesuffix(".onnx") + ".float.onnx"
            write_float_head(self.folder / head_file, self.folder / float_file)
            entry["head"]["float"] = {"file": float_file, "sha256": sha256_file(self.folder / float_file)}
        manifest["tasks"].append(entry)
        manifest["tasks"].sort(key=lambda t: t["name"])
        self._update_parity(manifest, checkpoint, info.spec, head, info.branch_layer)
        self._save(manifest)
        return manifest

    def remove(self, task: str, version: str | None = None) -> dict:
        manifest = read_manifest(self.folder)
        manifest["version"] = version or bump_version(manifest["version"])
        entry = next((t for t in manifest["tasks"] if t["name"] == task), None)
        if entry is None:
            raise BundleError(f"{self.folder / MANIFEST}: no task {task!r}; tasks: {', '.join(t['name'] for t in manifest['tasks'])}")
        from .pair_source import reads_embeddings_of  # lazily, as verify imports source_problems

        readers = [t["name"] for t in manifest["tasks"] if reads_embeddings_of(t, task)]
        if readers:  # the service would refuse the bundle (and answers 409 to the same removal through the admin API)
            raise BundleError(f"{self.folder / MANIFEST}: task {task!r} cannot be removed: {', '.join(readers)} computed from its embeddings "
                              "(output.source); remove those first or serve them from the joint pass (bundle pair-source)")
        manifest["tasks"].remove(entry)
        self._save(manifest)  # the manifest stops naming the head before its file goes
        shared = {t["head"]["file"] for t in manifest["tasks"]}  # an examples task reads its embedding task's head
        for file in [entry["head"]["file"]] + ([entry["head"]["float"]["file"]] if "float" in entry["head"] else []):
            if file not in shared:
                (self.folder / file).unlink(missing_ok=True)
        parity = self.folder / PARITY
        if parity.is_file():
            value = json.loads(parity.read_text(encoding="utf-8"))
            for case in value["cases"]:
                _drop_task(case, task)
            write_json_atomic(parity, value)
        return manifest

    def calibrate(
        self, data_root: Path, pretrained: str | Path | None = None, tasks: list[str] | None = None, rejection: float | None = None,
        label: str | None = None, version: str | None = None, max_train: int | None = MAX_TRAIN, log=print,  # noqa: ANN001 - a print-like callable
        weights: tuple[float, float, float] | None = None,
    ) -> tuple[dict, list[TaskCalibration]]:
        """Gives classification tasks (`tasks`, default every one) the out-of-domain fallback, a
        softmax temperature and the served-by-default decision, fitted on `data_root`'s splits
        (`calibrate`); rewrites their heads with the distance output and bumps the version once.
        `rejection` and `weights` (None: what each task recorded, else the defaults): `calibrate_task`."""
        manifest = read_manifest(self.folder)
        checkpoint = self._trunk_checkpoint(manifest, pretrained)
        chosen = _classification_tasks(manifest, tasks)
        results = []
        for entry in chosen:
            data = BundleTaskData(self.folder, manifest, entry, data_root, checkpoint, self._tokenizer(manifest), max_train)
            result, head = calibrate_task(data, rejection, label, weights=weights)
            write_onnx_atomic(head, self.folder / entry["head"]["file"])
            apply_to_entry(entry, result, self.folder / entry["head"]["file"])
            if "float" in entry["head"]:  # the CUDA variant carries the same statistics
                float_path = self.folder / entry["head"]["float"]["file"]
                float_head = add_distance_output(
                    onnx.load(str(float_path)), result.stats, distance_input(entry, result.layer), entry["head"]["inputs"]["attentionMask"], result.head_measure, entry["head"]["output"]
                )
                write_onnx_atomic(float_head, float_path)
                entry["head"]["float"]["sha256"] = sha256_file(float_path)
            self._update_parity_distances(manifest, checkpoint, entry)
            results.append(result)
            log(f"{entry['name']}: {describe(result)}")
        manifest["version"] = version or bump_version(manifest["version"])
        self._save(manifest)
        return manifest, results

    def retarget(self, rejection: float | None = None, version: str | None = None) -> dict:
        """Sets every calibrated task's threshold for the in-scope rejection rate `rejection` (None: the
        rate each task recorded, `aimedAt`, else its curve's default, `DistanceCalibration.default_rejection`) from its stored curve, without
        recomputing anything: on an empirical curve the largest rate that stays within `rejection` with
        95% confidence on its calibration examples (`ood.threshold_for`), on a fitted one `rejection`
        itself (`DistanceCalibration.threshold`)."""
        manifest = read_manifest(self.folder)
        for task in manifest["tasks"]:
            fallback = task["output"].get("fallback") or {}
            if fallback.get("rule") != "mahalanobis":
                continue
            curve = DistanceCalibration.from_manifest(fallback["calibration"])
            aimed = rejection if rejection is not None else fallback.get("aimedAt", curve.default_rejection())
            fallback["threshold"] = curve.threshold(aimed)
            fallback["aimedAt"] = aimed
            fallback["expected"] = {"inScopeRejection": fallback["threshold"], "upperBound95": round(curve.rate_upper_bound(fallback["threshold"]), 5)}
        manifest["version"] = version or bump_version(manifest["version"])
        self._save(manifest)
        return manifest

    def ood_report(
        self, data_root: Path, pretrained: str | Path | None = None, only: list[str] | None = None, probe_root: Path | None = None, log=print,  # noqa: ANN001
    ) -> list[str]:
        """A markdown table: how often each calibrated task answers its fallback on its in-scope dev
        examples and on every other domain's probe texts (`calibrate.ood_rates`), as served."""
        manifest = read_manifest(self.folder)
        checkpoint = self._trunk_checkpoint(manifest, pretrained)
        tasks = [t for t in manifest["tasks"] if (t["output"].get("fallback") or {}).get("rule") == "mahalanobis" and (only is None or t["name"] in only)]
        groups: dict[tuple[int, str], list[dict]] = {}
        for task in tasks:  # tasks that read the same trunk states share each probe's trunk pass
            groups.setdefault((task["branchLayer"], task["input"]), []).append(task)
        rows: dict[str, dict[str, float]] = {}
        for group in groups.values():
            rows.update(ood_rates(self.folder, manifest, group, data_root, checkpoint, self._tokenizer(manifest), probe_root))
        own = [t for t in rows if t not in PROBE_SOURCES and t in rows[t]]  # own out-of-scope dev queries of a task the probes lack
        sources = ["in-scope dev"] + [s for s in PROBE_SOURCES if any(s in r for r in rows.values())] + own
        lines = ["| task | " + " | ".join(PROBE_SOURCES.get(s, f"{s} out-of-scope dev" if s in own else s) for s in sources) + " |", "| --- |" + " --- |" * len(sources)]
        for task, rates in rows.items():
            lines.append(f"| {task} | " + " | ".join(f"{rates[s]:.1f}" if s in rates else "—" for s in sources) + " |")
        for line in lines:
            log(line)
        return lines

    def _update_parity_distances(self, manifest: dict, checkpoint: Checkpoint, entry: dict) -> None:
        """parity.json's out-of-domain distance of each case for this task, from the head graph as
        written (evaluated node by node), which the service must reproduce."""
        path = self.folder / PARITY
        if not path.is_file():
            return
        parity = json.loads(path.read_text(encoding="utf-8"))
        graph = Graph(self.folder / entry["head"]["file"])
        distance = entry["head"]["outOfDomain"]
        layer = entry["branchLayer"]
        trunk = build_trunk(checkpoint, max(layer, distance["layer"]), int8_matmuls(manifest))
        with torch.no_grad():
            for case in parity["cases"]:
                if (case["textPair"] is None) != (entry["input"] == "single"):
                    continue
                ids, types = torch.tensor([case["inputIds"]]), torch.tensor([case["tokenTypeIds"]])
                mask = torch.ones_like(ids)
                states = trunk(ids, mask, types)
                feeds = {entry["head"]["inputs"]["hiddenStates"]: states[layer], entry["head"]["inputs"]["attentionMask"]: mask}
                if "hiddenStates" in distance:
                    feeds[distance["hiddenStates"]] = states[distance["layer"]]
                outputs = graph.run(feeds)
                case.setdefault("distances", {})[entry["name"]] = round(float(outputs[DISTANCE_OUTPUT][0]), 4)
        write_json_atomic(path, parity)

    def head_for_upload(self, run: Path, out: Path, ood: bool = True, rejection: float | None = None, weights: tuple[float, float, float] | None = None) -> dict:
        """Writes what `POST /admin/tasks` takes to add or replace a run's head in a service serving this
        bundle, without changing the bundle: `out/head.onnx` (the head as the bundle would serve it)
        and `out/entry.json` (its manifest entry; version = the bundle's + 1, or 1 for a new task).
        The run must branch at a layer the trunk already outputs: the admin API never changes the trunk."""
        manifest = read_manifest(self.folder)
        info, head = load_run(run)
        self._check_fits(manifest, info, run)
        outputs = [o["layer"] for o in manifest["trunk"]["outputs"]]
        if info.branch_layer not in outputs:
            raise BundleError(
                f"{run / 'run.json'}: branch_layer {info.branch_layer} is not among the trunk's outputs {outputs} (trunk.outputs): "
                "a running service cannot serve it; `bundle add` it to a copy of the bundle (the trunk is re-exported) and restart on the copy"
            )
        old = next((t for t in manifest["tasks"] if t["name"] == info.spec.name), None)
        head = served_head(head, int8_matmuls(manifest))
        out.mkdir(parents=True, exist_ok=True)
        export_head(head, out / "head.onnx", info.head_metadata)
        entry = _task_entry(info, head, out / "head.onnx", f"heads/{info.spec.name}.onnx", old["version"] + 1 if old else 1, None, run)
        entry["head"]["sha256"] = sha256_file(out / "head.onnx")
        if ood and info.spec.output_kind.supports_fallback and info.data_root:
            self._calibrate_upload(manifest, entry, info, out, Path(info.data_root), rejection, weights)
        write_json_atomic(out / "entry.json", entry)
        return entry

    def _calibrate_upload(
        self, manifest: dict, entry: dict, info: RunInfo, out: Path, data_root: Path, rejection: float | None, weights: tuple[float, float, float] | None,
    ) -> None:
        """The uploaded head gets the out-of-domain fallback as `bundle add` would give it."""
        checkpoint = run_checkpoint(info)
        local = {**entry, "head": {**entry["head"], "file": "head.onnx"}}  # the graph lies in `out`
        data = BundleTaskData(out, manifest, local, data_root, checkpoint, self._tokenizer(manifest))
        result, head = calibrate_task(data, rejection, weights=weights)
        write_onnx_atomic(head, out / "head.onnx")
        apply_to_entry(entry, result, out / "head.onnx")
        print(f"{entry['name']}: {describe(result)}")


def _classification_tasks(manifest: dict, names: list[str] | None) -> list[dict]:
    """The manifest entries to calibrate: `names` (each must be a classification task), or every one."""
    entries = {t["name"]: t for t in manifest["tasks"]}
    def trained_classification(task: dict) -> bool:  # embedding and examples tasks are no trained kinds
        return task["output"]["kind"] in {k.name for k in KINDS} and kind_named(task["output"]["kind"]).supports_fallback

    if names is None:
        return [t for t in manifest["tasks"] if trained_classification(t)]
    for name in names:
        if name not in entries:
            raise BundleError(f"manifest.json: no task {name!r}; tasks: {', '.join(entries)}")
        if not trained_classification(entries[name]):
            raise BundleError(f"manifest.json: task {name!r} is a {entries[name]['output']['kind']} task; only classification tasks get an out-of-domain fallback")
    return [entries[n] for n in names]


def write_onnx_atomic(model: onnx.ModelProto, path: Path) -> None:
    """Write then rename: a service reading the bundle never sees half a graph."""
    temp = path.with_name(path.name + ".tmp")
    onnx.save(model, str(temp))
    temp.replace(path)


def describe(result: TaskCalibration) -> str:
    f = result.figures
    return (
        f"fallback '{result.label}' below p={result.rejection:g} ({'held-out' if result.head_measure else 'cross-fit'} in-scope rejection {100 * f['calRejection']:.2f}%, "
        f"95% bound {100 * f['calRejectionUpper95']:.2f}%; dev {f['devInScopeRejection']:.2f}%, in-scope accuracy "
        f"{f['inScopeAccuracyWithout']:.2f} -> {f['inScopeAccuracy']:.2f}"
        + (f"; its own out-of-scope dev queries answered '{result.label}' {f['devOosRecall']:.1f}%" if math.isfinite(f["devOosRecall"]) else "")
        + f"); temperature {result.temperature:.3f} "
        f"(ECE {f['eceBefore']:.2f} -> {f['eceAfter']:.2f}); {'served' if result.served_by_default else 'NOT served'} by default "
        f"(dev accuracy {f['devAccuracyAll']:.1f} vs majority {f['majorityAccuracy']:.1f})"
    )


def _drop_task(case: dict, task: str) -> None:
    """Removes a task's reference outputs (and its kind's extras, e.g. decoded tags) from a parity case:
    every per-task map of the case; an extra's map goes with its last task."""
    for key, value in list(case.items()):
        if isinstance(value, dict):
            value.pop(task, None)
            if not value and key != "outputs":
                del case[key]


def verify(bundle: Path) -> list[str]:
    """Problems found in a bundle (empty when it is valid): files, hashes, fingerprints, depths."""
    problems: list[str] = []
    try:
        manifest = read_manifest(bundle)
    except BundleError as error:
        return [str(error)]
    trunk = manifest["trunk"]
    entries = [("trunk", trunk)] + [(f"tasks[{t['name']}].head", t["head"]) for t in manifest["tasks"]]
    entries += [("trunk.float16", trunk["float16"])] if "float16" in trunk else []
    entries += [(f"tasks[{t['name']}].head.float", t["head"]["float"]) for t in manifest["tasks"] if "float" in t["head"]]
    for label, entry in entries:
        path = bundle / entry["file"]
        if not path.is_file():
            problems.append(f"{path}: missing ({label}.file)")
        elif sha256_file(path) != entry["sha256"]:
            problems.append(f"{path}: SHA-256 differs from {label}.sha256")
    from .pair_source import source_problems  # lazily, like embedding_problems: those modules import much of the toolkit

    layers = {o["layer"] for o in trunk["outputs"]}
    for task in manifest["tasks"]:
        if task["pretrainedFingerprint"] != trunk["pretrained"]["fingerprint"]:
            problems.append(f"{bundle / MANIFEST}: tasks[{task['name']}].pretrainedFingerprint differs from trunk.pretrained.fingerprint")
        if task["branchLayer"] not in layers:
            problems.append(f"{bundle / MANIFEST}: tasks[{task['name']}].branchLayer {task['branchLayer']} has no trunk output")
        if task["output"]["kind"] in ("embedding", "examples"):  # no trained head of their own
            from .embedding import embedding_problems

            problems.extend(f"{bundle / MANIFEST}: tasks[{task['name']}].output.{p}" for p in embedding_problems(bundle, task))
            continue
        try:
            kind = kind_named(task["output"]["kind"])
        except ValueError as error:
            problems.append(f"{bundle / MANIFEST}: tasks[{task['name']}].output.kind: {error}")
            continue
        problems.extend(f"{bundle / MANIFEST}: tasks[{task['name']}].output.{p}" for p in kind.manifest_problems(task["output"]))
        problems.extend(f"{bundle / MANIFEST}: tasks[{task['name']}].output.{p}" for p in source_problems(manifest, task))
    return problems
