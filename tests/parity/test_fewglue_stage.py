"""PET's second stage on fixed numbers (golden from timoschick/pet @21d32de's own merge_logits_lists,
distillation_loss and generate_ipet_train_sets): the suite's ensemble, soft labels (T = 2), distillation
loss and iPET per-label counts agree to 1e-5 relative (docs/parity.md, FewGLUE)."""

from bench.parity import fewglue as fg
from bench.parity.golden import REL_TOL, load_golden


def test_stage_matches_pets():
    result = fg.compare_stage()
    for key in ("merged_wmean", "merged_mean", "soft_labels", "distillation_loss"):
        assert result[key] <= REL_TOL, (key, result[key])
    assert result["ipet_per_label"]


def test_stage_golden_is_pets_arithmetic():
    # an independent check of the golden itself: PET's iPET counts are int(train count x 128 / 32) per label
    gold = load_golden("fewglue", "stage")
    labels = gold["inputs"]["train_labels"]
    expected = [int(labels.count(k) * 128 / 32) for k in range(3)]
    assert all(v == expected for v in gold["pet"]["ipet_per_label"].values())
    # the wmean of 4 models by their accuracies, example 0 label 0, recomputed by hand
    acc = gold["inputs"]["train_accuracy"]
    by_hand = sum(a * m[0][0] for a, m in zip(acc, gold["inputs"]["logits"], strict=True)) / sum(acc)
    assert abs(by_hand - gold["pet"]["merged_wmean"][0][0]) <= 1e-12 * max(1.0, abs(by_hand))
