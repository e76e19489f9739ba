"""``make bench-lama``: LAMA evaluation speed against a plain loop, and P-Tuning training steps per second.

Both evaluations score the same rendered facts with the same model in the same process:
- ours (:func:`bench.lama.evaluation.predict`): batches across relations, sorted by length, the
  LM head applied at the target slot only, the restriction to the LAMA vocabulary a gather over
  the candidate ids;
- plain: one fact at a time, a full forward pass (LM head over every position), the full-vocabulary
  logits at the target, non-candidates masked to -inf, argmax.
Their predictions must be identical (a difference within ``--tie`` of the plain loop's best
logit is reported as a tie); otherwise the script exits 1. Then it times P-Tuning training steps
(prompt encoder forward, frozen backbone, loss, backward, Adam step) on one relation's train facts.

``python -m bench.bench_lama --model tiny-bert --facts-per-relation 50``
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf

from bench.paths import REPO_ROOT

CONF = REPO_ROOT / "conf"


def _conf(group: str, name: str) -> dict:
    return OmegaConf.to_container(OmegaConf.load(CONF / group / f"{name}.yaml"), resolve=True)


def machine_line(device: torch.device) -> str:
    from bench.provenance import machine
    from bench.speed.measure import cpu_name

    info = machine(device)
    where = info.get("gpu") or (f"{cpu_name()} ({os.cpu_count()} cores visible), torch on "
                                f"{torch.get_num_threads()} threads")
    return f"{where}; torch {torch.__version__}; python {info['python']}"


def rendered_facts(backbone, variant: str, template: str, per_relation: int):
    """The evaluation items (first N kept test facts of every relation) and the candidate set."""
    from bench.lama import data as lama_data
    from bench.lama.evaluation import build_candidates, render_facts
    from bench.lama.runner import relation_templates

    candidates = build_candidates(lama_data.load_vocab(variant, backbone.lama_vocab_key), backbone.tokenizer,
                                  backbone.family)
    templates, _ = relation_templates(_conf("template", template), lama_data.relation_ids())
    items = []
    for relation, tmpl in templates.items():
        facts = lama_data.load_facts(relation, "test", variant) or []
        kept, _ = lama_data.filter_facts(facts, set(candidates.word_to_id))
        items += render_facts(kept[:per_relation], tmpl, backbone.tokenizer, backbone.family, candidates)
    return items, candidates


@torch.inference_mode()
def plain_predictions(model, items, candidates, device: torch.device,
                      compare: list[int] | None = None) -> tuple[list[int], list[float]]:
    """One fact at a time, full logits. With ``compare``, also the gap between this loop's best
    logit and its logit for ``compare[i]`` (0 where they agree)."""
    allowed = None
    predictions, gaps = [], []
    for i, item in enumerate(items):
        inputs = {"input_ids": torch.tensor([item.input_ids], device=device)}
        inputs["attention_mask"] = torch.ones_like(inputs["input_ids"])
        if item.decoder_input_ids is not None:
            inputs["decoder_input_ids"] = torch.tensor([item.decoder_input_ids], device=device)
        logits = model(**inputs).logits[0, item.target_positions[0]].float()
        if allowed is None:
            allowed = torch.zeros(logits.shape[0], dtype=torch.bool, device=device)
            allowed[candidates.ids.to(device)] = True
        masked = logits.masked_fill(~allowed, float("-inf"))
        best = int(masked.argmax())
        predictions.append(best)
        if compare is not None:
            gaps.append(float(masked[best] - masked[compare[i]]))
    return predictions, gaps


def _timed(fn, cpu: dict | None = None, key: str = ""):
    """Wall seconds of ``fn()``; with ``cpu``, also its process CPU seconds under ``key``
    (a shared machine slows the wall clock, not the CPU time)."""
    start, start_cpu = time.perf_counter(), time.process_time()
    out = fn()
    if cpu is not None:
        cpu[key] = time.process_time() - start_cpu
    return out, time.perf_counter() - start


def ptuning_steps_per_second(backbone, candidates, variant: str, steps: int, relation: str) -> dict:
    """Seconds per P-Tuning training step (batch 8) on one relation, after two warm-up steps."""
    from hydra.utils import instantiate

    from bench.lama.training import LamaRelationTask, pad_id_of, split_items
    from bench.prompts import templates_for
    from bench.train import build_optimizer

    method = instantiate(_conf("method", "ptuning")["component"])
    method.setup(backbone)
    template = method.adapt_template(templates_for(_conf("template", "ptuning_lama"), relation, backbone.family)[0])
    items, _ = split_items(relation, "train", template, backbone, candidates, {"variant": variant})
    task = LamaRelationTask(relation, {"train": items}, candidates, pad_id_of(backbone.tokenizer), backbone.device)
    trainer = {**_conf("trainer", "default"), "optimizer": "adam"}
    optimizer = build_optimizer(method, trainer)
    batches = task.train_batches(int(trainer["batch_size"]), torch.Generator().manual_seed(34))
    scorer = method.scorer()
    method.train_mode()

    def step(i: int) -> None:
        batch = batches[i % len(batches)]
        loss = task.loss(scorer(batch), batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for i in range(2):
        step(i)
    if backbone.device.type == "cuda":
        torch.cuda.synchronize()
    _, seconds = _timed(lambda: [step(i) for i in range(steps)])
    if backbone.device.type == "cuda":
        torch.cuda.synchronize()
    return {"relation": relation, "template": str(template), "batch_size": int(trainer["batch_size"]),
            "steps": steps, "seconds": seconds, "steps_per_s": steps / seconds,
            "trainable_params": sum(p.numel() for p in method.trainable_parameters())}


def run(model: str, variant: str, template: str, per_relation: int, batch_size: int, ptuning_steps: int,
        relation: str, device: str, tie: float) -> dict:
    from bench.backbones.loading import load_backbone, load_model_config
    from bench.lama.evaluation import frozen_scorer, predict
    from bench.lama.training import pad_id_of

    backbone = load_backbone(load_model_config(model), device=device, dtype="fp32")
    (items, candidates), render_s = _timed(lambda: rendered_facts(backbone, variant, template, per_relation))
    pad = pad_id_of(backbone.tokenizer)
    scorer = frozen_scorer(backbone.model)
    predict(items[:batch_size], scorer, candidates, pad, batch_size, backbone.device)  # warm-up
    cpu: dict[str, float] = {}
    ours, ours_s = _timed(lambda: predict(items, scorer, candidates, pad, batch_size, backbone.device), cpu, "ours")
    (plain, gaps), plain_s = _timed(lambda: plain_predictions(backbone.model, items, candidates, backbone.device,
                                                              compare=ours), cpu, "plain")
    differ = [i for i, (a, b) in enumerate(zip(ours, plain, strict=True)) if a != b]
    ties = [i for i in differ if gaps[i] <= tie]
    return {"machine": machine_line(backbone.device), "model": model, "family": backbone.family, "variant": variant,
            "template": template, "n_facts": len(items), "n_relations": len({it.fact.relation for it in items}),
            "n_candidates": int(candidates.ids.numel()), "batch_size": batch_size, "render_s": render_s,
            "ours_s": ours_s, "plain_s": plain_s, "ours_facts_per_s": len(items) / ours_s,
            "plain_facts_per_s": len(items) / plain_s, "speedup": plain_s / ours_s, "cpu_s": cpu,
            "n_different": len(differ), "n_ties": len(ties), "mismatches": [i for i in differ if i not in ties],
            "ptuning": ptuning_steps_per_second(backbone, candidates, variant, ptuning_steps, relation)
            if ptuning_steps else None}


def report(result: dict) -> str:
    lines = [f"machine: {result['machine']}",
             f"model {result['model']} ({result['family']}), {result['variant']}, template {result['template']}: "
             f"{result['n_facts']:,} test facts over {result['n_relations']} relations, "
             f"{result['n_candidates']:,} candidate tokens",
             f"ours  (length-sorted batches of {result['batch_size']} across relations, head at the target, gather): "
             f"{result['ours_facts_per_s']:,.1f} facts/s ({result['ours_s']:.2f} s wall, "
             f"{result['cpu_s']['ours']:.2f} s CPU)",
             f"plain (one fact at a time, full forward, full-vocabulary mask + argmax): "
             f"{result['plain_facts_per_s']:,.1f} facts/s ({result['plain_s']:.2f} s wall, "
             f"{result['cpu_s']['plain']:.2f} s CPU)",
             f"speed-up: {result['speedup']:.1f}x; identical predictions: "
             f"{'yes' if not result['mismatches'] else 'NO'} ({result['n_different']} differ, {result['n_ties']} "
             f"of them ties within the tolerance)"]
    pt = result.get("ptuning")
    if pt:
        lines.append(f"P-Tuning training: {pt['steps_per_s']:.2f} steps/s ({pt['steps']} steps of batch "
                     f"{pt['batch_size']}, relation {pt['relation']}, {pt['trainable_params']:,} trainable "
                     f"parameters, frozen backbone)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-bert", help="conf/model name")
    parser.add_argument("--variant", default="lama34k", choices=["lama34k", "lama29k"])
    parser.add_argument("--template", default="lama", help="conf/template prompt set for the evaluation")
    parser.add_argument("--facts-per-relation", type=int, default=50, help="test facts per relation (0: all)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--ptuning-steps", type=int, default=20, help="timed P-Tuning steps (0 skips)")
    parser.add_argument("--relation", default="P17", help="relation whose train facts P-Tuning uses")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--tie", type=float, default=1e-4, help="logit gap below which a difference is a tie")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers to this file")
    args = parser.parse_args(argv)
    torch.manual_seed(34)
    result = run(args.model, args.variant, args.template, args.facts_per_relation or 10**9, args.batch_size,
                 args.ptuning_steps, args.relation, args.device, args.tie)
    print(report(result))
    if args.json:
        from bench.io_utils import atomic_write_json

        atomic_write_json(args.json, result)
    return 1 if result["mismatches"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
