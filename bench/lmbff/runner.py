"""LM-BFF runs: the suite's classification runner on the k-shot splits, plus LM-BFF's demonstrations.

``run_lmbff`` is ``bench.superglue.runner.run_classification`` with :class:`KShotTask`, which
reads ``data/lm-bff`` (``bench.lmbff.data``; the run seed picks the data split), scores accuracy
and adds what is LM-BFF's own:

- ``lmbff_demo`` (prompt-based fine-tuning with demonstrations): per input, one demonstration per
  label (``bench.lmbff.demos``, similarity-filtered), each the template with its label word in
  the mask slot, appended after the input and separated by the tokenizer's separator (LM-BFF's
  ``*sep+*``); the input is cut at the tail to ``task.max_length`` (LM-BFF truncates the tail).
  Training draws new demonstrations for every batch; dev and test average the label-word logits
  over ``num_sample`` fixed draws (LM-BFF's ``num_sample`` ensemble).
- ``icl`` (GPT-3-style in-context learning, LM-BFF's ``--gpt3_in_context_head``): ``k`` random
  training examples (default 32) as demonstrations *before* the input, separated likewise, the
  head cut to ``task.icl_max_length`` (512) tokens when too long (``--truncate_head``). On a masked
  LM the start token stays with the query, after the demonstrations, as LM-BFF places it
  (``task.icl_layout=bos_first`` puts it first instead).
Left-to-right models (GPT-2) read demonstrations before the input in both cases (nothing after
the target is read) and separate them by a blank line (they have no separator token).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import torch

from bench.errors import ConfigError
from bench.lmbff import data as kd
from bench.lmbff import demos as ds
from bench.progress import eval_progress
from bench.prompts import render
from bench.prompts.pieces import tokenizer_info
from bench.superglue.batching import Item
from bench.superglue.metrics import accuracy
from bench.superglue.runner import run_classification
from bench.superglue.task import LAST, ClassificationTask

SELECTION_RULE = ("best accuracy on the k-shot dev split over the evaluations every trainer.eval_every steps "
                  "(LM-BFF: every 100 of 1,000 steps, plus the final state if the steps are not a multiple); "
                  "ties keep the earlier evaluation (LM-BFF's trainer saves only on a strict improvement); "
                  "no early stopping. Across the lr x batch grid the table picks, per data split, the point with "
                  "the best dev accuracy, ties to the first trial in LM-BFF's order (batch 2, 4, 8 outside lr "
                  "1e-5, 2e-5, 5e-5: extra.tie_order; LM-BFF tools/gather_result.py)")


# GPT-3-style ICL on a masked LM: LM-BFF's layout (demonstrations, then "<s> query </s>"; run.py's
# gpt3_in_context_head template) or the start token first ("<s> demonstrations query </s>")
ICL_LAYOUTS = ("lmbff", "bos_first")


class KShotTask(ClassificationTask):
    """A classification task on LM-BFF's k-shot splits (SST-2, SNLI)."""

    canonical_task = staticmethod(kd.canonical_task)
    label_names = staticmethod(kd.LABELS.__getitem__)

    def __init__(self, cfg: Mapping, backbone, method) -> None:
        self.k, self.demo_kind = int(cfg["task"].get("k", 16)), None  # read while the base class sets up
        self.icl_layout = str(cfg["task"].get("icl_layout") or "lmbff")
        if self.icl_layout not in ICL_LAYOUTS:
            raise ConfigError(f"task.icl_layout must be one of {', '.join(ICL_LAYOUTS)}, got {self.icl_layout!r}")
        super().__init__(cfg, backbone, method)
        if method.uses_demonstrations:
            if self.mode != "words":
                raise ConfigError(f"{method.name}: LM-BFF demonstrations need single-token label words; "
                                  f"{self.cfg['template'].get('name')!r} has multi-token ones for this tokenizer")
            self.demo_kind = "icl" if method.name == "icl" else "similar"
            if self.demo_kind == "similar":
                method.k = method.per_label * len(self.labels)  # demonstrations per input (the record's summary)
        self._demo_items: dict[tuple[str, int], list[Item]] = {}
        self.last_used: list[str] = []
        self._draws = 0
        self._embeddings: dict[str, dict[int, torch.Tensor]] = {}
        self._candidates: dict[str, list[int]] = {}

    # data ----------------------------------------------------------------------------------
    def examples(self, split: str) -> list:
        if split not in self._examples:
            root = (self.cfg.get("paths") or {}).get("data_dir")
            limit = None if split == "train" else self.task_cfg.get("limit")  # the k-shot train set stays whole
            self._examples[split] = kd.load_split(self.task, split, self.seed, k=self.k,
                                                  root=Path(root) if root else None, limit=limit,
                                                  test_file=self.task_cfg.get("test_file"), variant=self.variant)
        return self._examples[split]

    def _item(self, ex, train: bool, *rest) -> Item:  # rest: the base class's further arguments, passed on
        if self.mode != "labels":
            return super()._item(ex, train, *rest)
        a, b = kd.classifier_pair(ex)
        info = tokenizer_info(self.tok)
        if not info.suffix_ids:  # GPT-2: no separator token; its own pair encoding
            enc = self.tok(a, b, truncation=True, max_length=self.max_length)["input_ids"]
            return Item(ex, sequences=[enc])
        # LM-BFF's plain input (src/dataset.py tokenize_multipart_input): <s> A </s> B </s>, one separator
        # between the texts (not RoBERTa's pair form </s></s>), the tail cut at max_length
        ids = list(info.prefix_ids)
        for text in (a, b) if b is not None else (a,):
            ids += self.tok.encode(text, add_special_tokens=False) + list(info.suffix_ids)
        return Item(ex, sequences=[ids[: self.max_length]])

    def evaluate(self, split: str, scorer) -> tuple[dict, float]:
        if split == LAST:
            return super().evaluate(split, scorer)
        examples = self.examples(split)
        acc = accuracy(self.predict(split, scorer), [ex.label for ex in examples])
        return {"overall": {"accuracy": acc, "score": acc, "n": len(examples)}}, acc

    # demonstrations --------------------------------------------------------------------------
    def _split_of(self, ex) -> str:
        return ex.uid.split("-", 1)[0]

    def embedding(self, ex) -> torch.Tensor:
        """The Sentence-BERT embedding of ``ex`` (its split's examples are embedded together, cached)."""
        split = self._split_of(ex)
        if split not in self._embeddings:
            from bench.lmbff.embeddings import file_embeddings

            root = (self.cfg.get("paths") or {}).get("data_dir")
            path = kd.split_file(self.task, split, self.seed, self.k, Path(root) if root else None,
                                 self.task_cfg.get("test_file"), self.variant)
            cache = (self.cfg.get("paths") or {}).get("results_dir")
            rows = [e.meta["row"] for e in self.examples(split)]
            emb = file_embeddings(path, self.method.encoder_path,
                                  Path(cache) / "cache" / "lmbff_embeddings" if cache else None, rows)
            self._embeddings[split] = {row: emb[i] for i, row in enumerate(rows)}
        return self._embeddings[split][ex.meta["row"]]

    def demonstrations(self, ex, draw: int) -> list:
        """The training examples that demonstrate ``ex`` in draw number ``draw``."""
        pool = self.examples("train")
        labels = [d.label for d in pool]
        split = self._split_of(ex)
        exclude = ex.meta["row"] if split == "train" else None
        rng = random.Random(f"{self.seed}:{split}:{ex.uid}:{draw}")
        if self.demo_kind == "icl":
            picked = ds.random_context([i for i in range(len(pool)) if i != exclude], self.method.k, rng)
        else:
            if ex.uid not in self._candidates:  # the filter depends on the query only: once per query
                rate, sims = self.method.filter_rate, None
                if rate is not None:
                    support = torch.stack([self.embedding(d) for d in pool])
                    sims = ds.cosine(self.embedding(ex)[None], support)[0].tolist()
                self._candidates[ex.uid] = ds.filtered_candidates(sims or [0.0] * len(pool), labels, len(self.labels),
                                                                  rate, exclude)
            picked = ds.one_per_label(self._candidates[ex.uid], labels, len(self.labels), rng, self.method.per_label)
        return [pool[i] for i in picked]

    def demo_side(self) -> str:
        if self.family == "clm":
            return "before"
        return "before" if self.demo_kind == "icl" else "after"

    def render_with(self, ex, demos: list):
        """``ex`` rendered with ``demos`` (the template with their label words), cut to the length budget.

        As LM-BFF builds it: each demonstration is followed by the separator token (``*sep+*``: the
        tokenizer's end token, ``</s>`` / ``[SEP]``); after the input (``<s> input </s> demo </s> demo
        </s>``) or, for ICL and left-to-right models, before it (after the start token); GPT-2 has no
        separator token and gets a blank line (GPT-3's).
        """
        from bench.methods.icl import demonstration_text
        from bench.prompts.pieces import encode_piece

        rendered = render(self.template, ex.fields, self.tok, self.family, num_target_tokens=1)
        info = tokenizer_info(self.tok)
        sep = list(info.suffix_ids) or self.tok.encode("\n\n", add_special_tokens=False)
        side = self.demo_side()
        budget = int(self.task_cfg.get("icl_max_length", 512)) if self.demo_kind == "icl" else self.max_length
        limit = getattr(self.tok, "model_max_length", None)
        budget = min(budget, int(limit)) if limit and limit < 100_000 else budget  # never past the model's positions
        if not demos:
            return cut(rendered, budget, head=side == "before", keep=len(info.prefix_ids))
        block: list[int] = []
        spans = []  # each demonstration's token span inside ``block``
        for d in demos:
            text = demonstration_text(self.template, d.fields, self._answer(d))
            spans.append((len(block), len(block) + len(piece := encode_piece(self.tok, text, space_before=info.start_space))))
            block += piece + sep
        ids, keep = rendered.input_ids, len(info.prefix_ids)
        if side == "before" and self.demo_kind == "icl" and self.icl_layout == "lmbff":
            keep = 0  # LM-BFF (run.py's GPT-3 template): the demonstrations, then the query with its <s>
        if side == "after":
            start = len(ids)
            rendered = replace(rendered, input_ids=ids + block, token_type_ids=None)
        else:
            start = keep
            moved = 0 if rendered.decoder_input_ids is not None else len(block)
            rendered = replace(rendered, input_ids=ids[:keep] + block + ids[keep:], token_type_ids=None,
                               target_positions=[p + moved for p in rendered.target_positions])
        n = len(rendered.input_ids)
        lost = max(0, n - budget)  # tokens the cut removes: at the head (after ``keep``) or at the tail
        whole = [d.uid for d, (a, b) in zip(demos, spans, strict=True)
                 if (side == "after" and start + b <= budget) or (side == "before" and start + a >= keep + lost)]
        self.last_used = whole  # the demonstrations that survive the cut whole
        return cut(rendered, budget, head=side == "before", keep=keep)

    def _render(self, ex, k: int, budget: int | None = None):
        if self.demo_kind is None:
            return super()._render(ex, k, budget)
        rendered = self.render_with(ex, self.demonstrations(ex, 0))
        self.demonstrations_used[ex.uid] = self.last_used  # the record's extra.demonstrations (draw 0)
        return rendered

    def demo_items(self, split: str, draw: int) -> list[Item]:
        key = (split, draw)
        if key not in self._demo_items:
            self._demo_items[key] = []
            for ex in self.examples(split):
                self._demo_items[key].append(Item(ex, rendered=self.render_with(ex, self.demonstrations(ex, draw))))
                if draw == 0:
                    self.demonstrations_used[ex.uid] = self.last_used
        return self._demo_items[key]

    @property
    def num_sample(self) -> int:
        return int(getattr(self.method, "num_sample", 1)) if self.demo_kind == "similar" else 1

    # training and prediction ------------------------------------------------------------------
    def train_batches(self, batch_size: int, generator: torch.Generator):
        if self.demo_kind is None:
            yield from super().train_batches(batch_size, generator)
            return
        examples = self._train_view(self.examples("train"))
        order = torch.randperm(len(examples), generator=generator).tolist()
        for start in range(0, len(order), batch_size):
            self._draws += 1  # a new demonstration draw for every batch (LM-BFF samples online)
            chunk = [examples[i] for i in order[start : start + batch_size]]
            yield self.collate([Item(ex, rendered=self.render_with(ex, self.demonstrations(ex, -self._draws)))
                                for ex in chunk])

    def predict(self, split: str, scorer) -> list[int]:
        if self.demo_kind is None:
            return super().predict(split, scorer)
        size, total = int(self.task_cfg.get("batch_size", 32)), None
        with torch.no_grad():
            for draw in range(self.num_sample):
                items, scores = self.demo_items(split, draw), []
                desc = f"{self.task} {split} (demonstration set {draw + 1} of {self.num_sample})"
                for start in eval_progress(range(0, len(items), size), desc):
                    batch = self.collate(items[start : start + size])
                    scores.append(self.option_scores(scorer(batch), batch).float())
                logits = torch.cat(scores)
                total = logits if total is None else total + logits
        mean = total / self.num_sample
        self.scored[split] = (mean.argmax(-1).tolist(), mean.tolist())  # bench.predictions rows
        return self.scored[split][0]


def cut(rendered, budget: int, head: bool, keep: int = 0):
    """Cut a rendered prompt to ``budget`` tokens: at the tail, or at the head after ``keep`` prefix tokens."""
    n = len(rendered.input_ids)
    if n <= budget:
        return rendered
    types = rendered.token_type_ids
    if not head:
        if any(p >= budget for p in rendered.target_positions):
            raise ConfigError(f"the input alone is longer than max_length={budget}: raise task.max_length")
        return replace(rendered, input_ids=rendered.input_ids[:budget], token_type_ids=types[:budget] if types else types)
    drop = n - budget
    if any(p < keep + drop for p in rendered.target_positions if rendered.decoder_input_ids is None):
        raise ConfigError(f"the input alone is longer than {budget} tokens: raise task.icl_max_length")
    ids = rendered.input_ids[:keep] + rendered.input_ids[keep + drop :]
    positions = rendered.target_positions if rendered.decoder_input_ids is not None else \
        [p - drop for p in rendered.target_positions]
    return replace(rendered, input_ids=ids, target_positions=positions,
                   token_type_ids=types[:keep] + types[keep + drop :] if types else types)


def run_lmbff(cfg: Mapping, backbone, method) -> dict:
    """``run_classification`` on the k-shot splits, with LM-BFF's protocol and selection in the record."""
    precision = getattr(backbone, "precision", None)
    compute = str(precision.compute).replace("torch.", "") if precision is not None else "float32"
    if compute != "float32" and compute.replace("bfloat16", "bf16").replace("float16", "fp16") not in str(cfg.get("tag")):
        short = compute.replace("bfloat16", "bf16").replace("float16", "fp16")
        raise ConfigError(f"LM-BFF runs in fp32 (the reference's precision); this run computes in {short}, which "
                          f"its tables would not mark\n  fix: add tag={short} (a row of its own) or drop the dtype override")
    from bench.lmbff.auto_inputs import apply_auto

    cfg, auto = apply_auto(dict(cfg))  # the automatic rows: the search stage's candidate (template.auto)
    payload = run_classification(cfg, backbone, method, task_class=KShotTask)
    if auto is not None:
        payload["extra"]["auto"] = auto
    task_cfg = cfg["task"]
    root = (cfg.get("paths") or {}).get("data_dir")
    test_path = kd.split_file(kd.canonical_task(task_cfg["dataset"]), "test", int(cfg["seed"]), int(task_cfg.get("k", 16)),
                              Path(root) if root else None, task_cfg.get("test_file"), str(task_cfg.get("variant") or "k16"))
    if test_path.is_file():  # which file the test numbers come from, with its checksum (and source, if fetched)
        from bench.lmbff.availability import test_file_facts

        payload["extra"]["test_file"] = test_file_facts(test_path)
    fit = payload["extra"].get("fit")
    payload["protocol"] = {
        "selection_split": payload["selection_split"], "report_split": payload["report_split"],
        "selection_rule": SELECTION_RULE if method.trains else "none: nothing trained, nothing selected",
        "seeds": [int(cfg["seed"])], "data_split": f"{cfg['task'].get('k', 16)}-{int(cfg['seed'])}",
    }
    if method.trains:  # LM-BFF's trial order for grid ties (tools/gather_result.py keeps the first trial)
        from bench.lmbff.ties import LMBFF_BATCHES, lmbff_order

        batch, lr_pos = lmbff_order(float(cfg["trainer"]["lr"]), int(cfg["trainer"]["batch_size"]))
        payload["extra"]["tie_order"] = batch * (len(LMBFF_BATCHES) + 1) + lr_pos
    if fit and fit.get("history"):
        best = max(h["value"] for h in fit["history"])
        first = next(h for h in fit["history"] if h["value"] == best)
        fit["selected"] = {"step": fit["best_step"], "dev": fit["best_value"],
                           "best_of_history": fit["best_step"] == first["step"] and fit["best_value"] == best}
    if method.uses_demonstrations and payload["extra"].get("demonstrations") is not None:
        summary = payload["extra"]["demonstrations"]  # per example: the draw-0 demonstrations kept whole
        summary["lmbff"] = {"kind": "icl" if method.name == "icl" else "similar",
                            "num_sample": int(getattr(method, "num_sample", 1)) if method.name != "icl" else 1,
                            "filter_rate": getattr(method, "filter_rate", None)}
        if method.name != "icl" and getattr(method, "filter_rate", None) is not None:
            from bench.lmbff.embeddings import encoder_dir

            summary["lmbff"]["encoder"] = str(encoder_dir(method.encoder_path))
    return payload


run_lmbff.task_class = KShotTask  # what bench.checks.preflight builds to check inputs before weights load
