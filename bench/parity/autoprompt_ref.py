"""Runs in AutoPrompt's environment with ucinlp/autoprompt on PYTHONPATH (bench/parity/autoprompt.py starts it).

Builds the inputs with AutoPrompt's own ``load_pretrained``, ``TriggerTemplatizer``,
``load_trigger_dataset`` and ``Collator``; runs its ``PredictWrapper``, ``get_loss``,
``GradientStorage`` and ``hotflip_attack`` as ``run_model`` chains them for one iteration
(accumulation_steps 1, no filter), and writes token ids, losses, candidates and candidate scores.
"""

import json
import sys
from pathlib import Path

# this folder holds the suite's own autoprompt.py: take the checkout's package, not it
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import autoprompt.create_trigger as ct  # noqa: E402
import autoprompt.utils as utils  # noqa: E402
import torch  # noqa: E402


def main(job_file):
    job = json.loads(Path(job_file).read_text())
    config, model, tokenizer = ct.load_pretrained(job["model_dir"])
    templatizer = utils.TriggerTemplatizer(job["template"], config, tokenizer, label_field="obj_label",
                                           tokenize_labels=True, add_special_tokens=False)
    dataset = utils.load_trigger_dataset(Path(job["facts"]), templatizer, use_ctx=False)
    model_inputs, labels = utils.Collator(pad_token_id=tokenizer.pad_token_id)(dataset)
    predictor = ct.PredictWrapper(model)
    embeddings = ct.get_embeddings(model, config)
    storage = ct.GradientStorage(embeddings)
    n = templatizer.num_trigger_tokens
    lengths = model_inputs["attention_mask"].sum(-1).tolist()
    cases = []
    for tokens in job["triggers"]:
        trigger_ids = torch.tensor(tokenizer.convert_tokens_to_ids(tokens)).unsqueeze(0)
        filled = ct.replace_trigger_tokens(model_inputs, trigger_ids, model_inputs["trigger_mask"])["input_ids"]
        model.zero_grad()
        logits = predictor(model_inputs, trigger_ids)
        loss = ct.get_loss(logits, labels)
        loss.mean().backward()
        grad = storage.get()
        bsz, _, dim = grad.size()
        grad = torch.masked_select(grad, model_inputs["trigger_mask"].unsqueeze(-1)).view(bsz, n, dim).sum(dim=0)
        positions = []
        for pos in range(n):
            cands = ct.hotflip_attack(grad[pos], embeddings.weight, increase_loss=False,
                                      num_candidates=job["num_cand"])
            scores = []
            for cand in cands:
                temp = trigger_ids.clone()
                temp[:, pos] = cand
                with torch.no_grad():
                    scores.append(float((-ct.get_loss(predictor(model_inputs, temp), labels)).sum()))
            positions.append({"candidates": cands.tolist(), "scores": scores})
        cases.append({"trigger": tokens, "trigger_ids": trigger_ids[0].tolist(),
                      "input_ids": [row[:k] for row, k in zip(filled.tolist(), lengths)],  # noqa: B905 (Python 3.8)
                      "losses": loss.tolist(), "positions": positions})
    out = {"labels": labels[:, 0].tolist(),
           "trigger_positions": [row.nonzero().flatten().tolist() for row in model_inputs["trigger_mask"]],
           "predict_positions": [row.nonzero().flatten().tolist() for row in model_inputs["predict_mask"]],
           "cases": cases}
    Path(job["out"]).write_text(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
