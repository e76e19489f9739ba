"""P-Tuning v2 on fixed weights equals THUDM/P-tuning-v2's own prefix models (@b1520c9), from a committed golden.

tests/golden/parity/superglue/models.json holds what the reference's ``BertPrefixFor*`` /
``RobertaPrefixFor*`` computed (``python -m bench.parity superglue --ref ...``) with the weights of
``bench/parity/superglue_models.py`` on its own batch: prefix past key values (table and
``--prefix_projection``), the attention mask with the prefix columns, logits, loss, and how its
``from_pretrained`` initialised the prefix encoder, pooler and classifier.
"""

from __future__ import annotations

import pytest
import torch

from bench.methods.deep_prompts import DeepPrompts
from bench.methods.ptuning_v2 import PTuningV2
from bench.parity import superglue as P
from bench.parity import superglue_models as M
from bench.parity.golden import REL_TOL, load_golden, max_rel_diff

GOLDEN = load_golden(M.STUDY, "models")["cases"]


@pytest.fixture(scope="module")
def outputs(tiny_backbone):
    cache = {}

    def get(case: M.Case):
        if case.name not in cache:
            backbone = tiny_backbone(case.model)
            task_obj = P.suite_task(f"sgv2_ptuning_v2_{case.task}_{case.arch}", case.model, backbone)
            method = M.suite_method(case, backbone, task_obj.n_out)
            cache[case.name] = (M.suite_outputs(case, task_obj, method, GOLDEN[case.name]["keys"]), method)
        return cache[case.name]

    return get


def scale_rel_diff(ours, theirs) -> float:
    """max |a - b| over the tensor's largest |b| (prefix entries near 0 make per-element ratios meaningless)."""
    a, b = torch.tensor(ours, dtype=torch.float64), torch.tensor(theirs, dtype=torch.float64)
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize("case", M.CASES, ids=[c.name for c in M.CASES])
def test_prefixes_mask_logits_and_loss_equal_the_reference(outputs, case):
    ours, _ = outputs(case)
    ref = GOLDEN[case.name]
    assert torch.tensor(ours["past_key_values"]).shape == torch.tensor(ref["past_key_values"]).shape
    assert scale_rel_diff(ours["past_key_values"], ref["past_key_values"]) < REL_TOL
    assert max_rel_diff(ours["logits"], ref["logits"]) < REL_TOL
    assert max_rel_diff(ours["loss"], ref["loss"]) < REL_TOL
    # the mask the encoder receives: psl ones for the prefix, then the example's own mask
    ref_mask = torch.tensor(ref["attention_mask"]).reshape(-1, case.psl + P.MAX_LENGTH)
    our_mask = torch.tensor(ours["attention_mask"])
    assert ref_mask.shape[0] == our_mask.shape[0]
    for row, n in enumerate(ours["lengths"]):
        width = case.psl + int(n)
        assert our_mask[row, :width].tolist() == ref_mask[row, :width].long().tolist() == [1] * width
        assert not our_mask[row, width:].any() and not ref_mask[row, width:].any()


@pytest.mark.parametrize("case", [c for c in M.CASES if c.name in ("rte_bert_projection", "rte_roberta_table")],
                         ids=lambda c: c.name)
def test_initialisation_follows_the_references_from_pretrained(tiny_backbone, case):
    """N(0, 0.02) weights and zero biases for the prefix encoder and the head, as the reference starts."""
    ref = GOLDEN[case.name]["init"]
    method = PTuningV2(length=case.psl, reparameterize=case.projection, mid_dim=case.mid, output_space="labels",
                       pool="pooler", num_labels=2)
    torch.manual_seed(0)
    method.setup(tiny_backbone(case.model))
    ours = {M.REF_NAMES[name].format(base=case.arch): p for name, p in M.named_weights(method).items()}
    assert set(ours) == set(ref)
    for name, stats in ref.items():
        p = ours[name].detach()
        if name.endswith("bias"):
            assert stats["absmax"] == 0.0 and float(p.abs().max()) == 0.0, name
        else:
            assert abs(stats["std"] - 0.02) < 0.004 and abs(float(p.std()) - stats["std"]) < 0.004, name
    torch_init = PTuningV2(length=case.psl, reparameterize=False, output_space="labels", pool="pooler", num_labels=2,
                           init="torch")
    torch_init.setup(tiny_backbone(case.model))
    assert float(torch_init.prompts.encoders["layers"].embedding.weight.detach().std()) > 0.5  # nn.Embedding's N(0, 1)


@pytest.mark.parametrize("per_example", [True, False])
def test_prefix_dropout_mask_per_example_or_per_batch(tiny_backbone, per_example):
    model = tiny_backbone("tiny-bert").model
    prompts = DeepPrompts(model, 3, reparameterize=False, dropout=0.5, dropout_per_example=per_example).train()
    torch.manual_seed(0)
    kwargs = prompts.patch()("model", {"input_ids": torch.ones(4, 5, dtype=torch.long),
                                       "attention_mask": torch.ones(4, 5, dtype=torch.long)})
    keys = kwargs["past_key_values"].layers[0].keys  # (batch, heads, L, dim)
    zeros = keys == 0
    same_mask = all(torch.equal(zeros[0], zeros[i]) for i in range(1, 4))
    assert same_mask != per_example
    assert 0.3 < float(zeros.float().mean()) < 0.7
