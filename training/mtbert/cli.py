"""`python -m mtbert COMMAND --help`: the toolkit's command line."""

from __future__ import annotations

import argparse
import textwrap
import json
import sys
from pathlib import Path

from .bundle import BundleError, BundleWriter, verify
from .manifest_file import default_pretrained, read_manifest
from .checkpoint import CheckpointError
from .data import DatasetError
from .train import DistillWeights, Hyper

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
# The start point of the default bundle; any Hugging Face BERT checkpoint folder works (--pretrained).
DEFAULT_PRETRAINED = SHARED / "pretrained" / "all-minilm-l6-v2"
FIXTURE = REPO / "tests" / "fixtures" / "tiny-bundle"
# The command line's step schedule (train, full, distill, sweep): a task of a few dozen examples gets
# enough steps to train a confident head; a recipe sets its own (`minSteps`, `patience`; 0 there).
MIN_STEPS = 150
PATIENCE = 5


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults; wraps only at spaces, so a default path stays whole (it can be copied) even if longer than a line."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(self._whitespace_matcher.sub(" ", text).strip(), width, break_on_hyphens=False, break_long_words=False)


def _share(text: str) -> float:
    """A rate given as a share (0.03 for 3%), refused outside (0, 0.5]: 3 would turn every input away."""
    value = float(text)
    if not 0 < value <= 0.5:
        raise argparse.ArgumentTypeError(f"a share of in-scope inputs between 0 and 0.5 (0.03 for 3%), got {text}")
    return value


def _weights(text: str) -> tuple[float, float, float]:
    """Three comma-separated weights of the combined out-of-domain measure (`ood.measure_weights`)."""
    from .ood import measure_weights

    try:
        return measure_weights([float(x) for x in text.split(",")])
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _calibration_share(text: str) -> float:
    from .holdout import MAX_SHARE

    value = float(text)
    if not 0 <= value <= MAX_SHARE:
        raise argparse.ArgumentTypeError(f"must lie in [0, {MAX_SHARE}], not {text}")
    return value


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def _add_training_args(parser: argparse.ArgumentParser, distill: bool = False) -> None:
    parser.add_argument("--epochs", type=float, default=3.0, help="training epochs (fractions allowed); more when they give fewer than --min-steps steps")
    parser.add_argument("--min-steps", type=int, default=MIN_STEPS, help="at least this many optimisation steps (batches): small data trains more epochs; a large dataset's epochs already give more (0: epochs alone)")
    parser.add_argument("--patience", type=int, default=PATIENCE, help="early stopping: stop after this many dev checks in a row without a better dev score (or, at an equal score, a lower dev loss), keeping the best check's weights; a check every epoch, or every 1/20 of the run when that is longer (0: off)")
    parser.add_argument("--batch-size", type=int, default=32, help="examples per training step")
    parser.add_argument("--lr", type=float, default=1e-4, help="peak learning rate (linear warm-up and decay)")
    parser.add_argument("--seed", type=int, default=0, help="seed for initialisation, shuffling and sampling")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (None: every core)")
    if distill:
        parser.add_argument("--soft", type=float, default=1.0, help="weight of the soft-label (KD) loss")
        parser.add_argument("--hidden", type=float, default=1.0, help="weight of the hidden-state MSE loss")
        parser.add_argument("--hard", type=float, default=0.5, help="weight of the hard-label loss")
        parser.add_argument("--temperature", type=float, default=2.0, help="KD softmax temperature")


def _add_task_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pretrained", default=str(DEFAULT_PRETRAINED), help="Hugging Face BERT checkpoint folder (config.json, vocab.txt, model.safetensors or pytorch_model.bin)")
    parser.add_argument("--data", type=Path, default=SHARED / "data", help="folder with tasks.json and <task>/{train,dev}.jsonl|csv, or a single classification task's train.jsonl|csv and dev.jsonl|csv (training/README.md, 'Your own task')")
    parser.add_argument("--task", required=True, help="task name: a key of tasks.json, or the name a single-task folder's task gets")
    parser.add_argument("--description", default=None, help="the task's description in the bundle and GET /tasks (None: tasks.json's description, else a default)")
    parser.add_argument("--max-train", type=int, default=None, help="train on a seeded sample of at most this many examples")
    parser.add_argument("--max-length", type=int, default=128, help="max tokens per input, [CLS]/[SEP] included")
    parser.add_argument("--crf", action="store_true", help="tagging tasks: add a CRF layer (NLL loss, Viterbi decoding) to the heads")
    parser.add_argument("--int8-matmuls", action="store_true", help="train on a trunk whose weight matmuls run in int8 (for a bundle with trunk.int8Matmuls)")
    parser.add_argument("--calibration-share", type=_calibration_share, default=0.0, help="classification: hold this share of train (chosen by a hash of each text) out of training, so that `bundle add` calibrates the out-of-domain fallback on the head's own features too (bench/experiments/README.md, 'heads' own features'); 0.1-0.2 for a task of thousands of rows (0: off)")
    parser.add_argument("--allow-rare-labels", action="store_true", help="classification: train even with labels of fewer than 2 training examples or labels equal after case and whitespace folding (refused otherwise: usually typos)")


def _hyper(args: argparse.Namespace) -> Hyper:
    return Hyper(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed, min_steps=args.min_steps, patience=args.patience)


def _session(args: argparse.Namespace):  # noqa: ANN202 - TaskSession, imported lazily
    from .pipeline import TaskSession, set_threads

    set_threads(args.threads)
    from .checkpoint import load_checkpoint
    from .data import load_task_spec

    checkpoint = load_checkpoint(args.pretrained)  # a wrong checkpoint path is named before any data problem
    spec = load_task_spec(args.data, args.task, args.description)
    session = TaskSession.open(checkpoint, args.data, args.task, args.max_train, args.max_length, args.seed, spec=spec, crf=args.crf, int8_matmuls=args.int8_matmuls,
        calibration_share=args.calibration_share)
    _check_labels(session, args)
    return session


def _check_labels(session, args: argparse.Namespace) -> None:  # noqa: ANN001 - TaskSession, imported lazily
    """Classification: prints the examples per label (stderr: stdout stays the command's answer) and refuses rare or look-alike labels."""
    from .data import split_file
    from .kinds.classification import KIND as CLASSIFICATION
    from .labels import check_labels, counts_line, label_counts

    if session.spec.output_kind is not CLASSIFICATION:
        return
    train = label_counts(session.spec, session.train)
    print(f"{session.spec.name}: {counts_line(train, label_counts(session.spec, session.dev))}", file=sys.stderr)
    check_labels(session.spec, train, split_file(args.data, args.task, "train"), args.allow_rare_labels)


def cmd_train(args: argparse.Namespace) -> None:
    info, _ = _session(args).partial(args.frozen, _hyper(args), args.out)
    print(json.dumps({"run": str(args.out), "branch_layer": info.branch_layer, "head_layers": info.head_layers, "dev": info.metrics}, indent=2))


def cmd_distill(args: argparse.Namespace) -> None:
    from .pipeline import TaskSession, set_threads
    from .runs import load_run, run_checkpoint

    set_threads(args.threads)
    info, teacher = load_run(args.teacher)
    session = TaskSession.open(run_checkpoint(info, args.pretrained), args.data, info.spec.name, info.hyper.get("train_examples") if args.max_train is None else args.max_train, info.hyper.get("max_length", 128), info.hyper.get("seed", 0), spec=info.spec,
        int8_matmuls=info.int8_matmuls,  # the student learns on its teacher's trunk
        calibration_share=info.hyper.get("calibration_share", 0.0),  # nor on the teacher's held-out part
    )
    weights = DistillWeights(args.soft, args.hidden, args.hard, args.temperature)
    s_info, _ = session.distill(teacher, info, args.layers, _hyper(args), weights, args.out, teacher_dir=str(args.teacher), width=args.width)
    print(json.dumps({"run": str(args.out), "teacher_dev": info.metrics, "student_dev": s_info.metrics}, indent=2))


def cmd_full(args: argparse.Namespace) -> None:
    print(json.dumps({"task": args.task, "full_fine_tuning_dev": _session(args).full(_hyper(args))}, indent=2))


def cmd_sweep(args: argparse.Namespace) -> None:
    from .sweep import StudySettings, markdown_table, run_sweep

    session = _session(args)
    settings = StudySettings(
        frozen=tuple(_ints(args.frozen)), students=tuple(_ints(args.students)), hyper=_hyper(args), distill_hyper=_hyper(args),
        weights=DistillWeights(args.soft, args.hidden, args.hard, args.temperature), tolerance=args.tolerance, with_full=not args.no_full,
        all_students=args.all_students, widths=tuple(float(w) for w in args.widths.split(",") if w.strip()),
    )
    result = run_sweep(session, args.out, settings)
    report = f"# {args.task}: frozen-layer sweep\n\n{markdown_table(result)}\n\n![dev score vs frozen layers](frozen-layers.png)\n"
    from .kinds.classification import KIND as CLASSIFICATION

    if session.spec.output_kind is CLASSIFICATION:  # how sure the chosen head is, label by label
        from .labels import served_dev_table

        table = served_dev_table(session.checkpoint, args.data, args.out / result.chosen["run"], session.max_length)
        report += f"\n## The chosen head on dev, per label (as served)\n\nconfidence: the top softmax score the service answers with.\n\n{table}\n"
    (args.out / "report.md").write_text(report, encoding="utf-8")
    print(report)
    chosen = result.chosen
    # The one line a script needs: the run folder to `bundle add` or `export-head` (also in sweep.json).
    print(f"chosen head: {args.out / chosen['run']} (branch layer {chosen['branch_layer']}, {chosen['head_layers']} head layers, dev score {chosen['metrics']['score']:.1f})")


def cmd_bundle(args: argparse.Namespace) -> None:
    writer = BundleWriter(args.bundle)
    if args.action == "add":
        data = args.data if args.data != SHARED / "data" else None  # None: where the run was trained
        manifest = writer.add(args.run, args.name, args.version, args.pretrained, args.max_length, data_root=data, ood=not args.no_ood, rejection=args.rejection, weights=args.ood_weights)
    elif args.action == "replace":
        data = args.data if args.data != SHARED / "data" else None
        manifest = writer.replace(args.run, args.pretrained, version=args.version, data_root=data, ood=not args.no_ood, rejection=args.rejection, weights=args.ood_weights)
    elif args.action == "remove":
        manifest = writer.remove(args.task, args.version)
    elif args.action == "calibrate":
        tasks = args.task.split(",") if args.task else None
        manifest, _ = writer.calibrate(args.data, args.pretrained, tasks, args.rejection, args.label, args.version, args.max_train or 20_000, weights=args.ood_weights)
    elif args.action == "retarget":
        manifest = writer.retarget(args.rejection, args.version)
    elif args.action == "ood-report":
        writer.ood_report(args.data, args.pretrained, args.task.split(",") if args.task else None, args.probes)
        return
    elif args.action == "add-embedding":
        from .embedding import add_embedding

        entry = add_embedding(args.bundle, args.pretrained or _bundle_pretrained(args.bundle), args.name or "embedding", args.branch_layer, args.version)
        print(f"{args.bundle}: task {entry['name']} (embedding, {entry['output']['dimensions']} dimensions, branch layer {entry['branchLayer']}) written")
        return
    elif args.action == "add-examples":
        from .embedding import add_examples

        if not args.name or not args.examples:
            raise ValueError("add-examples needs --name and --examples (a JSON file mapping each label to its example utterances)")
        examples = json.loads(args.examples.read_text(encoding="utf-8"))
        entry = add_examples(args.bundle, args.name, examples, args.pretrained or _bundle_pretrained(args.bundle), args.embedding, args.fallback_label, args.version)
        print(f"{args.bundle}: task {entry['name']} (examples, {len(entry['output']['labels'])} labels, fallback below cosine {entry['output']['fallback']['threshold']}) written")
        return
    elif args.action == "pair-source":
        _pair_source(args)
        return
    elif args.action == "add-cuda-trunk":
        from .float16 import add_cuda_graphs

        result = add_cuda_graphs(args.bundle, args.data, args.pretrained, args.max_dev)
        print(f"{args.bundle}: trunk.float16 written; largest logit difference from the trunk on parity.json's texts {result['maxParityLogitDifference']}")
        return
    else:
        problems = verify(args.bundle)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            sys.exit(1)
        print(f"{args.bundle}: valid")
        return
    print(f"{args.bundle}: {manifest['name']}@{manifest['version']}, tasks {', '.join(t['name'] for t in manifest['tasks'])}; trunk depth {manifest['trunk']['numLayers']}")


def _pair_source(args: argparse.Namespace) -> None:
    """Each pair task both ways on dev (joint pass, two embeddings); the better one written into the manifest."""
    from .bundle import bump_version
    from .pair_source import DEFAULT_MAX_TRAIN, EMBEDDINGS, JOINT_PASS, apply, compare

    version = args.version or bump_version(read_manifest(args.bundle)["version"])  # one new version for the whole command
    for task in (args.task or "stsb,mrpc").split(","):
        comparison = compare(args.bundle, args.data, task, args.embedding, args.max_train or DEFAULT_MAX_TRAIN, args.seed)
        for way in (JOINT_PASS, EMBEDDINGS):
            print(f"{task} dev, {way}: " + ", ".join(f"{k} {v:.2f}" for k, v in comparison.dev[way].items()))
        entry = apply(args.bundle, comparison, args.embedding, args.seed, version)
        mapping = comparison.mapping
        print(f"{args.bundle}: task {task} served from {entry['output']['source']['way']} (z = {mapping.weights[0]:.4f} * cosine + {mapping.bias:.4f}, fitted on {comparison.train_examples} train pairs)")


def _bundle_pretrained(bundle: Path) -> Path:
    """The bundle's checkpoint in ../shared/pretrained, by the name its trunk records."""
    return default_pretrained(read_manifest(bundle))


def cmd_embedding_eval(args: argparse.Namespace) -> None:
    from .embedding_eval import measure

    result = measure(args.bundle, args.pretrained or _bundle_pretrained(args.bundle), args.data, args.per_task, seed=args.seed)
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


def cmd_export_head(args: argparse.Namespace) -> None:
    entry = BundleWriter(args.bundle).head_for_upload(args.run, args.out, rejection=args.rejection, weights=args.ood_weights)
    print(f"{args.out}: head.onnx and entry.json for task {entry['name']} version {entry['version']} (branch layer {entry['branchLayer']}); upload with:")
    # $ADMIN_KEY: the service's Admin:ApiKey (README, "Training and adding heads"), left for the shell to fill in.
    print(f"curl -s -X POST {args.service.rstrip('/')}/admin/tasks/upload -H \"X-Api-Key: $ADMIN_KEY\" -F \"manifest=<{args.out / 'entry.json'}\" -F \"head=@{args.out / 'head.onnx'}\"")


def cmd_fallback(args: argparse.Namespace) -> None:
    from .fallback import CURVE_FILE, FALLBACK_FILE, fit_fallback
    from .pipeline import set_threads
    from .runs import read_info, run_checkpoint

    set_threads(args.threads)
    info = read_info(args.run)
    choice = fit_fallback(run_checkpoint(info, args.pretrained), args.data, args.run, args.label, args.max_cost, args.probe, args.probe_label, info.hyper.get("max_length", 128))
    s = choice.selection
    for rule, point in choice.chosen.items():
        print(f"{rule:>15}: threshold {point['threshold']:.6g}  in-scope accuracy {point['inScopeAccuracy']:.2f}  out-of-scope recall {point['oosRecall']:.1f}")
    print(f"chosen: {choice.rule} < {choice.threshold:.6g} -> {choice.label!r}: in-scope accuracy {s['inScopeAccuracyWithout']:.2f} -> {s['inScopeAccuracy']:.2f}, "
          f"out-of-scope recall {s['oosRecallWithout']:.1f} -> {s['oosRecall']:.1f} ({s['oosExamples']:.0f} out-of-scope dev examples)")
    print(f"written: {args.run / FALLBACK_FILE}, {args.run / CURVE_FILE}; `bundle add`/`replace` carry it into the manifest")


def cmd_export_single(args: argparse.Namespace) -> None:
    from .export import export_single_task
    from .modeling import SingleTaskModel
    from .runs import load_run, run_checkpoint
    from .train import build_trunk, served_head

    info, head = load_run(args.run)
    trunk = build_trunk(run_checkpoint(info, args.pretrained), info.branch_layer, info.int8_matmuls)
    # The head as a bundle would serve it (with an int8 trunk, its token-level layers in int8 too).
    export_single_task(SingleTaskModel(trunk, info.branch_layer, served_head(head, info.int8_matmuls)), args.out)
    print(f"{args.out}: whole single-task model ({info.branch_layer} frozen + {info.head_layers} task layers)")


def cmd_export_baselines(args: argparse.Namespace) -> None:
    from .baselines import export_baselines

    manifest_name = json.loads((args.bundle / "manifest.json").read_text(encoding="utf-8"))["trunk"]["pretrained"]["name"]
    index = export_baselines(args.bundle, args.out, args.pretrained or SHARED / "pretrained" / manifest_name, float16=args.float16)
    print(f"{args.out}: {len(index['tasks'])} whole single-task models of {index['layers']} layers")


def cmd_fixtures(args: argparse.Namespace) -> None:
    from .fixtures import build_fixture_bundle

    build_fixture_bundle(args.out, args.data, args.vocab)
    print(f"{args.out}: fixture bundle written")


def cmd_recipe(args: argparse.Namespace) -> None:
    from .recipe import build_from_recipe

    build_from_recipe(args.recipe, args.out, args.runs, args.only, args.threads, args.tasks)


def cmd_reference(args: argparse.Namespace) -> None:
    from .reference import run_command

    run_command(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mtbert", formatter_class=HelpFormatter, description="MultiTaskBert training toolkit: partial fine-tuning, distillation, ONNX export, bundle merge.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", formatter_class=HelpFormatter, help="partial fine-tuning: train the top L-F layers of one task (a teacher head)")
    _add_task_args(p)
    p.add_argument("--frozen", type=int, required=True, help="F: frozen layers; the head branches from trunk layer F")
    p.add_argument("--out", type=Path, required=True, help="run folder to write (run.json, head.pt, head.onnx)")
    _add_training_args(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("distill", formatter_class=HelpFormatter, help="compress a teacher head into fewer layers by knowledge distillation (a CRF teacher gives a CRF student)")
    p.add_argument("--teacher", type=Path, required=True, help="teacher run folder (from `train`)")
    p.add_argument("--layers", type=int, required=True, help="student layers (fewer than the teacher's, or as many when --width < 1)")
    p.add_argument("--width", type=float, default=1.0, help="fraction of the attention heads and feed-forward units each student layer keeps (0 < w <= 1)")
    p.add_argument("--out", type=Path, required=True, help="run folder of the student")
    p.add_argument("--data", type=Path, default=SHARED / "data", help="dataset folder (as for train)")
    p.add_argument("--pretrained", default=None, help="checkpoint folder, if it moved since training")
    p.add_argument("--max-train", type=int, default=None, help="training sample size (None: the teacher's)")
    _add_training_args(p, distill=True)
    p.set_defaults(func=cmd_distill)

    p = sub.add_parser("full", formatter_class=HelpFormatter, help="full fine-tuning of every layer: the reference dev score")
    _add_task_args(p)
    _add_training_args(p)
    p.set_defaults(func=cmd_full)

    p = sub.add_parser("reference", formatter_class=HelpFormatter, help="full fine-tuning as published work trains it (warm-up, whole epochs, best dev epoch), resumable; one task or a recipe's tasks; writes references/<task>.json")
    from .reference import add_arguments

    add_arguments(p, REPO, SHARED)
    p.set_defaults(func=cmd_reference)

    p = sub.add_parser("sweep", formatter_class=HelpFormatter, help="full fine-tuning, teachers at several F, students; choose a head; plot")
    _add_task_args(p)
    p.add_argument("--frozen", default="2,3,4,5", help="comma-separated frozen-layer counts to try")
    p.add_argument("--students", default="1,2", help="comma-separated student depths")
    p.add_argument("--widths", default="", help="comma-separated student widths < 1 to try besides full width (e.g. 0.5,0.25: thinner layers)")
    p.add_argument("--tolerance", type=float, default=1.0, help="points below full fine-tuning a chosen head may be")
    p.add_argument("--no-full", action="store_true", help="skip full fine-tuning (compare with the best teacher)")
    p.add_argument("--all-students", action="store_true", help="distil every good teacher, not only until a student meets the target")
    p.add_argument("--out", type=Path, required=True, help="study folder: one run folder per head, sweep.json, report.md, frozen-layers.png")
    _add_training_args(p, distill=True)
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("bundle", formatter_class=HelpFormatter, help="create/extend a bundle: add, replace, remove a task; verify; add-cuda-trunk (float16 trunk + float heads for CUDA, scored on --data); calibrate (out-of-domain fallback, temperature, served-by-default, from --data); retarget (thresholds for another --rejection, from the stored curves); ood-report (fallback rates on in-scope dev and other domains); add-embedding (the sentence-embedding head); add-examples (a task defined by example utterances); pair-source (pair tasks from two embeddings or the joint pass, the better on dev)")
    p.add_argument("action", choices=["add", "replace", "remove", "verify", "add-cuda-trunk", "calibrate", "retarget", "ood-report", "add-embedding", "add-examples", "pair-source"], help="what to do")
    p.add_argument("bundle", type=Path, help="bundle folder")
    p.add_argument("--run", type=Path, help="run folder of the head (add, replace)")
    p.add_argument("--task", help="task to remove; calibrate, ood-report: comma-separated classification tasks (None: every one); pair-source: comma-separated pair tasks (None: stsb,mrpc)")
    p.add_argument("--rejection", type=_share, default=None, help="add, replace, calibrate, retarget: share of in-scope inputs the out-of-domain fallback may turn away; with 1,000 calibration examples or more the threshold keeps the 95%% bound of that share within it, with fewer it is the fitted curve's point (None: the rate the task recorded, aimedAt, else 0.01, or 0.02 for a task of fewer examples, whose other-assistant requests lie closer: bench/experiments/README.md, third round)")
    p.add_argument("--ood-weights", type=_weights, default=None, help="add, replace, calibrate: the combined measure of a head trained with --calibration-share: weights of its three parts, the pretrained layer mean, the head's [CLS] state against its class means and against its nearest training example (scaled to sum to 1; None: what the task recorded, else 0.5,0.25,0.25; 0,0.5,0.5 reads the head's features alone)")
    p.add_argument("--label", default=None, help="calibrate: fallback label (None: the task's current one, else out_of_scope)")
    p.add_argument("--name", help="bundle name (when add creates it; None: the folder's name)")
    p.add_argument("--version", help="bundle version to set (None: 1 for a new bundle, else the current one with its last number + 1, e.g. 1.4.1 -> 1.4.2)")
    p.add_argument("--max-length", type=int, default=128, help="tokenizer max length (when add creates it)")
    p.add_argument("--pretrained", default=None, help="checkpoint folder, if it moved since training (add-cuda-trunk: default shared/pretrained/<trunk.pretrained.name>)")
    p.add_argument("--data", type=Path, default=SHARED / "data", help="add-cuda-trunk: datasets whose dev splits score every head on both trunks; calibrate: datasets with each task's train and dev splits (pair-source too)")
    p.add_argument("--max-dev", type=int, default=None, help="add-cuda-trunk: score on a seeded sample of at most this many dev examples per task")
    p.add_argument("--max-train", type=int, default=None, help="calibrate (None: 20000), pair-source (None: 2000): fit on a seeded sample of at most this many training examples per task")
    p.add_argument("--probes", type=Path, default=None, help="ood-report: datasets whose dev splits are the other-domain probes (None: --data; e.g. ../../shared/data for an own task's folder)")
    p.add_argument("--no-ood", action="store_true", help="add, replace: leave a classification task without the out-of-domain fallback (by default it is calibrated from the run's data, or --data)")
    p.add_argument("--branch-layer", type=int, default=None, help="add-embedding: trunk layer the embedding head reads (None: the deepest trunk output); the head is the checkpoint's layers above it")
    p.add_argument("--examples", type=Path, default=None, help="add-examples: JSON file {label: [utterance, ...]} (--name: the task's name)")
    p.add_argument("--embedding", default=None, help="add-examples, pair-source: the embedding task to embed with (None: the bundle's first)")
    p.add_argument("--seed", type=int, default=0, help="pair-source: seed of the train sample")
    p.add_argument("--fallback-label", default="out_of_scope", help="add-examples: the label answered when no centroid is close enough")
    p.set_defaults(func=cmd_bundle)

    p = sub.add_parser("embedding-eval", formatter_class=HelpFormatter, help="measure a bundle's embedding task on dev: cosine to the float32 checkpoint, Banking77 from 5/10 examples per label (centroid vs kNN), STS-B and MRPC from the cosine")
    p.add_argument("bundle", type=Path, help="bundle folder with an embedding task")
    p.add_argument("--pretrained", default=None, help="checkpoint folder (default shared/pretrained/<trunk.pretrained.name>)")
    p.add_argument("--data", type=Path, default=SHARED / "data", help="datasets root")
    p.add_argument("--per-task", type=int, default=150, help="dev examples per task (seeded sample) for the agreement measure")
    p.add_argument("--seed", type=int, default=0, help="seed of every sample")
    p.add_argument("--out", type=Path, default=None, help="JSON file to write the figures to")
    p.set_defaults(func=cmd_embedding_eval)

    p = sub.add_parser("fallback", formatter_class=HelpFormatter, help="choose a classification head's out-of-scope fallback (rule and threshold) on dev; bundle add/replace carry it")
    p.add_argument("--run", type=Path, required=True, help="run folder of the head")
    p.add_argument("--data", type=Path, required=True, help="datasets root (tasks.json and <task>/dev.jsonl)")
    p.add_argument("--label", required=True, help="the label to answer when the rule fires (a class of the task, e.g. CLINC150's oos, or a new one)")
    p.add_argument("--max-cost", type=float, default=1.0, help="in-scope accuracy (points) the fallback may cost on dev")
    p.add_argument("--probe", default=None, help="a task whose dev examples labelled --probe-label are out of scope for this one (e.g. clinc150)")
    p.add_argument("--probe-label", default="oos", help="the probe task's out-of-scope label")
    p.add_argument("--pretrained", default=None, help="checkpoint folder, if it moved since training")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (None: every core)")
    p.set_defaults(func=cmd_fallback)

    p = sub.add_parser("export-head", formatter_class=HelpFormatter, help="write a run's head and manifest entry for POST /admin/tasks on a service serving BUNDLE (the bundle is not changed)")
    p.add_argument("--run", type=Path, required=True, help="run folder of the head (e.g. the one sweep chose)")
    p.add_argument("--bundle", type=Path, required=True, help="the folder of the bundle the service serves (or a copy of it)")
    p.add_argument("--out", type=Path, required=True, help="folder to write head.onnx and entry.json to")
    p.add_argument("--service", default="http://localhost:5176", help="the service's address, for the printed upload command (the default: `dotnet run`'s)")
    p.add_argument("--rejection", type=_share, default=None, help="share of in-scope inputs the head's out-of-domain fallback may turn away (as bundle add --rejection; None: 0.01, or 0.02 under 1,000 training examples)")
    p.add_argument("--ood-weights", type=_weights, default=None, help="combined measure of a head trained with --calibration-share: weights of its three parts, the pretrained layer mean, the head's [CLS] state against its class means and against its nearest training example (scaled to sum to 1; None: what the task recorded, else 0.5,0.25,0.25; 0,0.5,0.5 reads the head's features alone)")
    p.set_defaults(func=cmd_export_head)

    p = sub.add_parser("export-single", formatter_class=HelpFormatter, help="export a run as one whole single-task ONNX model (benchmark baseline)")
    p.add_argument("--run", type=Path, required=True, help="run folder")
    p.add_argument("--out", type=Path, required=True, help="ONNX file to write")
    p.add_argument("--pretrained", default=None, help="checkpoint folder, if it moved since training")
    p.set_defaults(func=cmd_export_single)

    p = sub.add_parser("export-baselines", formatter_class=HelpFormatter, help="export one whole single-task model per bundle task (the benchmark's one-model-per-task baseline)")
    p.add_argument("--bundle", type=Path, required=True, help="bundle folder whose tasks get a baseline")
    p.add_argument("--out", type=Path, required=True, help="folder for the baselines")
    p.add_argument("--pretrained", type=Path, default=None, help="checkpoint folder (default: shared/pretrained/<trunk.pretrained.name>)")
    p.add_argument("--float16", action="store_true", help="float16 baselines for CUDA (compared with the bundle's float16 trunk), weights in one shared file")
    p.set_defaults(func=cmd_export_baselines)

    p = sub.add_parser("fixtures", formatter_class=HelpFormatter, help="regenerate the tiny fixture bundle for the service's tests")
    p.add_argument("--out", type=Path, default=FIXTURE, help="bundle folder to (re)write")
    p.add_argument("--data", type=Path, default=SHARED / "data", help="folder with tasks.json and the fixture's tasks (sst2, snips, rte, stsb, snips_slots)")
    p.add_argument("--vocab", type=Path, default=FIXTURE / "vocab.txt.gz", help="vocabulary (plain or gzipped; bert-base-uncased's is the committed fixture's)")
    p.set_defaults(func=cmd_fixtures)

    p = sub.add_parser("recipe", formatter_class=HelpFormatter, help="build a whole bundle from a recipe (e.g. recipes/default.json) and its REPORT.md")
    p.add_argument("recipe", type=Path, help="recipe JSON")
    p.add_argument("--out", type=Path, required=True, help="bundle folder to (re)create")
    p.add_argument("--runs", type=Path, required=True, help="folder for the runs of every task")
    p.add_argument("--only", default=None, help="comma-separated tasks to (re)train; others reuse their runs")
    p.add_argument("--tasks", default=None, help="comma-separated tasks to train now, without writing the bundle (share a build among processes)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (None: every core)")
    p.set_defaults(func=cmd_recipe)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (CheckpointError, DatasetError, BundleError, FileNotFoundError, ValueError) as error:
        print(f"mtbert {args.command}: error: {error}", file=sys.stderr)
        sys.exit(2)
