"""``python -m bench.search.speed``: one AutoPrompt iteration, ours against the reference's loop.

Both sides take the same batch of one relation's training facts, the same trigger and position:
the gradient at the triggers, the HotFlip candidates, then the current trigger and every candidate
scored. Ours: logits at [Y] only and all ``num_cand + 1`` triggers in one forward pass. The
reference's loop (create_trigger.py, written out plainly here): full-sequence logits, one forward
pass per candidate. The candidate scores must agree (``--tol``); a relation's search time is
projected as ``iters`` x the per-iteration time (dev scoring after accepted flips excluded, the
same on both sides). Random weights at the papers' shapes (``bench.speed.shapes``) or a tiny model.

``python -m bench.search.speed --model bert-base-cased --device auto``
"""

from __future__ import annotations

import argparse
import sys

import torch
import torch.nn.functional as F

from bench.device import pick_device
from bench.lama import data as lama_data
from bench.lama.evaluation import build_candidates
from bench.lama.training import split_items
from bench.prompts.template import parse_template
from bench.search.autoprompt import SearchSettings
from bench.search.hotflip import blocked_tokens, hotflip_candidates
from bench.search.triggers import TriggerBatch, filled, gold_logprob, trigger_gradient
from bench.speed.measure import best_of, machine_line


def ours(model, tb: TriggerBatch, trigger: torch.Tensor, position: int, num_cand: int, blocked) -> torch.Tensor:
    grad = trigger_gradient(model, tb, trigger)
    cands = hotflip_candidates(grad[position], model.get_input_embeddings().weight, num_cand, blocked)
    options = trigger.repeat(num_cand + 1, 1)
    options[1:, position] = cands
    return torch.cat([cands.float(), gold_logprob(model, tb, options).sum(-1)])


def reference_loop(model, tb: TriggerBatch, trigger: torch.Tensor, position: int, num_cand: int,
                   blocked) -> torch.Tensor:
    """The reference's structure: full logits, a gradient hook on the embeddings, a pass per candidate."""
    stored = {}
    emb = model.get_input_embeddings()
    # the gradient of the embedding output (the reference's backward hook on the embedding module)
    def keep_grad(_module, _inputs, out) -> None:
        out.register_hook(lambda g: stored.update(grad=g))

    handle = emb.register_forward_hook(keep_grad)
    batch = filled(tb, trigger[None])
    with torch.enable_grad():
        model.zero_grad()
        logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
        at = logits[batch.target_rows, batch.target_cols]
        (-F.log_softmax(at, -1).gather(-1, tb.labels[:, None])).mean().backward()
    handle.remove()
    model.zero_grad(set_to_none=True)
    b = tb.batch
    grad = stored["grad"][b.soft_rows, b.soft_cols].view(tb.rows, tb.n_trigger, -1).sum(0)
    cands = hotflip_candidates(grad[position], emb.weight, num_cand, blocked)
    scores = []
    with torch.no_grad():
        for option in [trigger, *[trigger.clone().index_fill_(0, torch.tensor([position], device=trigger.device), c)
                                  for c in cands]]:
            one = filled(tb, option[None])
            logits = model(input_ids=one.input_ids, attention_mask=one.attention_mask).logits
            logp = F.log_softmax(logits[one.target_rows, one.target_cols], -1)
            scores.append(logp.gather(-1, tb.labels[:, None]).sum())
    return torch.cat([cands.float(), torch.stack(scores)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="bert-base-cased", help="a paper shape (random weights) or a tiny model")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--relation", default="P17")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tol", type=float, default=1e-3, help="largest allowed candidate-score difference")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    settings = SearchSettings()
    if args.model.startswith(("tiny-", "mini-")):
        from bench.backbones import load_backbone, load_model_config

        backbone = load_backbone(load_model_config(args.model), device=device, dtype="fp32")
    else:
        from bench.speed.shapes import backbone_for, shape

        backbone = backbone_for(shape(args.model), device)
    model, tok = backbone.model, backbone.tokenizer
    cands = build_candidates(lama_data.load_vocab("lama34k", backbone.lama_vocab_key), tok, backbone.family)
    template = parse_template(settings.template)
    train, _ = split_items(args.relation, "train", template, backbone, cands, {"variant": "lama34k"},
                           settings.batch_size)
    tb = TriggerBatch.of(train, tok.pad_token_id or 0, device)
    gen = torch.Generator().manual_seed(0)
    trigger = torch.randint(1000, 5000, (template.num_soft,), generator=gen).to(device)
    blocked = blocked_tokens(tok, model.get_input_embeddings().weight.size(0), {i.gold_id for i in train})
    ours_out, t_ours = best_of(lambda: ours(model, tb, trigger, 1, settings.num_cand, blocked), device, args.repeats)
    ref_out, t_ref = best_of(lambda: reference_loop(model, tb, trigger, 1, settings.num_cand, blocked), device,
                             args.repeats)
    k = settings.num_cand
    same_cands = ours_out[:k].tolist() == ref_out[:k].tolist()
    gap = float((ours_out[k:] - ref_out[k:]).abs().max())
    print(machine_line(device))
    print(f"AutoPrompt iteration, {args.model}, relation {args.relation}: batch {tb.rows} facts, {k} candidates, fp32")
    print(f"  ours (one pass, logits at [Y]):       {t_ours * 1000:9.1f} ms/iteration")
    print(f"  reference loop (a pass per candidate): {t_ref * 1000:9.1f} ms/iteration   ours {t_ref / t_ours:.2f}x faster")
    print(f"  one relation, {settings.iters} iterations: ours {t_ours * settings.iters / 60:.1f} min, "
          f"reference loop {t_ref * settings.iters / 60:.1f} min (dev scoring of accepted flips not included)")
    print(f"  same candidates: {same_cands}; largest candidate-score difference {gap:.2e} (tolerance {args.tol})")
    return 0 if same_cands and gap <= args.tol else 1


if __name__ == "__main__":
    sys.exit(main())
