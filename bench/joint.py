"""Joint training: K independent soft prompts on one frozen backbone, one batched pass per step (issue 29).

Each member (a relation, seed or grid point) is a full :func:`bench.train.fit_steps` run of its own:
its own optimizer state, schedule, epoch counter, data order, evaluation, early stopping and
selected state. Per step the next batch of every active member is concatenated (right-padded to
the widest; on CPU, where padding costs FLOPs, members are split into a few passes of similar widths:
``PAD_SLACK``), each member's prompt vectors fill its own rows, one forward pass and ONE backward pass run
through the frozen backbone, and each member's loss covers its own examples only; the backward pass
runs on the sum of the member losses, so each member's parameters receive exactly its own gradient.
Members that stop leave the batch.

Randomness, so that a member equals its separate run (fp32, CPU):
- data order: :func:`fit_steps` draws it from the member's own ``torch.Generator(seed)``, as ``fit``;
- everything a member does on its own (its optimizer step, evaluation, an encoder that draws random
  numbers) runs with the member's own copy of the global CPU RNG (``Member.rng_state``: the state its separate run has
  when ``fit`` starts) swapped in;
- backbone dropout (P-Tuning's frozen LM in train mode): during the joint forward every
  ``torch.nn.functional.dropout`` call draws each member's mask from that member's RNG at the shape
  its separate batch has (``(rows, width, hidden)``; attention ``(rows, heads, width, width)``),
  which is how PyTorch's CPU dropout (and CPU SDPA's attention dropout) draw it; attention runs
  eager for the joint forward so that its dropout is such a call. On CUDA, dropout kernels draw
  differently: members keep independent streams there, but are not bitwise equal to separate runs.

Prompt encoders of one shape that draw no random numbers (P-Tuning's LSTM and MLP without dropout)
run as one stacked computation (:mod:`bench.methods.batched_encoders`), each member's weights its own;
the members' Adam/AdamW steps run as one foreach update per round (:mod:`bench.joint_optim`), each
member keeping its own optimizer state, learning rate and schedule.

Only frozen-backbone soft-prompt methods (P-Tuning, Prompt Tuning) on encoder-only or decoder-only
backbones join; anything else raises ``ConfigError`` (train it separately).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from bench import precision as precision_policy
from bench.backbones.scoring import ScoringBatch, target_logits
from bench.errors import ConfigError
from bench.joint_optim import FusedAdam
from bench.methods.batched_encoders import batched_vectors
from bench.methods.soft import SoftPromptMethod, embed_batch
from bench.train import FitResult, accumulation_steps, fit_steps, planned_steps

JOINT_MODES = ("auto", "off")


class StepObserver(Protocol):
    """Told around every joint step's forward and backward pass (bench.speed.joint times them on CUDA)."""

    def begin(self) -> None: ...

    def end(self, shapes: list[tuple[int, int, int]]) -> None: ...  # per forward pass: rows, width, targets


STEP_OBSERVERS: list[StepObserver] = []  # empty outside benchmarks: nothing is timed or synchronised
# per device type: how much padding one forward pass may add over its members' own batches before the members
# are split into passes of similar widths. CPU: FLOP-bound (a joint batch padded to the widest member held 1.47x
# the members' own tokens in P-Tuning's LAMA study); devices not listed (CUDA: launch-bound): one pass.
PAD_SLACK: dict[str, float] = {"cpu": 0.1}


@dataclass
class Member:
    """One independent training run: a set-up method (own prompt encoder) and its task."""

    method: SoftPromptMethod
    task: Any  # bench.train.TrainableTask
    trainer_cfg: Mapping
    selection_split: str
    seed: int = 0
    steps_per_epoch: int | None = None
    rng_state: torch.Tensor | None = None  # the global CPU RNG state its separate fit would start with
    name: str = ""
    result: FitResult | None = field(default=None, init=False)


def joint_mode(trainer_cfg: Mapping) -> str:
    """``trainer.joint``: ``auto`` (train jointly where members can join) or ``off``."""
    mode = str(trainer_cfg.get("joint", "auto")).lower()
    if mode not in JOINT_MODES:
        raise ConfigError(f"trainer.joint={mode!r} is not one of {', '.join(JOINT_MODES)}")
    return mode


def why_not_joinable(methods: Sequence[Any]) -> str | None:
    """None when these set-up methods can train jointly, else the reason in words."""
    if not methods:
        return "no members"
    first = methods[0]
    backbone = getattr(first, "backbone", None)
    for method in methods:
        if not isinstance(method, SoftPromptMethod):
            return f"method {method.name} is not a soft-prompt method"
        if method.tunes_backbone:
            return f"method {method.name} tunes the backbone (each member needs its own weights)"
        if method.backbone is not backbone:
            return "members are set up on different backbones"
        if method.backbone_dropout != first.backbone_dropout or type(method) is not type(first):
            return "members differ in method or backbone dropout"
    if backbone.family not in ("mlm", "clm"):
        return f"backbone family {backbone.family!r} (seq2seq decoders are not joined)"
    return None


@contextlib.contextmanager
def own_rng(generator: torch.Generator) -> Iterator[None]:
    """Run with ``generator``'s state as the global CPU RNG; keep what was drawn in ``generator``."""
    outside = torch.get_rng_state()
    torch.set_rng_state(generator.get_state())
    try:
        yield
    finally:
        generator.set_state(torch.get_rng_state())
        torch.set_rng_state(outside)


@dataclass
class _Segment:
    rows: slice  # the member's rows in the joint batch
    width: int  # the member's own padded length
    generator: torch.Generator


@contextlib.contextmanager
def member_dropout(model: torch.nn.Module, segments: list[_Segment]) -> Iterator[None]:
    """Dropout per member (its own RNG, its own batch shape) and eager attention, for one joint forward."""
    original = F.dropout

    def dropout(input: torch.Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> torch.Tensor:
        if not training or p == 0.0:
            return input
        if input.dim() not in (3, 4):
            raise ConfigError(f"joint training cannot split dropout over a tensor of shape {tuple(input.shape)} "
                              "per member: set trainer.joint=off")
        mask = torch.ones_like(input)
        for seg in segments:
            own = (seg.rows, slice(None, seg.width)) if input.dim() == 3 else (
                seg.rows, slice(None), slice(None, seg.width), slice(None, seg.width))
            shape = mask[own].shape
            if p == 1.0:
                noise = torch.zeros(shape, dtype=input.dtype, device=input.device)
            else:  # as PyTorch's CPU dropout: empty_like(x).bernoulli_(1 - p).div_(1 - p)
                noise = torch.empty(shape, dtype=input.dtype, device=input.device).bernoulli_(
                    1 - p, generator=seg.generator).div_(1 - p)
            mask[own] = noise
        return input * mask

    attn = model.config._attn_implementation
    F.dropout = dropout
    model.config._attn_implementation = "eager"
    try:
        yield
    finally:
        F.dropout = original
        model.config._attn_implementation = attn


def _padded(tensor: torch.Tensor | None, width: int, rows: int, like: torch.Tensor) -> torch.Tensor:
    if tensor is None:
        return torch.zeros((rows, width), dtype=like.dtype, device=like.device)
    return F.pad(tensor, (0, width - tensor.shape[1]), value=0)


def joint_batch(batches: Sequence[ScoringBatch], sizes: Sequence[int]) -> ScoringBatch:
    """The members' batches as one (right-padded): rows, target and pseudo-token slots shifted per member;
    member m's pseudo tokens read vectors ``offset_m + k`` (``sizes``: each member's vector count)."""
    for b in batches:
        if b.decoder_input_ids is not None or b.forward_patch is not None or b.soft_rows is None:
            raise ConfigError("joint training joins soft-prompt batches of encoder-only or decoder-only models only")
    width = max(b.input_ids.shape[1] for b in batches)
    row_offsets, vec_offsets = [0], [0]
    for b, n in zip(batches, sizes, strict=True):
        row_offsets.append(row_offsets[-1] + b.input_ids.shape[0])
        vec_offsets.append(vec_offsets[-1] + n)

    def cat(name: str, shift: list[int] | None = None) -> torch.Tensor:
        parts = [getattr(b, name) + (shift[i] if shift else 0) for i, b in enumerate(batches)]
        return torch.cat(parts)

    types = None
    if any(b.token_type_ids is not None for b in batches):
        types = torch.cat([_padded(b.token_type_ids, width, b.input_ids.shape[0], b.input_ids) for b in batches])
    per_row = None if any(b.soft_per_row is None for b in batches) else sum((b.soft_per_row for b in batches), ())
    return ScoringBatch(
        input_ids=torch.cat([_padded(b.input_ids, width, 0, b.input_ids) for b in batches]),
        attention_mask=torch.cat([_padded(b.attention_mask, width, 0, b.input_ids) for b in batches]),
        target_rows=cat("target_rows", row_offsets), target_cols=cat("target_cols"),
        soft_rows=cat("soft_rows", row_offsets), soft_cols=cat("soft_cols"), soft_ids=cat("soft_ids", vec_offsets),
        token_type_ids=types, soft_per_row=per_row, soft_max_id=vec_offsets[-1] - 1)


class _Run:
    """One member's fit_steps with its own RNG (global-state copy, and a device generator for dropout)."""

    def __init__(self, member: Member, precision, progress: bool) -> None:
        self.member = member
        self.cpu = torch.Generator()
        self.cpu.set_state(member.rng_state if member.rng_state is not None else torch.get_rng_state())
        device = member.method.backbone.device
        # CPU: dropout masks come from the member's RNG copy; CUDA: an own stream seeded from the member's seed
        self.dropout_rng = self.cpu if torch.device(device).type == "cpu" else torch.Generator(
            device=device).manual_seed(int(member.seed))
        self.steps = fit_steps(member.method, member.task, member.trainer_cfg, member.selection_split,
                               member.seed, member.steps_per_epoch, precision, progress=progress)
        self.batch: Any = None

    def advance(self, value: torch.Tensor | None = None, first: bool = False) -> bool:
        """Resume the member's loop; False when it has finished (its result is stored)."""
        with own_rng(self.cpu):
            try:
                self.batch = next(self.steps) if first or value is None else self.steps.send(value)
            except StopIteration as done:
                self.member.result = done.value
                return False
        return True

    def send_loss(self, loss: torch.Tensor) -> torch.Tensor:
        with own_rng(self.cpu):
            return self.steps.send(loss)


def fit_jointly(members: Sequence[Member], precision=None, progress: bool = True,
                group_size: int | None = None) -> list[FitResult]:
    """Train every member as :func:`bench.train.fit` would, jointly; returns their results in order.

    ``group_size`` caps how many members share a step (memory); groups run one after another.
    """
    reason = why_not_joinable([m.method for m in members])
    if reason:
        raise ConfigError(f"these members cannot train jointly: {reason}; set trainer.joint=off")
    size = int(group_size or len(members))
    for start in range(0, len(members), size):
        _fit_group(list(members[start : start + size]), precision, progress)
    return [m.result for m in members]


def _fit_group(members: list[Member], precision, progress: bool) -> None:
    backbone = members[0].method.backbone
    precision = precision or precision_policy.of(backbone)
    model = backbone.model
    runs = [_Run(m, precision, progress=False) for m in members]
    # the bar counts joint passes: one micro-batch of every active member (an optimizer step when N = 1)
    accum = [accumulation_steps(m.trainer_cfg) for m in members]
    plans = [(planned_steps(int(m.trainer_cfg.get("max_epochs", 1)), m.trainer_cfg.get("max_steps"),
                            m.steps_per_epoch, n) or 0) * n for m, n in zip(members, accum, strict=True)]
    bar = tqdm(total=max(plans) or None, desc=f"joint training ({len(members)} members)",
               unit="step" if max(accum) == 1 else "micro-batch", leave=False, mininterval=2.0, dynamic_ncols=True,
               **({} if progress else {"disable": True}))  # unset, TQDM_DISABLE=1 in the environment silences it
    # members whose optimizer steps at every joint step, unclipped and unscaled: one foreach Adam update per round
    fused = FusedAdam([m.method.trainable_parameters() if _steps_plainly(m, precision) else [] for m in members])
    with fused:
        _loop(model, runs, precision, fused, bar)
    bar.close()


def _steps_plainly(member: Member, precision) -> bool:
    cfg = member.trainer_cfg
    return not cfg.get("grad_clip") and int(cfg.get("grad_accumulation_steps") or 1) == 1 and not precision.grad_scaler


def _loop(model: torch.nn.Module, runs: list[_Run], precision, fused: FusedAdam, bar) -> None:
    slack = PAD_SLACK.get(torch.device(runs[0].member.method.backbone.device).type)
    active = [r for r in runs if r.advance(first=True)]
    while active:
        bar.set_postfix_str(f"members active {len(active)} / done {len(runs) - len(active)}", refresh=False)
        for observer in STEP_OBSERVERS:
            observer.begin()
        losses, shapes = _joint_losses(model, active, precision, slack)
        terms = [run.send_loss(loss) for run, loss in zip(active, losses, strict=True)]
        torch.stack([t.reshape(()) for t in terms]).sum().backward()
        for observer in STEP_OBSERVERS:
            observer.end(shapes)
        with fused.round(runs.index(r) for r in active):  # each active member's optimizer steps in its turn
            active = [r for r in active if r.advance()]
        bar.update(1)


def _chunks(active: list[_Run], slack: float | None) -> list[list[int]]:
    """Which members share each forward pass: by width, a pass growing while its padded tokens stay within
    ``1 + slack`` of its members' own (None: all in one pass)."""
    if slack is None:
        return [list(range(len(active)))]
    chunks: list[list[int]] = []
    rows = own = 0
    for i in sorted(range(len(active)), key=lambda i: active[i].batch.input_ids.shape[1]):
        r, w = active[i].batch.input_ids.shape
        if not chunks or (rows + r) * w > (1 + slack) * (own + r * w):
            chunks.append([])
            rows = own = 0
        chunks[-1].append(i)
        rows, own = rows + r, own + r * w
    return chunks


def _joint_losses(model: torch.nn.Module, active: list[_Run], precision,
                  slack: float | None = None) -> tuple[list[torch.Tensor], list[tuple[int, int, int]]]:
    """Each member's own loss from batched forward passes over the active members' batches (one pass, or
    a few of similar widths: see PAD_SLACK); and each pass's (rows, width, targets)."""
    for run in active:
        method = run.member.method
        method.train_mode()  # another member's evaluation or end may have left the shared backbone in eval mode
        per_row = run.batch.soft_per_row
        if per_row is not None and any(n != method.encoder.num_tokens for n in per_row):
            raise ConfigError(f"{method.name}: every example must have {method.encoder.num_tokens} pseudo tokens, "
                              f"got {sorted(set(per_row))}")
    with precision.autocast():  # encoders of one shape that draw no random numbers: one stacked computation
        vectors = batched_vectors([run.member.method.encoder for run in active])
    for i, run in enumerate(active):
        if vectors[i] is None:  # alone, with its own RNG (e.g. LSTM dropout between layers)
            with own_rng(run.cpu), precision.autocast():
                vectors[i] = run.member.method.prompt_vectors()
    out: list[torch.Tensor | None] = [None] * len(active)
    shapes = []
    for chunk in _chunks(active, slack):
        runs, segments, start = [active[i] for i in chunk], [], 0
        for run in runs:
            rows = run.batch.input_ids.shape[0]
            segments.append(_Segment(slice(start, start + rows), run.batch.input_ids.shape[1], run.dropout_rng))
            start += rows
        batch = joint_batch([r.batch for r in runs], [vectors[i].shape[0] for i in chunk])
        with precision.autocast(), member_dropout(model, segments):
            scores = target_logits(model, embed_batch(model, batch, torch.cat([vectors[i] for i in chunk])))
        counts = [int(r.batch.target_rows.shape[0]) for r in runs]
        with precision.autocast():
            for i, run, part in zip(chunk, runs, torch.split(scores, counts), strict=True):
                out[i] = run.member.task.loss(part, run.batch)
        shapes.append((start, int(batch.input_ids.shape[1]), sum(counts)))
    return out, shapes


def joint_extra(k: int, group_size: int | None = None) -> dict:
    """What a jointly trained record says about it (``extra.joint``)."""
    return {"trained_jointly": True, "members": k, "group_size": group_size or k,
            "note": "one batched forward/backward per step over every active member (bench.joint); "
                    "equal to separate runs (tests/test_joint_training.py)"}


__all__ = ["STEP_OBSERVERS", "Member", "StepObserver", "fit_jointly", "joint_batch", "joint_extra", "joint_mode", "why_not_joinable"]
