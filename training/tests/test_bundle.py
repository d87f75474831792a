"""The whole pipeline on the tiny configuration: runs -> ONNX -> bundle, and its refusals."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto

from mtbert.bundle import BundleError, BundleWriter, read_manifest, valid_task_name, verify
from mtbert.checkpoint import sha256_file
from mtbert.pipeline import TaskSession
from mtbert.train import Hyper

FAST = Hyper(epochs=1, batch_size=16, lr=1e-3)


@pytest.fixture(scope="module")
def runs(tiny_checkpoint: Path, other_checkpoint: Path, tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    for task, frozen in (("sst2", 2), ("snips", 1), ("stsb", 3), ("rte", 2)):
        TaskSession.open(tiny_checkpoint, tiny_data, task, max_length=32).partial(frozen, FAST, root / task)
    TaskSession.open(other_checkpoint, tiny_data, "sst2", max_length=32).partial(2, FAST, root / "foreign-sst2")
    return root


def test_add_creates_a_valid_bundle_with_hashes_and_fingerprints(runs: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "b"
    manifest = BundleWriter(bundle).add(runs / "sst2", name="t", version="1", max_length=32)
    assert verify(bundle) == []
    trunk = manifest["trunk"]
    assert (trunk["numLayers"], [o["layer"] for o in trunk["outputs"]]) == (2, [2])
    task = manifest["tasks"][0]
    output = dict(task["output"])
    # A classification run gets the out-of-domain fallback and a temperature from its data by default.
    fallback, temperature = output.pop("fallback"), output.pop("temperature")
    assert output == {"kind": "classification", "labels": ["negative", "positive"]}
    assert (fallback["rule"], fallback["label"], task["head"]["outOfDomain"]["output"]) == ("mahalanobis", "out_of_scope", "ood_distance")
    assert temperature > 0
    assert task["pretrainedFingerprint"] == trunk["pretrained"]["fingerprint"]
    assert task["head"]["sha256"] == sha256_file(bundle / "heads/sst2.onnx")
    parity = json.loads((bundle / "parity.json").read_text())
    singles = [c for c in parity["cases"] if c["textPair"] is None]
    assert all(len(c["outputs"]["sst2"]) == 2 for c in singles)
    assert all(len(c["inputIds"]) <= 32 for c in parity["cases"])


def test_adding_tasks_leaves_existing_heads_untouched_and_deepens_the_trunk(runs: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "b"
    writer = BundleWriter(bundle)
    writer.add(runs / "sst2", name="t", version="1", max_length=32)
    before = sha256_file(bundle / "heads/sst2.onnx")
    writer.add(runs / "snips")
    manifest = writer.add(runs / "stsb")
    assert sha256_file(bundle / "heads/sst2.onnx") == before
    assert [o["layer"] for o in manifest["trunk"]["outputs"]] == [1, 2, 3]
    assert manifest["trunk"]["numLayers"] == 3
    stsb = next(t for t in manifest["tasks"] if t["name"] == "stsb")
    assert stsb["output"] == {"kind": "regression", "range": [0.0, 5.0]}
    assert stsb["head"]["inputs"]["attentionMask"] is None  # 0-layer head: [CLS] row only
    assert verify(bundle) == []


def test_replace_bumps_the_version_and_remove_drops_the_head(runs: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "b"
    writer = BundleWriter(bundle)
    writer.add(runs / "sst2", name="t", version="1", max_length=32)
    writer.add(runs / "rte")
    manifest = writer.replace(runs / "sst2")
    assert next(t for t in manifest["tasks"] if t["name"] == "sst2")["version"] == 2
    manifest = writer.remove("rte")
    assert [t["name"] for t in manifest["tasks"]] == ["sst2"]
    assert not (bundle / "heads/rte.onnx").exists()
    assert all("rte" not in c["outputs"] for c in json.loads((bundle / "parity.json").read_text())["cases"])


def test_replace_keeps_the_fallback_label_and_the_tasks_full_fine_tuning_figure(runs: Path, tiny_data: Path, tiny_checkpoint: Path, tmp_path: Path) -> None:
    """A new head of a task is the same task: CLINC150's own `oos` label and its reference stay."""
    writer = BundleWriter(tmp_path / "b")
    writer.add(runs / "snips", name="t", version="1", max_length=32)
    writer.calibrate(tiny_data, tiny_checkpoint, tasks=["snips"], label="unsure", log=lambda _: None)
    manifest = read_manifest(tmp_path / "b")
    manifest["tasks"][0]["metrics"]["fullFineTuning"] = {"accuracy": 91.0, "score": 91.0}
    (tmp_path / "b" / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    entry = writer.replace(runs / "snips")["tasks"][0]
    assert entry["output"]["fallback"]["label"] == "unsure" and entry["version"] == 2
    assert entry["metrics"]["fullFineTuning"] == {"accuracy": 91.0, "score": 91.0}


def test_ood_report_scores_a_task_on_its_own_out_of_scope_dev_queries(runs: Path, tiny_data: Path, tiny_checkpoint: Path, tmp_path: Path) -> None:
    """A task whose fallback label is one of its classes (CLINC150's `oos`) is scored on its dev rows of
    that class too (the rule fires or the head answers the class itself), as the calibration measured
    them through its own path (BundleTaskData's features, not the report's trunk pass)."""
    writer = BundleWriter(tmp_path / "b")
    writer.add(runs / "snips", name="t", version="1", max_length=32)
    labels = read_manifest(tmp_path / "b")["tasks"][0]["output"]["labels"]
    _, (result,) = writer.calibrate(tiny_data, tiny_checkpoint, tasks=["snips"], label=labels[1], log=lambda _: None)
    lines = writer.ood_report(tiny_data, tiny_checkpoint, ["snips"], log=lambda _: None)
    header, row = [c.strip() for c in lines[0].split("|")], [c.strip() for c in lines[2].split("|")]
    own = float(row[header.index("assistant requests")])  # snips's column in the shared layout's names
    assert row[1] == "snips" and own == round(result.figures["devOosRecall"], 1)


def test_measure_weights_are_refused_for_a_head_trained_on_all_of_train(runs: Path, tiny_data: Path, tiny_checkpoint: Path, tmp_path: Path) -> None:
    """Without a held-out part there is no combined measure to weigh: asking for weights is an error naming the task, not silently ignored."""
    writer = BundleWriter(tmp_path / "b")
    writer.add(runs / "snips", name="t", version="1", max_length=32, ood=False)
    with pytest.raises(BundleError, match="snips: combined-measure weights apply to a head trained with a calibration share"):
        writer.calibrate(tiny_data, tiny_checkpoint, tasks=["snips"], weights=(0.0, 0.5, 0.5), log=lambda _: None)


def test_refusals_name_the_problem(runs: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "b"
    writer = BundleWriter(bundle)
    writer.add(runs / "sst2", name="t", version="1", max_length=32)
    with pytest.raises(BundleError, match="trained on other pretrained weights"):
        writer.add(runs / "foreign-sst2")
    with pytest.raises(BundleError, match="already holds 'sst2'"):
        writer.add(runs / "sst2")
    with pytest.raises(BundleError, match="no task 'snips' to replace"):
        writer.replace(runs / "snips")
    with pytest.raises(BundleError, match="no task 'nope'"):
        writer.remove("nope")


def test_heads_are_exported_from_the_run_weights_not_copied(runs: Path, tmp_path: Path) -> None:
    # A run kept from an older toolkit may hold a graph exported the old way (or none at all);
    # the bundle gets the current export of the run's weights.
    stale = tmp_path / "stale-run"
    stale.mkdir()
    for name in ("run.json", "head.pt"):
        (stale / name).write_bytes((runs / "sst2" / name).read_bytes())
    (stale / "head.onnx").write_bytes(b"an old graph")
    BundleWriter(tmp_path / "from-stale").add(stale, name="t", version="1", max_length=32)
    BundleWriter(tmp_path / "fresh").add(runs / "sst2", name="t", version="1", max_length=32)
    assert (tmp_path / "from-stale/heads/sst2.onnx").read_bytes() == (tmp_path / "fresh/heads/sst2.onnx").read_bytes()
    assert verify(tmp_path / "from-stale") == []


def test_verify_reports_tampering(runs: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "b"
    BundleWriter(bundle).add(runs / "sst2", name="t", version="1", max_length=32)
    (bundle / "heads/sst2.onnx").write_bytes(b"junk")
    assert any("SHA-256 differs from tasks[sst2].head.sha256" in p for p in verify(bundle))
    (bundle / "manifest.json").write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        read_manifest(bundle)


def test_weights_are_stored_as_float16_and_graphs_have_dynamic_axes(runs: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "b"
    BundleWriter(bundle).add(runs / "sst2", name="t", version="1", max_length=32)
    for path in (bundle / "trunk.onnx", bundle / "heads/sst2.onnx"):
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
        big = [i for i in model.graph.initializer if len(i.dims) and int(__import__("numpy").prod(i.dims)) >= 256]
        # Large weights are float16, except the trunk's word-embedding table: int8 codes.
        assert big and all(i.data_type == TensorProto.FLOAT16 for i in big if not i.name.endswith("word_codes"))
        assert [i.data_type for i in big if i.name.endswith("word_codes")] == ([TensorProto.INT8] if path.name == "trunk.onnx" else [])
        dims = model.graph.input[0].type.tensor_type.shape.dim
        assert [d.dim_param for d in dims[:2]] == ["batch", "sequence"]
        assert model.opset_import[0].version >= 14


def test_export_baselines_writes_one_whole_model_per_task(runs: Path, tiny_checkpoint: Path, other_checkpoint: Path, tmp_path: Path) -> None:
    from mtbert.baselines import export_baselines

    bundle = tmp_path / "b"
    writer = BundleWriter(bundle)
    writer.add(runs / "sst2", name="t", version="1", max_length=32)
    writer.add(runs / "stsb")
    index = export_baselines(bundle, tmp_path / "base", tiny_checkpoint)
    assert index["layers"] == 3 and set(index["tasks"]) == {"sst2", "stsb"}
    model = onnx.load(str(tmp_path / "base" / "sst2.onnx"))
    assert [i.name for i in model.graph.input] == ["input_ids", "attention_mask", "token_type_ids"]
    # All three encoder layers are in the graph: three attention softmaxes.
    assert sum(n.op_type == "Softmax" for n in model.graph.node) == 3
    with pytest.raises(ValueError, match="is not the bundle trunk's"):
        export_baselines(bundle, tmp_path / "other", other_checkpoint)


@pytest.mark.parametrize("name", ["sst2", "snips_slots", "a-b", "x" * 64, "0"])
def test_task_names_that_follow_the_rule(name: str) -> None:
    assert valid_task_name(name)


# Same cases as the service's BundleValidationTests: a trailing newline ("$" matched before it),
# look-alikes outside ASCII (Cyrillic "а", Kelvin sign, fullwidth digit), upper case, spaces, length.
@pytest.mark.parametrize("name", ["nl\n", "sst2\n", "\nsst2", "sst\u04302", "\u212a", "sst\uff12", "SST2", "a b", "", "x" * 65, "a.b", "a/b"])
def test_task_names_that_break_the_rule(name: str) -> None:
    assert not valid_task_name(name)


def test_heads_record_their_branch_layer_input_and_trunk_in_their_graph(runs: Path, tmp_path: Path) -> None:
    from mtbert.export import read_metadata

    bundle = tmp_path / "b"
    manifest = BundleWriter(bundle).add(runs / "rte", name="t", version="1", max_length=32)
    expected = {"mtbert.branchLayer": "2", "mtbert.input": "pair", "mtbert.pretrainedFingerprint": manifest["trunk"]["pretrained"]["fingerprint"]}
    assert read_metadata(bundle / "heads/rte.onnx") == expected
    assert read_metadata(runs / "rte" / "head.onnx") == expected  # a run's own graph says it too


def test_every_change_of_the_heads_bumps_the_bundle_version(runs: Path, tmp_path: Path) -> None:
    from mtbert.bundle import bump_version

    assert [bump_version(v) for v in ("1.4.1", "1.0.9", "3", "2.0.0-rc1", "dev")] == ["1.4.2", "1.0.10", "4", "2.0.0-rc2", "dev.1"]
    writer = BundleWriter(tmp_path / "b")
    assert writer.add(runs / "sst2", name="t", version="1.4.1", max_length=32)["version"] == "1.4.1"  # created as asked
    assert writer.add(runs / "rte")["version"] == "1.4.2"
    assert writer.replace(runs / "rte")["version"] == "1.4.3"
    assert writer.remove("rte")["version"] == "1.4.4"
    assert writer.add(runs / "rte", version="2.0.0")["version"] == "2.0.0"  # an explicit version is kept (recipes)
    assert read_manifest(tmp_path / "b")["version"] == "2.0.0"


def test_head_for_upload_writes_the_served_head_and_its_entry_without_changing_the_bundle(runs: Path, tmp_path: Path) -> None:
    from mtbert.export import read_metadata

    bundle = tmp_path / "b"
    writer = BundleWriter(bundle)
    writer.add(runs / "sst2", name="t", version="1", max_length=32)  # trunk outputs layer 2
    writer.add(runs / "snips")  # and layer 1
    before = (bundle / "manifest.json").read_bytes()
    entry = writer.head_for_upload(runs / "rte", tmp_path / "up")
    assert (bundle / "manifest.json").read_bytes() == before
    assert json.loads((tmp_path / "up" / "entry.json").read_text()) == entry
    assert (entry["name"], entry["version"], entry["branchLayer"], entry["input"]) == ("rte", 1, 2, "pair")
    assert entry["head"]["sha256"] == sha256_file(tmp_path / "up" / "head.onnx")
    assert read_metadata(tmp_path / "up" / "head.onnx")["mtbert.branchLayer"] == "2"
    assert writer.head_for_upload(runs / "sst2", tmp_path / "up2")["version"] == 2  # a replacement: the loaded version + 1
    with pytest.raises(BundleError, match=r"branch_layer 3 is not among the trunk's outputs \[1, 2\]"):
        writer.head_for_upload(runs / "stsb", tmp_path / "up3")
    with pytest.raises(BundleError, match="trained on other pretrained weights"):
        writer.head_for_upload(runs / "foreign-sst2", tmp_path / "up4")
