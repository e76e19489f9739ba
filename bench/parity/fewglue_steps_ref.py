"""Shared by the FewGLUE loss drivers (``fewglue_losses_ref.py``: PET, ``fewglue_ptlosses_ref.py``: PT-Fewshot),
run inside a reference's own environment beside them (the script's folder is on ``sys.path``): the pieces both
references' ``wrapper.train`` share. Imports torch only, never ``bench``."""



def train_loss(wrapper, batch):
    """What the reference's ``train`` takes as the loss of one (micro-)batch: the task helper's ``train_step``
    first, else ``mlm_train_step``."""
    loss = wrapper.task_helper.train_step(batch) if wrapper.task_helper else None
    if loss is None:
        loss = wrapper.mlm_train_step(batch)
    return loss


def first_batch(wrapper, processors, case):
    """The case's first ``n`` training examples as the reference batches them, after its pre-training scoring of
    the training set (``train_single_model``: WSC's pad draws come first); returns (guids, batch)."""
    examples = processors[case["task"]]()._create_examples(case["file"], "train")
    for example in examples:
        wrapper.preprocessor.get_input_features(example, labelled=True)
    dataset = wrapper._generate_dataset(examples)
    n = case["n"]
    return [ex.guid for ex in examples[:n]], {k: t[:n] for k, t in dataset.tensors.items()}


def micro_losses(wrapper, batch, n, micro):
    """The loss of each micro-batch of ``micro`` examples (what gradient accumulation averages)."""
    return [float(train_loss(wrapper, {k: t[i:i + micro] for k, t in batch.items()})) for i in range(0, n, micro)]


def label_logits(wrapper, batch):
    """The label-word logits of a verbalizer pattern, or None where the task helper trains otherwise (COPA, WSC,
    ReCoRD: ``train_step`` returns a loss)."""
    if wrapper.task_helper and wrapper.task_helper.train_step({k: t[:1] for k, t in batch.items()}) is not None:
        return None
    scores = wrapper.model(**wrapper.generate_default_inputs(batch))[0]
    return wrapper.preprocessor.pvp.convert_mlm_logits_to_cls_logits(batch["mlm_labels"], scores).tolist()
