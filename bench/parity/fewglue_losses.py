"""FewGLUE parity with fixed weights: PET's training losses (timoschick/pet @21d32de) beside the suite's.

``python -m bench.parity fewglue --ref /path/to/pet --parts losses`` writes each tiny model (ALBERT, BERT,
RoBERTa) as transformers 3.0.2 reads it, runs ``fewglue_losses_ref.py`` in PET's environment and keeps, per
case (every task x PET pattern, :func:`grid`), PET's loss on one batch of its first ``N`` training examples
(model in eval mode: no dropout), its losses per micro-batch of ``MICRO`` (what its gradient accumulation
averages: item H), the label logits of verbalizer patterns, and for the auxiliary MLM case the masking
``_mask_tokens`` drew with a fixed seed and its loss (item G), for the COPA classifier case (item E) its inputs
and, on fixed head weights, its logits and losses. :func:`compare` sets the suite's numbers for the same
examples beside them (CI: ``tests/parity/test_fewglue_losses.py``).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from bench.parity.golden import load_golden, max_rel_diff, write_golden
from bench.parity.refenv import run_ref_script

MODELS = ("tiny-albert", "tiny-bert", "tiny-roberta")
MODEL = "tiny-albert"  # the model of the item tests (E, G, H, ReCoRD's loss)
N, MICRO = 8, 2  # one batch of PET's first 8 training examples; PET's micro-batch: 2 per GPU (8 accumulation steps)


def golden_name(model: str) -> str:
    return f"losses_{model}"


GOLDEN = golden_name(MODEL)
PET_HEAD_EPS = 1e-5  # transformers 3.0.2's AlbertMLMHead LayerNorm: torch's default eps, not config.layer_norm_eps
MAX_LENGTH = 256  # PET's --pet_max_seq_length (README SuperGLUE command) = the tiny model's positions


@dataclass(frozen=True)
class Case:
    name: str
    task: str
    pattern: int
    mlm: bool = False  # the auxiliary MLM loss on the pattern's unlabeled-style inputs
    classifier: bool = False  # the distilled sequence classifier's inputs (item E), no loss
    n: int = N
    micro: int = MICRO
    seed: int = 0  # torch.manual_seed before PET's _mask_tokens (mlm case: the first seed from here whose draw
    # also picks a pattern's mask, so the golden shows that PET's masking can)


# classifier case: fixed teacher logits per example (choice 1, choice 2) for the distillation loss, and fixed head
# weights (PET: ALBERT's pooler dense + classifier linear; the suite: ClassifierHead's dense + classifier)
TEACHER = [[1.0, -0.5], [-0.25, 0.75], [2.0, 0.0], [0.0, -1.5], [0.5, 0.5], [-1.0, 1.0], [0.3, -0.2], [-2.0, 0.4]]
HEAD_SEED = 23


# the sequence classifier's (dense + tanh, linear) weights as transformers 3.0.2 names them per model type
HEAD_KEYS = {"albert": ("albert.pooler", "classifier"), "bert": ("bert.pooler.dense", "classifier"),
             "roberta": ("classifier.dense", "classifier.out_proj")}


def classifier_head_weights(hidden: int, labels: int = 2, arch: str = "albert") -> dict[str, torch.Tensor]:
    """PET's ``<Arch>ForSequenceClassification`` head as fixed numbers, keyed as 3.0.2 names them
    (:data:`HEAD_KEYS`): the dense + tanh layer (ALBERT/BERT's pooler, RoBERTa's head dense) and the output layer."""
    dense, out = HEAD_KEYS[arch]
    g = torch.Generator().manual_seed(HEAD_SEED)
    return {f"{dense}.weight": torch.randn(hidden, hidden, generator=g) * 0.2,
            f"{dense}.bias": torch.randn(hidden, generator=g) * 0.1,
            f"{out}.weight": torch.randn(labels, hidden, generator=g) * 0.2,
            f"{out}.bias": torch.randn(labels, generator=g) * 0.1}


CASES = (
    Case("rte_p0", "RTE", 0),  # a pair pattern: CE over the label words
    Case("cb_p4", "CB", 4),  # three labels, one sequence
    Case("boolq_p1", "BoolQ", 1),
    Case("wic_p2", "WiC", 2),
    Case("multirc_p0", "MultiRC", 0),
    Case("copa_p0", "COPA", 0),  # CopaTaskHelper: hinge on the batch's mean token CEs
    Case("wsc_p0", "WSC", 0),  # WscTaskHelper: the masked-LM loss of the answer tokens (and pad masks)
    Case("record_p0", "ReCoRD", 0, n=44, micro=1),  # RecordTaskHelper: hinge per candidate slot, per example (micro 1)
    Case("mlm_rte_p0", "RTE", 0, mlm=True, n=4),  # _mask_tokens + the masked-LM loss
    Case("classifier_copa", "COPA", 0, classifier=True),  # PET's COPA classifier: one pair, 2 labels (item E)
)


def grid() -> tuple[Case, ...]:
    """Every task x PET pattern of the suite's templates (the docs table), then the MLM and classifier cases;
    :data:`CASES`' loss cases are among them under the same names."""
    from bench.parity.fewglue import PET_TASK, patterns

    record = next(c for c in CASES if c.task == "ReCoRD")
    out = [Case(f"{task.lower()}_p{p}", task, p, **({"n": record.n, "micro": record.micro} if task == "ReCoRD" else {}))
           for task in PET_TASK for p in patterns(task)]
    return (*out, *(c for c in CASES if c.mlm or c.classifier))


def export_model(folder: Path, classifier_head: bool = False, model: str = MODEL) -> Path:
    """The tiny model as transformers 3.0.2 / torch 1.5 read it: config.json, a legacy-format pytorch_model.bin
    and the tokenizer's files; ``classifier_head``: with :func:`classifier_head_weights` added."""
    from bench.parity.fewglue import _backbone
    from bench.parity.fewglue_tokenizers import MODELS as MODEL_TYPES
    from bench.parity.fewglue_tokenizers import _snapshot, export_tokenizer

    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(_snapshot(model) / "config.json", folder / "config.json")
    backbone = _backbone(model, "pet").model
    state = {k: v.detach().cpu().contiguous() for k, v in backbone.state_dict().items()}
    if classifier_head:
        state.update(classifier_head_weights(int(backbone.config.hidden_size), arch=MODEL_TYPES[model]))
    torch.save(state, folder / "pytorch_model.bin", _use_new_zipfile_serialization=False)  # torch 1.5 reads no zip
    files = export_tokenizer(model, folder)
    if "lowercase" in files:  # BertTokenizer lower-cases by default: say the model's casing as a checkpoint does
        (folder / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": files["lowercase"]}))
    return folder


def regenerate(python: Path, ref: Path, head: str, work: Path, models: Sequence[str] = MODELS) -> list[Path]:
    """Run PET's side for every case of :func:`grid` on each model and write one golden file per model."""
    from bench.parity.fewglue import _rows, selection
    from bench.parity.fewglue_tokenizers import MODELS as MODEL_TYPES
    from bench.paths import data_dir

    written = []
    for model in models:
        cases = []
        for case in grid():
            path = work / f"losses-{case.task}-train.jsonl"
            rows = _rows(selection(case.task)["train"], data_dir())
            path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
            cases.append({**asdict(case), "task": case.task.lower(), "file": str(path),
                          "max_seq_length": MAX_LENGTH, **({"teacher": TEACHER[: case.n]} if case.classifier else {})})
        job = {"model_dir": str(export_model(work / f"losses-{model}", model=model)), "model_type": MODEL_TYPES[model],
               "cases": cases, "out": str(work / f"losses-{model}.json"),
               "classifier_dir": str(export_model(work / f"losses-{model}-classifier", True, model))}
        (work / "losses-job.json").write_text(json.dumps(job))
        run_ref_script(python, Path(__file__).with_name("fewglue_losses_ref.py"), [str(work / "losses-job.json")], ref)
        result = json.loads((work / f"losses-{model}.json").read_text())
        payload = {"reference": f"timoschick/pet@{head}", "model": model, "cases": [asdict(c) for c in grid()],
                   **result}
        written.append(write_golden("fewglue", golden_name(model), payload))
    return written


# the suite side --------------------------------------------------------------------------------------------------
def batch_loss(runner, items) -> tuple[torch.Tensor, torch.Tensor]:
    """The task's training loss on ``items`` as one batch, and its label logits (empty without a verbalizer)."""
    batch = runner.collate(items)
    scores = runner.method.scorer()(batch)
    logits = runner.option_scores(scores, batch) if runner.mode == "words" else torch.zeros(0)
    return runner.loss(scores, batch), logits


def suite_case(case: Case, choice_loss: str | None = None, model: str = MODEL) -> dict[str, Any]:
    """The suite's loss (one batch, and per micro-batch) and label logits for the case's examples;
    ``choice_loss``: ``task.choice_loss`` for this call instead of the preset's."""
    from bench.parity.fewglue import suite_task

    runner = suite_task(model, case.task, case.pattern)
    runner.backbone.model.eval()
    items = runner.items("train", train=True)[: case.n]
    preset = runner.task_cfg.get("choice_loss")
    runner.task_cfg["choice_loss"] = choice_loss or preset
    try:
        with torch.no_grad():
            loss, logits = batch_loss(runner, items)
            micro = [float(batch_loss(runner, items[i : i + case.micro])[0]) for i in range(0, case.n, case.micro)]
    finally:
        runner.task_cfg["choice_loss"] = preset
    return {"loss": float(loss), "micro_losses": micro, "logits": logits.tolist(),
            "uids": [it.example.uid for it in items]}


def suite_classifier_inputs(case: Case, overrides: Sequence[str] = ()) -> list[list[list[int]]]:
    """The suite's distilled-classifier inputs (``fewglue_pet_distill_<task>`` with ``overrides``) for the case's
    first training examples: per example its sequences (COPA: PET's one pair, or one per choice with
    ``task.copa_classifier_inputs=choices``)."""
    return [it.sequences for it in suite_classifier_task(case, overrides).items("train")[: case.n]]


def suite_classifier_task(case: Case, overrides: Sequence[str] = (), model: str = MODEL):
    """The ClassificationTask of ``fewglue_pet_distill_<task>`` (with ``overrides``) on the tiny model."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from bench.study import compose_job, hydra_context
    from bench.superglue.task import ClassificationTask

    with hydra_context():
        cfg = OmegaConf.to_container(compose_job(f"fewglue_pet_distill_{case.task.lower()}", model, list(overrides)),
                                     resolve=True)
    from bench.parity.fewglue import _backbone

    method = instantiate(cfg["method"]["component"])
    return ClassificationTask(cfg, _backbone(model, "distill"), method)


def suite_classifier_losses(case: Case, model: str = MODEL) -> dict[str, Any]:
    """The suite's classifier (``fewglue_pet_distill_<task>``'s finetune head set to :func:`classifier_head_weights`,
    eval mode) on the case's first training examples: logits, the task loss on the labels and the distillation loss
    (``DistillTask.loss``) on :data:`TEACHER`."""
    from bench.parity.fewglue_tokenizers import MODELS as MODEL_TYPES
    from bench.superglue.distill import DistillTask

    task = suite_classifier_task(case, model=model)
    method = task.method
    method.setup(task.backbone)
    method.set_num_labels(task.n_out)
    arch = MODEL_TYPES[model]
    weights = classifier_head_weights(int(task.backbone.model.config.hidden_size), task.n_out, arch)
    dense, out = HEAD_KEYS[arch]
    # the preset's head=auto_model: ALBERT / BERT classify the pooler's output (method.pooler: dense + tanh on the
    # first token), RoBERTa its head's own dense + tanh (method.head.dense), as PET's <Arch>ForSequenceClassification
    layer = method.pooler.dense if method.pooler is not None else method.head.dense
    with torch.no_grad():
        layer.weight.copy_(weights[f"{dense}.weight"])
        layer.bias.copy_(weights[f"{dense}.bias"])
        method.head.classifier.weight.copy_(weights[f"{out}.weight"])
        method.head.classifier.bias.copy_(weights[f"{out}.bias"])
    method.eval_mode()
    batch = task.collate(task.items("train")[: case.n])
    batch.teacher = torch.tensor(TEACHER[: case.n])
    distill = DistillTask.__new__(DistillTask)  # its loss only: no unlabeled set needed
    distill.task, distill.temperature = task, 2.0
    with torch.no_grad():
        scores = method.scorer()(batch)
        return {"logits": task.option_scores(scores, batch).tolist(), "loss": float(task.loss(scores, batch)),
                "distillation_loss": float(distill.loss(scores, batch))}


def suite_mlm(case: Case, theirs: dict[str, Any], model: str = MODEL) -> float:
    """The suite's masked-LM loss (``bench.superglue.losses.mlm_loss``) on PET's masked inputs and labels."""
    from bench.parity.fewglue import _backbone
    from bench.superglue.losses import mlm_loss

    backbone = _backbone(model, "pet")
    backbone.model.eval()
    with torch.no_grad():
        logits = backbone.model(input_ids=torch.tensor(theirs["input_ids"]),
                                attention_mask=torch.tensor(theirs["attention_mask"])).logits
        return float(mlm_loss(logits, torch.tensor(theirs["labels"])))




def scaled_diff(ours: Any, theirs: Any) -> float:
    """max |a - b| over the batch's largest |b|: label logits near 0 make a per-logit ratio meaningless."""
    a, b = torch.tensor(ours, dtype=torch.float64), torch.tensor(theirs, dtype=torch.float64)
    return float((a - b).abs().max() / b.abs().max())


@contextmanager
def head_eps(model: str, ref: str = "pet", eps: float | None = PET_HEAD_EPS) -> Iterator[None]:
    """ALBERT's masked-LM head LayerNorm eps set to ``eps`` on the cached ``_backbone(model, ref)`` for the block,
    as the PET / P-Tuning presets' loader sets it (``model.mlm_head_layer_norm_eps``); other archs and
    ``eps=None`` leave the model as loaded."""
    from bench.parity.fewglue import _backbone

    model_ = _backbone(model, ref).model
    norm = model_.predictions.LayerNorm if model_.config.model_type == "albert" and eps is not None else None
    before = norm.eps if norm is not None else None
    if norm is not None:
        norm.eps = eps
    try:
        yield
    finally:
        if norm is not None:
            norm.eps = before


def compare(eps: float | None = PET_HEAD_EPS, model: str = MODEL,
            cases: Sequence[Case] | None = None) -> dict[str, dict[str, Any]]:
    """Per case (default :func:`grid`): max relative differences suite vs PET (loss, micro-batch losses, logits),
    and PET's accumulated loss beside the suite's one-batch loss (item H). ``eps``: ALBERT's masked-LM head
    LayerNorm eps during the comparison (None: the suite's own, ``config.layer_norm_eps``)."""
    with head_eps(model, "pet", eps):
        return _compare(model, grid() if cases is None else cases)


def _compare(model: str, cases: Sequence[Case]) -> dict[str, dict[str, Any]]:
    gold = load_golden("fewglue", golden_name(model))
    out: dict[str, dict[str, Any]] = {}
    for case in cases:
        theirs = gold["cases"][case.name]
        if case.classifier or case.task == "ReCoRD":
            continue  # inputs, not a loss (suite_classifier_inputs); ReCoRD: record_losses
        if case.mlm:
            ours = suite_mlm(case, theirs, model)
            out[case.name] = {"loss": max_rel_diff(ours, theirs["loss"]), "suite_loss": ours, "pet_loss": theirs["loss"],
                              **{k: theirs[k] for k in ("picked", "picked_padding", "picked_pattern_mask",
                                                         "picked_other_special")}}
            continue
        ours = suite_case(case, model=model)
        out[case.name] = {
            "loss": max_rel_diff(ours["loss"], theirs["loss"]),
            "micro_losses": max_rel_diff(ours["micro_losses"], theirs["micro_losses"]),
            "logits": scaled_diff(ours["logits"], theirs["logits"]) if "logits" in theirs else None,
            "suite_loss": ours["loss"], "pet_loss": theirs["loss"], "pet_accumulated": theirs["accumulated_loss"],
            "accumulated_vs_one_batch": max_rel_diff(ours["loss"], theirs["accumulated_loss"]),
        }
    return out


def record_losses(choice_loss: str | None = None, model: str = MODEL) -> list[dict[str, Any]]:
    """ReCoRD's per-example training loss, suite (the preset's ``task.choice_loss``, or ``choice_loss``) vs PET, on
    the training examples whose inputs (candidates included) are identical to PET's (the others differ by PET's
    set() negatives)."""
    from bench.parity import fewglue as fg
    from bench.paths import data_dir

    case = next(c for c in CASES if c.task == "ReCoRD")
    gold = fg.golden(model, case.task)
    rows = fg._rows(gold["selection"]["train"], data_dir())
    ours, _ = fg.suite_records(model, case.task, case.pattern, "train", rows)
    theirs = gold["patterns"][str(case.pattern)]["splits"]["train"]["examples"]
    same = [fg.normalise(case.task, a, True) == fg.normalise(case.task, b, True) for a, b in zip(ours, theirs,
                                                                                                  strict=True)]
    losses = load_golden("fewglue", golden_name(model))["cases"][case.name]["micro_losses"]
    suite = suite_case(case, choice_loss, model)["micro_losses"]
    return [{"index": i, "suite": suite[i], "pet": losses[i],
             "max_candidate_tokens": max(len(o["targets"]) for o in theirs[i]["options"].values()),
             "candidates": len(theirs[i]["options"])}
            for i in range(case.n) if same[i]]
