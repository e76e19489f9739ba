"""LAMA evaluation speed: the suite's ``predict`` against the reference implementations' way and a
one-fact loop, with predictions checked identical, FLOP/s against the matmul peak, and memory.

The reference way (LAMA's and THUDM/P-tuning's evaluation loops, rewritten plainly here): for each
relation in turn, fixed batches of its queries, padded to the longest; the language model's full
output (logits over the whole vocabulary at every position), a log-softmax over the vocabulary, then
the target position, the restriction to the LAMA vocabulary and the top-1; each batch's answer is
read back to the host before the next.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from bench.lama.evaluation import Candidates, LamaItem, build_candidates, frozen_scorer, predict, render_facts
from bench.lama.training import pad_id_of
from bench.speed.measure import PeakMemory, matmul_peak, sync, timed
from bench.speed.shapes import Shape, attention_flops, head_flops_per_target, matmul_flops_per_token


def lama_items(backbone, per_relation: int, relations: Sequence[str] | None = None, variant: str = "lama34k",
               template: str = "lama") -> tuple[list[LamaItem], Candidates]:
    """The first ``per_relation`` kept test facts of each relation, rendered with the manual prompts."""
    from bench.bench_lama import _conf
    from bench.lama import data as lama_data
    from bench.lama.runner import relation_templates

    candidates = build_candidates(lama_data.load_vocab(variant, backbone.lama_vocab_key), backbone.tokenizer,
                                  backbone.family)
    templates, _ = relation_templates(_conf("template", template), list(relations or lama_data.relation_ids()))
    items: list[LamaItem] = []
    for relation, tmpl in templates.items():
        kept, _ = lama_data.filter_facts(lama_data.load_facts(relation, "test", variant) or [],
                                         set(candidates.word_to_id))
        items += render_facts(kept[:per_relation], tmpl, backbone.tokenizer, backbone.family, candidates)
    return items, candidates


@torch.inference_mode()
def reference_predictions(model, items: Sequence[LamaItem], candidates: Candidates, pad_id: int, batch_size: int,
                          device: torch.device, compare: Sequence[int] | None = None) -> tuple[list[int], list[float]]:
    """The reference implementations' loop (module docstring). With ``compare``: this loop's score gap
    between its own top-1 and ``compare[i]`` (0 where they agree)."""
    cand = candidates.ids.to(device)
    by_relation: dict[str, list[int]] = {}
    for i, item in enumerate(items):
        by_relation.setdefault(item.fact.relation, []).append(i)
    predictions, gaps = [0] * len(items), [0.0] * len(items)
    for indices in by_relation.values():
        for start in range(0, len(indices), batch_size):
            chunk = indices[start : start + batch_size]
            width = max(len(items[i].input_ids) for i in chunk)
            ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for row, i in enumerate(chunk):
                ids[row, : len(items[i].input_ids)] = torch.tensor(items[i].input_ids)
                mask[row, : len(items[i].input_ids)] = 1
            log_probs = torch.log_softmax(model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float(),
                                          dim=-1)  # (batch, seq, vocab)
            rows = torch.arange(len(chunk), device=device)
            cols = torch.tensor([items[i].target_positions[0] for i in chunk], device=device)
            restricted = log_probs[rows, cols].index_select(-1, cand)
            best = restricted.argmax(-1)
            picked = cand[best].tolist()
            if compare is not None:
                other = torch.searchsorted(cand, torch.tensor([compare[i] for i in chunk], device=device))
                gap = (restricted.gather(1, best[:, None]) - restricted.gather(1, other[:, None])).squeeze(1).tolist()
            for row, i in enumerate(chunk):
                predictions[i] = picked[row]
                if compare is not None:
                    gaps[i] = gap[row]
    return predictions, gaps


def agreement(ours: Sequence[int], theirs: Sequence[int], gaps: Sequence[float], tie: float) -> dict:
    """How many predictions differ, and how many of those are ties (their gap within ``tie``)."""
    differ = [i for i, (a, b) in enumerate(zip(ours, theirs, strict=True)) if a != b]
    ties = [i for i in differ if gaps[i] <= tie]
    return {"n_different": len(differ), "n_ties": len(ties), "mismatches": [i for i in differ if i not in ties]}


def p_at_1(items: Sequence[LamaItem], predictions: Sequence[int]) -> float:
    return sum(it.gold_id == p for it, p in zip(items, predictions, strict=True)) / max(1, len(items))


def useful_flops(spec: Shape, items: Sequence[LamaItem]) -> float:
    """Forward FLOPs one needs for these facts: the body over their real tokens, attention, and
    the LM head at the one target of each (no padding, no head at other positions)."""
    lengths = [len(it.input_ids) for it in items]
    return float(matmul_flops_per_token(spec) * sum(lengths) + attention_flops(spec, lengths)
                 + head_flops_per_target(spec) * len(items))


def padded_tokens(items: Sequence[LamaItem], batches: Sequence[Sequence[int]]) -> int:
    return sum(len(b) * max(len(items[i].input_ids) for i in b) for b in batches)


def lama_figures(spec: Shape, backbone, items: Sequence[LamaItem], candidates: Candidates, *, budget: int,
                 runs_batch: int, ref_batch: int, repeats: int, tie: float, bf16: bool, plain_facts: int,
                 eager_row: bool = True) -> dict:
    """Every LAMA-evaluation row for one model: seconds, facts/s, FLOP/s and agreement."""
    from bench.bench_lama import plain_predictions
    from bench.lama.evaluation import length_sorted_batches

    device, model = backbone.device, backbone.model
    pad, scorer = pad_id_of(backbone.tokenizer), frozen_scorer(model)
    n, flops = len(items), useful_flops(spec, items)
    rows: dict[str, dict] = {}

    def run_ours(batch_size: int, token_budget: int | None, autocast=None):
        return predict(items, scorer, candidates, pad, batch_size, device, token_budget=token_budget,
                       autocast=autocast)

    def eager():
        attn = model.config._attn_implementation
        model.config._attn_implementation = "eager"
        try:
            return run_ours(10**6, budget)
        finally:
            model.config._attn_implementation = attn

    def tf32():  # TF32 matmuls (10-bit mantissa inputs): faster, not identical
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        try:
            return run_ours(10**6, budget)
        finally:
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False

    variants = {"ours": lambda: run_ours(10**6, budget),
                "reference": lambda: reference_predictions(model, items, candidates, pad, ref_batch, device),
                "ours_fixed_batch": lambda: run_ours(runs_batch, None)}
    if eager_row:
        variants["ours_eager_attention"] = eager
    if device.type == "cuda":
        variants["ours_tf32"] = tf32
    if bf16:
        variants["ours_bf16"] = lambda: run_ours(10**6, budget, torch.bfloat16)
    peak_dtypes = {"fp32": torch.float32, **({"bf16": torch.bfloat16} if bf16 else {})}
    if device.type == "cuda":
        peak_dtypes["tf32"] = torch.float32
    run_ours(runs_batch, budget)  # warm-up (kernels, allocator)
    outputs, seconds = {}, dict.fromkeys(variants, float("inf"))
    peaks = dict.fromkeys(peak_dtypes, 0.0)
    for _ in range(max(1, repeats)):  # rounds over all variants: a busy moment hits every variant alike
        for key, fn in variants.items():
            outputs[key], took = timed(fn, device)
            seconds[key] = min(seconds[key], took)
        for key, dtype in peak_dtypes.items():  # the peak, measured in the same rounds
            torch.backends.cuda.matmul.allow_tf32 = key == "tf32"
            peaks[key] = max(peaks[key], matmul_peak(device, dtype, repeats=2))
        torch.backends.cuda.matmul.allow_tf32 = False
    ours = outputs["ours"]
    rows["ours"] = {"seconds": seconds["ours"],
                    "tokens": padded_tokens(items, length_sorted_batches(items, 10**6, budget))}
    _, ref_gaps = reference_predictions(model, items, candidates, pad, ref_batch, device, compare=ours)
    by_rel: dict[str, list[int]] = {}
    for i, it in enumerate(items):
        by_rel.setdefault(it.fact.relation, []).append(i)
    ref_batches = [ix[s : s + ref_batch] for ix in by_rel.values() for s in range(0, len(ix), ref_batch)]
    rows["reference"] = {"seconds": seconds["reference"], "tokens": padded_tokens(items, ref_batches),
                         **agreement(ours, outputs["reference"][0], ref_gaps, tie)}
    rows["ours_fixed_batch"] = {"seconds": seconds["ours_fixed_batch"], "identical": outputs["ours_fixed_batch"] == ours,
                                "tokens": padded_tokens(items, length_sorted_batches(items, runs_batch))}
    if eager_row:
        rows["ours_eager_attention"] = {"seconds": seconds["ours_eager_attention"],
                                        "identical": outputs["ours_eager_attention"] == ours}
    for key in ("ours_tf32", "ours_bf16"):
        if key in variants:
            low = outputs[key]
            rows[key] = {"seconds": seconds[key], "n_different": sum(a != b for a, b in zip(low, ours, strict=True)),
                         "p_at_1": p_at_1(items, low)}
    if plain_facts:  # a spread subset: the loop is slow
        step = max(1, len(items) // plain_facts)
        chosen = list(range(0, len(items), step))[:plain_facts]
        subset = [items[i] for i in chosen]
        (one, gaps), seconds = timed(lambda: plain_predictions(model, subset, candidates, device,
                                                               compare=[ours[i] for i in chosen]), device)
        rows["one_fact_loop"] = {"seconds": seconds, "n_facts": len(subset),
                                 **agreement([ours[i] for i in chosen], one, gaps, tie)}
    for row in rows.values():
        row["facts_per_s"] = row.get("n_facts", n) / row["seconds"]
        row["useful_flop_per_s"] = flops / n * row.get("n_facts", n) / row["seconds"]
    return {"n_facts": n, "n_relations": len(by_rel), "n_candidates": int(candidates.ids.numel()),
            "real_tokens": sum(len(it.input_ids) for it in items), "useful_flops": flops, "p_at_1": p_at_1(items, ours),
            "budget": budget, "runs_batch": runs_batch, "ref_batch": ref_batch, "rows": rows, "peaks": peaks}


def profile_ours(backbone, items: Sequence[LamaItem], candidates: Candidates, budget: int, top: int = 8) -> str:
    """The operators our evaluation spends its time in (torch.profiler, one pass), as a text table."""
    from torch.profiler import ProfilerActivity, profile

    pad, scorer = pad_id_of(backbone.tokenizer), frozen_scorer(backbone.model)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if backbone.device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        predict(items, scorer, candidates, pad, 10**6, backbone.device, token_budget=budget)
        sync(backbone.device)
    key = "self_cuda_time_total" if backbone.device.type == "cuda" else "self_cpu_time_total"
    return prof.key_averages().table(sort_by=key, row_limit=top, max_name_column_width=40)


def memory_by_relations(backbone, per_relation: int, budget: int, relations: Sequence[str]) -> dict:
    """Peak memory of one evaluation over one relation (the one with most test facts), and over all of
    ``relations``, ``per_relation`` facts each, batches packed to ``budget`` tokens."""
    from bench.lama import data as lama_data

    pad, scorer = pad_id_of(backbone.tokenizer), frozen_scorer(backbone.model)
    largest = max(relations, key=lambda r: len(lama_data.load_facts(r, "test", "lama34k") or []))
    out = {"budget": budget}
    for key, chosen in (("one", [largest]), ("all", list(relations))):
        items, candidates = lama_items(backbone, per_relation, chosen)
        sync(backbone.device)
        with PeakMemory(backbone.device) as peak:
            predict(items, scorer, candidates, pad, 10**6, backbone.device, token_budget=budget)
        out[key] = {"relations": len(chosen), "facts": len(items), "peak_bytes": peak.bytes}
    return out
