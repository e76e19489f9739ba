"""One SuperGLUE / FewGLUE task for one method: examples -> method inputs -> option scores -> metrics.

How a method's scores become one score per option (label or choice), by mode:

- ``words``: vocabulary scorer, fixed labels, every label word one token: the logits of the label
  words at the single mask, several words per label averaged (PET's ``m2c``).
- ``options``: vocabulary scorer with multi-token candidates (COPA and ReCoRD choices, or label
  words of several tokens): per option, the sum of its tokens' log-probabilities
  (:mod:`bench.prompts.multitoken`; one pass in training, the method's ``decoding`` at inference).
- ``span``: a template with ``answer_field`` (PET's WSC): the masks are trained to produce that
  field (positive examples only, PET's 0-3 extra pad masks); at inference they are decoded most
  confident first and the example is "True" when the words match (the T5 rule PET uses).
- ``labels``: label-space methods (``output_space == "labels"``, e.g. ``finetune``) score plain
  text pairs; their ``(rows, n_out)`` output is used as is (one row per option for COPA/ReCoRD;
  COPA's ``pet_pair``: one row, 2 labels).

Training is cross-entropy over the option scores (``span``: the masked-LM loss of the target
tokens; choice tasks may use PET's hinge losses, ``task.choice_loss``, and PET's inputs with the
longest choice's masks, :mod:`bench.superglue.choice_items`; ``labels`` inputs and COPA's pair form:
:mod:`bench.superglue.classifier_items`). Model selection (``bench.train.fit``): ``fewglue`` selects on
``dev32`` (P-Tuning's FewGLUE_32dev), ``superglue`` on ``heldout`` (a fixed 10% of the full training set);
the report split is ``val``. ReCoRD has no validation set here: it reports ``dev32``, keeps the last state.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import fields
from pathlib import Path

import torch
import torch.nn.functional as F

from bench.backbones.scoring import ScoringBatch, pad_batch
from bench.errors import ConfigError
from bench.progress import eval_progress
from bench.prompts import render, target_token_ids, templates_for, verbalizer_for
from bench.prompts.multitoken import greedy_fill, iterative_scores, make_entry
from bench.prompts.pieces import tokenizer_info
from bench.prompts.render import SENTINEL
from bench.prompts.slow_tokenizers import pet_slow_ids
from bench.prompts.template import check_template
from bench.prompts.text2text import label_ids, target_strings, text2text_entry
from bench.superglue import data as sg
from bench.superglue.batching import Item, TaskBatch, pad_id_for, scatter_options, unit_log_probs, word_scores
from bench.superglue.choice_items import _drop_masks, option_entries, pet_pad_draws
from bench.superglue.classifier_items import classifier_item, copa_form
from bench.superglue.losses import choice_loss, mixed_loss, target_token_loss
from bench.superglue.metrics import superglue_metrics, words_match
from bench.superglue.modes import check_left_to_right, vocab_mode

__all__ = ["AUTO_SELECTION", "LAST", "ClassificationTask", "_drop_masks", "check_left_to_right"]  # re-exported

log = logging.getLogger(__name__)
LAST = "__last__"  # selection "split" that keeps the final state (no selection set)
AUTO_SELECTION = {"fewglue": "dev32", "superglue": "heldout"}


class ClassificationTask:
    """One SuperGLUE task for one method: implements ``bench.train.TrainableTask``."""

    canonical_task = staticmethod(sg.canonical_task)  # another dataset family overrides these two
    label_names = staticmethod(sg.LABELS.__getitem__)

    def __init__(self, cfg: Mapping, backbone, method) -> None:
        task_cfg = cfg["task"]
        self.cfg, self.task_cfg, self.backbone, self.method = cfg, task_cfg, backbone, method
        self.task = self.canonical_task(task_cfg["dataset"])
        self.variant = str(task_cfg.get("variant") or "fewglue")
        self.seed = int(cfg.get("seed", 0))
        self.family, self.tok = backbone.family, backbone.tokenizer
        self.pad_id, self.max_length = pad_id_for(self.tok), int(task_cfg.get("max_length") or 256)
        model_max = getattr(self.tok, "model_max_length", None)
        if model_max and model_max < self.max_length:  # e.g. MultiRC/ReCoRD's 512 on a 256-position tiny model
            log.warning("task.max_length %d > the model's %d positions: inputs cut at %d", self.max_length,
                        model_max, model_max)
            self.max_length = int(model_max)
        if task_cfg.get("prompt_outside_budget"):  # T5X: the feature length counts the text; the prompt joins as embeddings
            self.max_length += int(getattr(method, "length", 0) or 0)
        self.labels = self.label_names(self.task)
        self.decoding = method.decoding if self.family == "mlm" else "parallel"
        self.multi_token = str((cfg.get("method") or {}).get("multi_token") or "refuse")
        self._examples: dict[str, list[sg.Example]] = {}
        self.extra_train: list[sg.Example] = []  # iPET: examples an earlier generation labelled, trained on too
        self._items: dict[tuple[str, bool], list[Item]] = {}
        self._last = 0
        self._word_ids: torch.Tensor | None = None
        self.aux, self.aux_weight = None, float((cfg.get("trainer") or {}).get("aux_mlm_weight") or 0.0)
        self.demonstrations_used: dict[str, list[str]] = {}  # icl: example uid -> demonstration uids that fit
        self.scored: dict[str, tuple[list[int], list]] = {}  # split -> (predictions, scores) of its last scoring
        self.template = self.verbalizer = self.answer_field = None
        if task_cfg.get("train_on_heldout") and self.selection_split == "heldout":
            raise ConfigError("task.train_on_heldout=true trains on the rows task.selection_split=heldout selects on: "
                              "select on another split (P-tuning-v2's code: task.selection_split=val)")
        if method.output_space == "labels":
            self.mode = "labels"
            if self.task == "COPA":
                copa_form(task_cfg)  # task.copa_classifier_inputs checked before weights are used
            return
        template_cfg = cfg["template"]
        templates = templates_for(template_cfg, family=self.family)
        if len(templates) != 1:
            raise ConfigError(f"template {template_cfg.get('name')!r} selects {len(templates)} patterns; a run uses "
                              "one: set template.rank to a pattern id")
        self.template = templates[0]
        if self.family == "clm":
            check_left_to_right(self.template)
        self.template = method.adapt_template(self.template)
        first = self.examples(self.eval_splits[0])[:1]
        check_template(self.template, f"conf/template/{template_cfg.get('name')}.yaml (rank {template_cfg.get('rank')})",
                       first[0].fields if first else None)
        self.verbalizer = verbalizer_for(template_cfg)
        self.answer_field = template_cfg.get("answer_field")
        if self.answer_field is None and self.task == "WSC" and self.verbalizer is None:
            self.answer_field = "target"  # PET's WSC: the masks produce the referent noun phrase
        self.mode = self._vocab_mode()

    # setup -----------------------------------------------------------------------------------
    def _vocab_mode(self) -> str:
        return vocab_mode(self)  # bench.superglue.modes

    @property
    def target_space(self) -> bool:
        """Whether whitespace precedes the target slot (the form label words take); from one example."""
        return self.template_space(self.examples(self.eval_splits[0])[0])

    def template_space(self, ex: sg.Example) -> bool:
        return render(self.template, ex.fields, self.tok, self.family, num_target_tokens=1).target_prefix_space

    @property
    def selection_split(self) -> str | None:
        """``auto``: dev32 (fewglue) or heldout (superglue); null: no selection, the last state is kept."""
        value = self.task_cfg.get("selection_split", "auto")
        if value == "auto":
            return AUTO_SELECTION[self.variant]
        return value

    @property
    def report_split(self) -> str:
        return str(self.task_cfg.get("report_split") or "val")

    @property
    def eval_splits(self) -> list[str]:
        """``auto``: the selection split (when there is one) and the report split."""
        value = self.task_cfg.get("eval_splits", "auto")
        if value in (None, "auto"):
            return [s for s in dict.fromkeys([self.selection_split, self.report_split]) if s]
        return list(value)

    @property
    def n_out(self) -> int:
        """Outputs a label-space head needs: one per label, one per option (multiple choice), or PET's 2 for COPA."""
        if self.copa_pair:
            return 2
        return len(self.labels) if self.labels is not None else 1

    @property
    def copa_pair(self) -> bool:
        """COPA as PET's classifier reads it: one pair, 2 labels (``task.copa_classifier_inputs: pet_pair``)."""
        return self.mode == "labels" and self.task == "COPA" and copa_form(self.task_cfg) == "pet_pair"

    def examples(self, split: str) -> list[sg.Example]:
        if split not in self._examples:
            root = (self.cfg.get("paths") or {}).get("data_dir")

            def load(name: str) -> list[sg.Example]:
                return sg.load_split(self.task, name, self.variant, root=Path(root) if root else None,
                                     heldout_fraction=float(self.task_cfg.get("heldout_fraction", 0.1)),
                                     limit=self.task_cfg.get("limit"))

            self._examples[split] = load(split)
            if split == "unlabeled" and self.task == "COPA" and self.task_cfg.get("mirror_copa_unlabeled"):
                self._examples[split] = sg.copa_mirrored(self._examples[split])  # PET's CopaProcessor mirrors it too
            if split == "train" and self.variant == "superglue" and self.task_cfg.get("train_on_heldout"):
                self._examples[split] += load("heldout")  # the whole train file, as P-tuning-v2 trains
        return self._examples[split]

    def _train_view(self, examples: list[sg.Example]) -> list[sg.Example]:
        if self.task == "COPA" and self.task_cfg.get("mirror_copa", True):
            return sg.copa_mirrored(examples)
        if self.task == "ReCoRD":
            return sg.record_training_view(examples, int(self.task_cfg.get("record_train_candidates", 10)))
        if self.mode == "span":
            return [ex for ex in examples if ex.label == 1]  # PET trains WSC on the positive pairs only
        return [ex for ex in examples if ex.label is not None]

    # rendering -------------------------------------------------------------------------------
    def _answer(self, ex: sg.Example) -> str:
        if self.labels is None:
            return ex.answers[0] if ex.answers else ex.choices[ex.label]
        return self.verbalizer.label_words[self.labels[ex.label]][0]

    def _render(self, ex: sg.Example, k: int, budget: int | None = None):
        budget = (budget or self.max_length) - self._reserved_specials()
        demos: list[str] = []
        uids: list[str] = []
        icl = self.method.uses_demonstrations
        if icl:
            from bench.methods.icl import demonstration_text

            chosen = self.method.sample(self.examples("train"), ex.uid, self.seed)
            uids = [d.uid for d in chosen]
            demos = [demonstration_text(self.template, d.fields, self._answer(d)) for d in chosen]
        while True:
            template, values = self.template, ex.fields
            if demos:
                template, values = self.method.with_demonstrations(self.template, ex.fields, demos, self.family)
            rendered = render(template, values, self.tok, self.family, max_length=None if demos else budget,
                              num_target_tokens=k, truncation=str(self.task_cfg.get("truncation") or "pet"),
                              tokenization=self.tokenization, sep=str(self.task_cfg.get("sep") or "pair"))
            if not demos or len(rendered.input_ids) <= budget:
                if icl:  # several options may fit different numbers: the example keeps the fewest
                    seen = self.demonstrations_used.get(ex.uid)
                    if seen is None or len(uids) < len(seen):
                        self.demonstrations_used[ex.uid] = list(uids)
                return rendered
            demos, uids = demos[:-1], uids[:-1]

    def _reserved_specials(self) -> int:
        """``task.truncation_budget: ptfewshot``: PT-Fewshot's ``encode`` passes ``max_length - specials`` to a
        ``truncate`` that counts the special tokens again, so its texts are cut that many tokens shorter. Its
        patterns are single sequences (a "[SEP]" is text of the first part): the single-text specials count."""
        if str(self.task_cfg.get("truncation_budget") or "full") != "ptfewshot":
            return 0
        info = tokenizer_info(self.tok)
        return len(info.prefix_ids) + len(info.suffix_ids)

    @property
    def tokenization(self) -> str:
        """``fast`` (the tokenizer as loaded) or ``pet_slow`` (transformers 3.0.2's slow tokenizers' ids, PET's
        parts on RoBERTa: ``bench.prompts.slow_tokenizers``)."""
        return str(self.task_cfg.get("tokenization") or "fast")

    def _target_ids(self, word: str, space: bool) -> list[int]:
        ids = target_token_ids(word, self.tok, prefix_space=space)
        return pet_slow_ids(self.tok, word, ids) if self.tokenization == "pet_slow" else ids

    def _option_tokens(self, ex: sg.Example, space: bool) -> list[list[int]]:
        if self.labels is None:
            return [self._target_ids(c, space) for c in ex.choices]
        return [self._target_ids(self.verbalizer.label_words[lab][0], space)
                for lab in self.labels]

    def _label_ids(self, text: str) -> list[int]:
        """A label string's decoder targets; ``task.target_sentinel``: ``<extra_id_0>`` first (Lester's "span
        corruption + sentinel": prompt-tuning's ``add_sentinel_to_targets``, in token space, before ``</s>``)."""
        ids = label_ids(text, self.tok)
        return [self.tok.convert_tokens_to_ids(SENTINEL), *ids] if self.task_cfg.get("target_sentinel") else ids

    def _item(self, ex: sg.Example, train: bool, pads: int | None = None) -> Item:
        if self.mode == "labels":  # bench.superglue.classifier_items (COPA: task.copa_classifier_inputs)
            config = getattr(getattr(self.backbone, "model", None), "config", None)
            return classifier_item(ex, self.tok, self.task_cfg, getattr(config, "model_type", None), self.max_length)
        if self.mode == "words":
            return Item(ex, rendered=self._render(ex, 1))
        if self.mode == "text2text":
            strings = target_strings(self.labels, self.verbalizer, ex.choices)  # COPA: T5's "choice1" / "choice2"
            rendered = self._render(ex, 1)
            return Item(ex, entries=[text2text_entry(rendered, self._label_ids(s), self.tok) for s in strings])
        space = self.template_space(ex)
        if self.mode == "span":
            tokens = self._target_ids(ex.fields[self.answer_field], space)
            extra = pads if pads is not None else random.Random(f"{self.seed}:{ex.uid}").randint(0, 3) if train else 1
            tokens = tokens + [self.pad_id] * extra
            return Item(ex, entries=[make_entry(self._render(ex, len(tokens)), tokens, self.family)])
        return Item(ex, entries=option_entries(lambda k, budget: self._render(ex, k, budget),
                                               self._option_tokens(ex, space), self.family, train,
                                               self.labels is None, self.task_cfg, self.max_length))

    def _pet_pad_draws(self, n: int) -> list[int | None]:
        """WSC's extra pad masks per training example (``bench.superglue.choice_items.pet_pad_draws``)."""
        return pet_pad_draws(self.task_cfg, n)

    @property
    def passes_segment_ids(self) -> bool:
        """Token type ids of pair templates go to the model (``task.segment_ids: tokenizer``), or only to
        BERT as PET's wrapper does (``pet``: ALBERT and RoBERTa get none)."""
        return str(self.task_cfg.get("segment_ids") or "tokenizer") != "pet" or self.backbone.arch == "bert"

    def items(self, split: str, train: bool = False) -> list[Item]:
        key = (split, train)
        if key not in self._items:
            examples = self.examples(split)
            if train and split == "train":
                examples = [*examples, *self.extra_train]
            view = self._train_view(examples) if train else examples
            pads = self._pet_pad_draws(len(view)) if train and self.mode == "span" else [None] * len(view)
            self._items[key] = [self._item(ex, train, n) for ex, n in zip(view, pads, strict=True)]
        return self._items[key]

    # batches ---------------------------------------------------------------------------------
    def collate(self, items: Sequence[Item]) -> TaskBatch:
        owner, option, slot_tokens, slot_owner = [], [], [], []
        if self.mode == "words":
            r = [it.rendered for it in items]
            base = pad_batch([x.input_ids for x in r], [x.target_positions for x in r], self.pad_id,
                             [x.decoder_input_ids for x in r] if self.family == "seq2seq" else None,
                             [x.soft_positions for x in r],
                             token_type_ids=[x.token_type_ids for x in r] if self.passes_segment_ids else None)
            owner = list(range(len(items)))
        elif self.mode == "labels":
            seqs = [s for it in items for s in it.sequences]
            types = [t for it in items for t in it.types]
            base = pad_batch(seqs, [[0]] * len(seqs), self.pad_id, token_type_ids=types if types else None)
            owner = [i for i, it in enumerate(items) for _ in it.sequences]
            option = [j for it in items for j in range(len(it.sequences))]
        else:
            entries = [e for it in items for e in it.entries]
            decoders = [e.decoder_input_ids for e in entries]
            base = pad_batch([e.input_ids for e in entries], [e.target_positions for e in entries], self.pad_id,
                             decoders if self.family == "seq2seq" else None, [e.soft_positions for e in entries])
            owner = [i for i, it in enumerate(items) for _ in it.entries]
            option = [j for it in items for j in range(len(it.entries))]
            slot_tokens = [t for e in entries for t in e.token_ids]
            slot_owner = [u for u, e in enumerate(entries) for _ in e.token_ids]
        base = base.to(self.backbone.device)
        labels = [it.example.label if it.example.label is not None else -100 for it in items]
        dev = self.backbone.device

        def tensor(values: list[int]) -> torch.Tensor | None:
            return torch.tensor(values, dtype=torch.long, device=dev) if values else None

        return TaskBatch(**{f.name: getattr(base, f.name) for f in fields(ScoringBatch)},
                         labels=tensor(labels), unit_owner=tensor(owner), unit_option=tensor(option),
                         slot_tokens=tensor(slot_tokens), slot_owner=tensor(slot_owner), n_examples=len(items),
                         n_options=max(1, max((it.example.n_options for it in items), default=1)))

    def option_scores(self, scores: torch.Tensor, batch: TaskBatch) -> torch.Tensor:
        """Scorer output -> (n_examples, n_options); absent options get -inf."""
        if self.mode == "words":
            return word_scores(scores, self.word_table().to(scores.device))
        if self.mode == "labels" and (self.labels is not None or self.copa_pair):
            return scores  # one column per label (COPA pet_pair: label k = choice k + 1)
        if self.mode == "labels":
            unit = scores[:, 0]
        else:
            unit = unit_log_probs(scores, batch.slot_tokens, batch.slot_owner, batch.unit_owner.numel())
        return scatter_options(unit, batch.unit_owner, batch.unit_option, batch.n_examples, batch.n_options)

    def word_table(self) -> torch.Tensor:
        """(n_labels, n_words) single-token label-word ids, -1 where a label has fewer words."""
        if self._word_ids is None:
            ids = self.verbalizer.single_token_ids(self.tok, prefix_space=self.target_space, method=self.method.name)
            width = max(len(v) for v in ids.values())
            table = torch.full((len(self.labels), width), -1, dtype=torch.long)
            for row, label in enumerate(self.labels):
                table[row, : len(ids[label])] = torch.tensor(ids[label])
            self._word_ids = table
        return self._word_ids

    # TrainableTask -----------------------------------------------------------------------------
    def train_batches(self, batch_size: int, generator: torch.Generator):
        items = self.items("train", train=True)
        order = torch.randperm(len(items), generator=generator).tolist()
        for start in range(0, len(order), batch_size):
            yield self.collate([items[i] for i in order[start : start + batch_size]])

    def loss(self, scores: torch.Tensor, batch: TaskBatch) -> torch.Tensor:
        if self.mode == "span":  # masked-LM loss of the answer tokens (and PET's pad masks)
            loss = F.cross_entropy(scores.float(), batch.slot_tokens)
        elif self.mode == "options" and self.labels is None and (self.task_cfg.get("choice_loss") or "ce") != "ce":
            slots = max(len(it.entries) for it in self.items("train", train=True))  # pet_record: PET's padding
            loss = choice_loss(str(self.task_cfg["choice_loss"]), scores, batch, slots)  # PET's hinges (losses.py)
        elif self.mode == "text2text" and self.task_cfg.get("text2text_loss", "rank") == "target":
            loss = target_token_loss(scores, batch, float(self.task_cfg.get("z_loss") or 0.0))  # T5X's loss_fn
        else:
            loss = F.cross_entropy(self.option_scores(scores, batch), batch.labels)
        if self.aux is not None and self.aux.available:  # PET's auxiliary MLM loss (bench.superglue.aux_mlm)
            loss = mixed_loss(loss, self.aux.loss(), 1.0 - self.aux_weight)
        return loss

    def predict(self, split: str, scorer) -> list[int]:
        """Predicted option index per example of ``split`` (span mode: 1 = the answer was generated)."""
        items, size = self.items(split), int(self.task_cfg.get("batch_size", 32))
        preds: list[int] = []
        rows: list[list[float] | None] = []  # per example, one score per label / choice (span mode: none)
        with torch.no_grad():
            for start in eval_progress(range(0, len(items), size), f"{self.task} {split}"):
                chunk = items[start : start + size]
                if self.mode in ("words", "labels"):
                    batch = self.collate(chunk)
                    option = self.option_scores(scorer(batch), batch).float()
                    preds += option.argmax(-1).tolist()
                    rows += option.tolist()
                elif self.mode == "span":
                    out = greedy_fill(scorer, [it.entries[0] for it in chunk], self.pad_id, self.decoding,
                                      self.backbone.device)
                    special = set(self.tok.all_special_ids)
                    for it, ids in zip(chunk, out, strict=True):
                        text = self.tok.decode([t for t in ids if t not in special])
                        preds.append(int(words_match(text, it.example.fields[self.answer_field])))
                        rows.append(None)
                else:
                    entries = [e for it in chunk for e in it.entries]
                    flat = iterative_scores(scorer, entries, self.pad_id, self.decoding, self.backbone.device).tolist()
                    for it in chunk:
                        scores, flat = flat[: len(it.entries)], flat[len(it.entries) :]
                        preds.append(max(range(len(scores)), key=scores.__getitem__))
                        rows.append(scores)
        self.scored[split] = (preds, rows)  # the last scoring of each split (bench.predictions rows)
        return preds

    def evaluate(self, split: str, scorer) -> tuple[dict, float]:
        if split == LAST:  # no selection set: every evaluation "improves", so the last state is kept
            self._last += 1
            return {}, float(self._last)
        result = superglue_metrics(self.task, self.examples(split), self.predict(split, scorer))
        return result, float(result["overall"]["score"])
