"""Training-step speed: the suite's P-Tuning against PEFT's P-tuning, and the suite's PET step
against a plain Hugging Face masked-LM step, on the same model and the same batch.

- P-Tuning (LAMA setting): frozen backbone in train mode, batch of 8 of one relation's train facts.
  Ours: the template's 9 pseudo tokens ``[P:3] [X] [P:3] [Y] [P:3]`` filled by the prompt encoder
  (run once per step), the LM head at the target only, cross-entropy over the full vocabulary.
  PEFT: ``get_peft_model`` with ``PromptEncoderConfig`` (9 virtual tokens, MLP or LSTM
  reparameterisation) prepended to the same facts without the pseudo-token slots (same length),
  labels at the target (-100 elsewhere): its encoder runs for every row, the LM computes logits at
  every position. Both: Adam, the same learning rate.
- PET (ALBERT-xxlarge-v2 shapes): every weight trained with AdamW on a batch of token sequences with
  one mask each. Ours: :class:`bench.methods.pet.PatternTuning`'s scorer (head at the mask), the
  mean logit of each label's words, cross-entropy over the labels; with bf16 autocast where the
  machine's bf16 matmul is faster than its fp32 one. Plain: ``AlbertForMaskedLM(..., labels=)``,
  full logits at every position, the masked-LM loss at the mask, float32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bench.speed.measure import PeakMemory, sync, timed


def interleaved(steps_by_name: dict, device: torch.device, steps: int, warmup: int = 1) -> dict[str, dict]:
    """Seconds per step (best of ``steps``, taken in rounds over the variants so that a busy moment
    of a shared machine hits all alike) and peak memory during a step, per variant."""
    for step in steps_by_name.values():
        for i in range(warmup):
            step(i)
    sync(device)
    out = {name: {"seconds": float("inf"), "peak_bytes": 0} for name in steps_by_name}
    for i in range(steps):
        for name, step in steps_by_name.items():
            with PeakMemory(device) as peak:
                seconds = timed(lambda step=step, i=i: step(warmup + i), device)[1]
            out[name]["seconds"] = min(out[name]["seconds"], seconds)
            out[name]["peak_bytes"] = max(out[name]["peak_bytes"], peak.bytes)
    return out


def ptuning_batches(backbone, candidates, relation: str, batch_size: int, n: int):
    """Our method (set up, encoder built) and ``n`` training batches of one relation."""
    from hydra.utils import instantiate

    from bench.bench_lama import _conf
    from bench.lama.training import LamaRelationTask, pad_id_of, split_items
    from bench.prompts import templates_for

    method = instantiate(_conf("method", "ptuning")["component"])
    method.setup(backbone)
    template = method.adapt_template(templates_for(_conf("template", "ptuning_lama"), relation, backbone.family)[0])
    items, _ = split_items(relation, "train", template, backbone, candidates, {"variant": "lama34k"})
    task = LamaRelationTask(relation, {"train": items}, candidates, pad_id_of(backbone.tokenizer), backbone.device)
    batches = task.train_batches(batch_size, torch.Generator().manual_seed(34))[:n]
    return method, task, batches


def ours_ptuning(backbone, candidates, relation: str, encoder: str, batch_size: int, steps: int):
    """Our P-Tuning training step (closure), its trainable parameter count and learning rate."""
    from bench.bench_lama import _conf
    from bench.train import build_optimizer

    method, task, batches = ptuning_batches(backbone, candidates, relation, batch_size, steps + 1)
    if encoder != "lstm":  # the MLP encoder, sized like PEFT's (3 layers, hidden = embedding size)
        method.encoder_kind, method.mlp_layers = encoder, 3
        method.build_encoder(method.encoder.num_tokens)
    trainer = {**_conf("trainer", "default"), "optimizer": "adam"}
    optimizer = build_optimizer(method, trainer)
    scorer = method.scorer()

    def step(i: int) -> None:
        method.train_mode()
        batch = batches[i % len(batches)]
        loss = task.loss(scorer(batch), batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step, sum(p.numel() for p in method.trainable_parameters()), float(trainer["lr"])


def _peft_inputs(batch, n_virtual: int, causal: bool, pad_id: int):
    """The batch without its pseudo-token slots; labels at the target (causal: the object appended)."""
    rows = []
    soft = {(int(r), int(c)) for r, c in zip(batch.soft_rows.tolist(), batch.soft_cols.tolist(), strict=True)}
    for row in range(batch.input_ids.shape[0]):
        length = int(batch.attention_mask[row].sum())
        keep = [c for c in range(length) if (row, c) not in soft]
        target = int(batch.target_cols[row])
        ids = batch.input_ids[row, keep].tolist()
        gold = int(batch.labels[row])
        if causal:
            ids, position = ids + [gold], len(ids)
        else:
            position = keep.index(target)
        rows.append((ids, position, gold))
    width = max(len(ids) for ids, _, _ in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros_like(input_ids)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    for row, (ids, position, gold) in enumerate(rows):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        mask[row, : len(ids)] = 1
        labels[row, position] = gold
    if not causal:  # PEFT's feature-extraction model does not extend the labels over its virtual tokens
        labels = torch.cat([torch.full((len(rows), n_virtual), -100, dtype=torch.long), labels], dim=1)
    return input_ids, mask, labels


def ptuning_figures(backbone, candidates, relation: str, batch_size: int, steps: int) -> dict:
    """Ours against PEFT, per encoder (LSTM, MLP), same model, facts and batch size."""
    from peft import PromptEncoderConfig, get_peft_model

    from bench.lama.training import pad_id_of

    device, causal = backbone.device, backbone.family == "clm"
    rows = {}
    for encoder in ("lstm", "mlp"):
        ours, ours_params, lr = ours_ptuning(backbone, candidates, relation, encoder, batch_size, steps)
        method, _, batches = ptuning_batches(backbone, candidates, relation, batch_size, steps + 1)
        n_virtual = method.encoder.num_tokens
        inputs = [tuple(t.to(device) for t in _peft_inputs(b, n_virtual, causal, pad_id_of(backbone.tokenizer)))
                  for b in batches]
        config = PromptEncoderConfig(task_type="CAUSAL_LM" if causal else "FEATURE_EXTRACTION",
                                     num_virtual_tokens=n_virtual, encoder_reparameterization_type=encoder.upper(),
                                     token_dim=method.dim)
        peft_model = get_peft_model(backbone.model, config).to(device)
        try:
            optimizer = torch.optim.Adam([p for p in peft_model.parameters() if p.requires_grad], lr=lr)

            def peft_step(i: int, peft_model=peft_model, optimizer=optimizer, inputs=inputs) -> None:
                peft_model.train()
                input_ids, mask, labels = inputs[i % len(inputs)]
                loss = peft_model(input_ids=input_ids, attention_mask=mask, labels=labels).loss
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()

            timed_rows = interleaved({"ours": ours, "peft": peft_step}, device, steps)
            peft_params = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
        finally:
            peft_model.eval()
            backbone.model = peft_model.get_base_model()  # unwrap: the backbone stays usable
        rows[f"ours_{encoder}"] = {**timed_rows["ours"], "trainable_params": ours_params}
        rows[f"peft_{encoder}"] = {**timed_rows["peft"], "trainable_params": peft_params}
    backbone.model.requires_grad_(False)
    backbone.model.eval()
    return {"relation": relation, "batch_size": batch_size, "steps": steps, "rows": rows}


def pet_figures(spec, device: torch.device, batch_size: int, length: int, steps: int, bf16: bool) -> dict:
    """PET step vs a plain masked-LM step on ALBERT-xxlarge-v2 shapes (random ids, one mask per row)."""
    from types import SimpleNamespace

    from bench.backbones.scoring import pad_batch
    from bench.methods.pet import PatternTuning
    from bench.speed.shapes import build_model
    from bench.superglue.batching import word_scores

    model = build_model(spec, device)
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(5, spec.vocab, (batch_size, length), generator=generator)
    ids[:, 0], ids[:, -1] = 2, 3  # [CLS] ... [SEP]
    mask_at = torch.randint(1, length - 1, (batch_size,), generator=generator)
    ids[torch.arange(batch_size), mask_at] = 4  # [MASK]
    table = torch.tensor([[1000, 1001], [2000, -1]], device=device)  # two labels; 2 and 1 label words
    labels = torch.randint(0, 2, (batch_size,), generator=generator).to(device)
    batch = pad_batch(ids.tolist(), [[int(c)] for c in mask_at], 0).to(device)
    mlm_labels = torch.full_like(ids, -100)
    mlm_labels[torch.arange(batch_size), mask_at] = table[labels.cpu(), 0].cpu()
    ids, mlm_labels = ids.to(device), mlm_labels.to(device)
    attention = torch.ones_like(ids)

    method = PatternTuning()
    method.setup(SimpleNamespace(model=model, device=device, family="mlm"))
    scorer = method.scorer()

    def variant(loss_fn, autocast: bool):
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)

        def step(i: int) -> None:
            model.train()
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                loss = loss_fn()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        return step

    variants = {"plain": variant(lambda: model(input_ids=ids, attention_mask=attention, labels=mlm_labels).loss, False),
                "ours": variant(lambda: F.cross_entropy(word_scores(scorer(batch), table), labels), False)}
    if bf16:
        variants["ours_bf16"] = variant(lambda: F.cross_entropy(word_scores(scorer(batch).float(), table), labels),
                                        True)
    rows = interleaved(variants, device, steps)
    params = sum(p.numel() for p in model.parameters())
    return {"batch_size": batch_size, "length": length, "steps": steps, "params": params, "rows": rows}
