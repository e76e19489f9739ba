"""``majority``: LAMA's majority-object baseline as a method, so it gets a run record and a table column.

Per relation it predicts the most frequent train object that passes the model's vocabulary filter
(``bench.lama.baselines.majority_objects``); the model is loaded only for its tokenizer (the filter), and
no forward pass runs. Scored by the same P@1 code on the same filtered facts as every other method.
"""

from __future__ import annotations

from collections.abc import Sequence

from bench.methods.manual import ManualPrompt


class MajorityObject(ManualPrompt):
    """A reference point, not a tuning method: nothing is trained (frozen as ManualPrompt) and the model is never called."""

    name = "majority"
    needs_model = False  # predictions come from train-fact counts (the model is loaded for its tokenizer)
    task_kinds = ("lama",)

    def scorer(self):
        raise NotImplementedError("method=majority predicts from train-fact counts; use lama_predictions()")

    def lama_predictions(self, variant: str, word_to_id: dict[str, int], train_facts: str | None = None):
        """A function: rendered LAMA items -> the majority object's token id per item (-1 without one);
        ``train_facts`` names the train/dev fact folder (``task.train_facts``; None: the variant's)."""
        from bench.lama.baselines import majority_objects

        def predict(items: Sequence) -> list[int]:
            relations = sorted({item.fact.relation for item in items})
            chosen = majority_objects(relations, variant, set(word_to_id), train_facts=train_facts)
            return [word_to_id.get(chosen[item.fact.relation][0], -1) for item in items]

        return predict
