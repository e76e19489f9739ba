"""transformers 3.0.2's slow BertTokenizer (PET's, PT-Fewshot's) on every FewGLUE / SuperGLUE text where the fast
tokenizer differs, plus hand-made strings (golden ``slow_bert_tiny-bert``, ``--parts slow_bert``): the suite's
``task.tokenization: pet_slow`` on WordPiece must give the same ids, cased and uncased (docs/parity.md, Slow BERT)."""

import pytest

from bench.parity import fewglue_slow_bert as sb
from bench.parity.golden import load_golden
from bench.prompts.slow_tokenizers import slow_wordpiece_ids


@pytest.mark.parametrize("variant", sb.VARIANTS)
def test_slow_wordpiece_ids_equal_transformers_3_0_2(variant):
    gold = load_golden("fewglue", sb.GOLDEN)
    tok = sb.tokenizer(variant == "uncased")
    cases = gold["texts"]
    assert len(cases) >= len(sb.EXTRA) + gold["fast_differs"][variant] > len(sb.EXTRA)  # the fast one differs on some
    wrong = [c["text"][:60] for c in cases if slow_wordpiece_ids(tok, c["text"]) != c[variant]]
    assert wrong == [], f"{len(wrong)} of {len(cases)} texts differ from 3.0.2's ids, e.g. {wrong[:3]}"
    fast_wrong = sum(list(tok.encode(c["text"], add_special_tokens=False)) != c[variant] for c in cases)
    assert fast_wrong >= gold["fast_differs"][variant]  # the golden holds what it claims: the fast one is wrong there
