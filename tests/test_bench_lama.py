"""The LAMA benchmark: our batched evaluation and the plain one-fact loop agree, and a disagreement fails it."""


import bench.lama.evaluation as lama_eval
from bench.bench_lama import main, report, run


def test_batched_evaluation_matches_the_plain_loop_on_a_tiny_model(lama_data):
    result = run("tiny-bert", "lama34k", "lama", per_relation=2, batch_size=16, ptuning_steps=2, relation="P17",
                 device="cpu", tie=1e-4)
    assert result["n_facts"] == 82 and result["n_relations"] == 41
    assert result["mismatches"] == [] and result["n_different"] == result["n_ties"]
    assert result["ours_facts_per_s"] > 0 and result["plain_facts_per_s"] > 0
    assert result["ptuning"]["steps"] == 2 and result["ptuning"]["steps_per_s"] > 0
    assert result["ptuning"]["trainable_params"] > 0
    text = report(result)
    assert "identical predictions: yes" in text and "P-Tuning training:" in text


def test_a_wrong_evaluation_is_caught(lama_data, monkeypatch, capsys):
    def wrong_scorer(model):  # a scorer that reads the position before the target
        def score(batch):
            shifted = type(batch)(**{**batch.__dict__, "target_cols": (batch.target_cols - 1).clamp(min=0)})
            return lama_eval.target_logits(model, shifted)
        return score

    monkeypatch.setattr(lama_eval, "frozen_scorer", wrong_scorer)
    code = main(["--model", "tiny-bert", "--facts-per-relation", "1", "--ptuning-steps", "0", "--device", "cpu"])
    assert code == 1
    assert "identical predictions: NO" in capsys.readouterr().out
