"""Prompt export (issue 26, part 4): the exported GPT-2 SuperGLUE prompts, scored by a plain next-token
log-probability computation, give the run's recorded predictions exactly; the rendered text of the GPT-3-style
templates is what their comments say (golden strings written by hand)."""

import pytest
import torch

from bench.paths import REPO_ROOT

RUN = ["task=cb", "model=tiny-gpt2", "method=manual", "template=gpt3_cb", "debug=smoke", "device=cpu"]


@pytest.mark.slow
def test_exported_prompts_scored_independently_give_the_records_predictions(tmp_path):
    from bench.backbones.loading import load_backbone
    from bench.inputs import compose_config
    from bench.job import plan_job, run_job
    from bench.predictions import read_predictions
    from bench.prompts.export import compose_run, export_rows, main
    from bench.study import hydra_context

    overrides = [*RUN, f"paths.results_dir={tmp_path}"]
    with hydra_context():
        cfg = compose_config(overrides)
        run_job(cfg)
        path = plan_job(cfg)[0].path
    recorded = {r["id"]: r for r in read_predictions(path) if r["split"] == "val"}
    resolved = compose_run(overrides)
    rows = export_rows(resolved, "val")
    assert [r["id"] for r in rows] == list(recorded) and len(rows) == 16
    model = load_backbone(resolved["model"], device="cpu", dtype="fp32",
                          models_dir=resolved["paths"]["models_dir"]).model.eval()
    for r in rows:
        assert r["target_position"] == len(r["input_ids"]) - 1  # the next token after the prompt is scored
        with torch.no_grad():  # one unpadded sequence, the plain forward pass, log-softmax over the vocabulary
            logits = model(input_ids=torch.tensor([r["input_ids"]])).logits[0, r["target_position"]].double()
        log_probs = torch.log_softmax(logits, dim=-1)
        scores = [sum(log_probs[t].item() for t in ids) / len(ids) for ids in r["label_token_ids"]]
        mine = max(range(len(scores)), key=scores.__getitem__)
        assert mine == recorded[r["id"]]["prediction"], r["id"]
        theirs = recorded[r["id"]]["scores"]  # mean logits: the same up to one constant per example
        assert [s - scores[0] for s in scores] == pytest.approx([s - theirs[0] for s in theirs], abs=1e-4)
    assert main([*overrides, "split=val", f"out={tmp_path / 'cb.jsonl'}"]) == 0
    assert (tmp_path / "cb.jsonl").read_text().count("\n") == 16


# what each GPT-3-style template renders to on GPT-2, by hand from the whitespace rule its comment states:
# a newline at a field's edge renders as one space; a newline inside literal text reaches the model as "\n"
GOLDEN = {
    "gpt3_cb": ({"premise": "It rained.", "hypothesis": "It was wet"},
                "It rained. question: It was wet true, false, or neither?\nanswer:"),
    "gpt3_rte": ({"premise": "It rained.", "hypothesis": "It was wet."},
                 "It rained. question: It was wet. True or False?\nanswer:"),
    "gpt3_boolq": ({"passage": "Cats purr.", "question": "do cats purr"},
                   "Cats purr. question: do cats purr?\nanswer:"),
    "gpt3_wic": ({"sentence1": "A bank loan.", "sentence2": "The river bank.", "word": "bank"},
                 "A bank loan. The river bank. question: Is the word 'bank' used in the same way in the two "
                 "sentences above?\nanswer:"),
}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_gpt3_templates_render_the_documented_text(name):
    import yaml

    from bench.prompts import render, templates_for
    from bench.prompts.show import load_tokenizer

    cfg = yaml.safe_load((REPO_ROOT / "conf" / "template" / f"{name}.yaml").read_text())
    tokenizer = load_tokenizer("tiny-gpt2", None)[0]
    fields, expected = GOLDEN[name]
    prompt = render(templates_for(cfg, family="clm")[0], fields, tokenizer, "clm")
    assert tokenizer.decode(prompt.input_ids) == expected
    assert "newline inside literal text" in (REPO_ROOT / "conf" / "template" / f"{name}.yaml").read_text()
