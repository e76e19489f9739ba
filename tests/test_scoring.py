"""Scoring at target slots equals indexing a plain full forward pass; segment ids reach the model."""

import torch

from bench.backbones.scoring import pad_batch, target_logits


def test_target_logits_equal_full_forward_with_segment_ids(tiny_backbone):
    backbone = tiny_backbone("tiny-bert")
    model, tok = backbone.model, backbone.tokenizer
    mask = tok.mask_token_id
    seqs = [[tok.cls_token_id, 100, 101, mask, tok.sep_token_id, 102, 103, tok.sep_token_id],
            [tok.cls_token_id, 104, mask, tok.sep_token_id, 105, tok.sep_token_id]]
    types = [[0, 0, 0, 0, 0, 1, 1, 1], [0, 0, 0, 0, 1, 1]]
    batch = pad_batch(seqs, [[3], [2]], tok.pad_token_id, token_type_ids=types)
    assert batch.token_type_ids.tolist() == [[0, 0, 0, 0, 0, 1, 1, 1], [0, 0, 0, 0, 1, 1, 0, 0]]
    ours = target_logits(model, batch)
    with torch.no_grad():
        for row, (seq, typ, pos) in enumerate(zip(seqs, types, [3, 2], strict=True)):
            full = model(input_ids=torch.tensor([seq]), token_type_ids=torch.tensor([typ])).logits[0, pos]
            assert torch.allclose(ours[row], full, atol=1e-5)
            no_types = model(input_ids=torch.tensor([seq])).logits[0, pos]
            assert not torch.allclose(ours[row], no_types, atol=1e-5)  # the segment ids mattered
