"""SuperGLUE / FewGLUE loaders: counts on the real files, label and field handling, PET training views."""

import json
import shutil

import pytest

from bench.errors import DataError
from bench.paths import data_dir, mirror_dir
from bench.superglue import data as sg

VAL = {"BoolQ": 3270, "CB": 56, "COPA": 100, "MultiRC": 4848, "RTE": 277, "WiC": 638, "WSC": 104}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """The prepared data when present, else the same layout copied from the FewGLUE mirror files."""
    prepared = data_dir()
    if (prepared / "superglue" / "RTE" / "val.jsonl").is_file() and (prepared / "fewglue" / "RTE").is_dir():
        return prepared
    mirror = mirror_dir()
    if mirror is None or not (mirror / "fewglue" / "FewGLUE_32dev").is_dir():
        pytest.skip("neither data/ (make data) nor the shared FewGLUE mirror is available")
    out = tmp_path_factory.mktemp("data")
    for task in sg.TASKS:
        src = mirror / "fewglue" / "FewGLUE_32dev" / task
        (out / "fewglue" / task).mkdir(parents=True)
        (out / "superglue" / task).mkdir(parents=True)
        for split in ("train", "dev32"):
            shutil.copy(src / f"{split}.jsonl", out / "fewglue" / task / f"{split}.jsonl")
        if (src / "val.jsonl").is_file():
            shutil.copy(src / "val.jsonl", out / "superglue" / task / "val.jsonl")
    shutil.copy(mirror / "superglue" / "RTE" / "train.jsonl", out / "superglue" / "RTE" / "train.jsonl")
    return out


@pytest.mark.parametrize("task", sg.TASKS)
def test_fewglue_counts_train_dev32_val(root, task):
    train = sg.load_split(task, "train", "fewglue", root=root)
    dev32 = sg.load_split(task, "dev32", "fewglue", root=root)
    if task == "MultiRC":  # one example per answer option: 32 passages each
        assert (len(train), len(dev32)) == (154, 167)
        assert len({ex.uid.split("-q")[0] for ex in train}) == 32
    else:
        assert (len(train), len(dev32)) == (32, 32)
    if task == "ReCoRD":
        with pytest.raises(DataError, match="not prepared"):
            sg.load_split(task, "val", "fewglue", root=root)
        return
    val = sg.load_split(task, "val", "fewglue", root=root)
    assert len(val) == VAL[task]
    assert all(ex.label is not None and 0 <= ex.label < ex.n_options for ex in train + dev32 + val)


def test_multirc_val_groups_answers_by_question(root):
    val = sg.load_split("MultiRC", "val", "fewglue", root=root)
    assert len({ex.group for ex in val}) == 953
    assert {ex.label for ex in val} == {0, 1}


def test_superglue_variant_holds_out_a_fixed_tenth_of_train(root):
    train = sg.load_split("RTE", "train", "superglue", root=root)
    held = sg.load_split("RTE", "heldout", "superglue", root=root)
    assert (len(train), len(held)) == (2490 - 249, 249)
    assert not {ex.uid for ex in train} & {ex.uid for ex in held}
    assert [ex.uid for ex in held] == [ex.uid for ex in sg.load_split("RTE", "heldout", "superglue", root=root)]


def test_missing_full_train_names_the_file_and_the_fix(root):
    with pytest.raises(DataError, match="BoolQ superglue/train is not prepared") as err:
        sg.load_split("BoolQ", "train", "superglue", root=root)
    assert "python -m data_prep superglue" in str(err.value)


def row(task, **fields):
    return sg.examples_from_row(task, fields, "t-0")


def test_labels_map_to_label_indices():
    cb = row("CB", premise="P.", hypothesis="It rains.", label="neutral", idx=0)[0]
    assert cb.label == 2 and cb.fields["hypothesis_bare"] == "It rains"
    assert row("BoolQ", passage="p", question="q", label=True, idx=0)[0].label == 1
    assert row("WiC", word="w", sentence1="a", sentence2="b", label="false", idx=0)[0].label == 0


def test_copa_choices_are_lowercased_without_final_punctuation():
    ex = row("COPA", premise="The man fell.", choice1="He slipped.", choice2="He sang!", question="effect",
             label=1, idx=3)[0]
    assert ex.choices == ("he slipped", "he sang") and ex.label == 1
    assert ex.fields["connective"] == ", so" and ex.fields["premise_bare"] == "The man fell"
    assert ex.fields["joiner"] == "so"  # PT-Fewshot's effect word (task_pvps.py CopaPVP)
    mirrored = sg.copa_mirrored([ex])
    assert len(mirrored) == 2 and mirrored[1].choices == ("he sang", "he slipped") and mirrored[1].label == 0
    assert mirrored[1].fields["choice1_lc"] == "he sang"


def test_wsc_marks_the_pronoun_and_repairs_an_off_by_one_index():
    target = {"span1_index": 0, "span1_text": "Tom", "span2_index": 3, "span2_text": "he"}  # "he" is word 4
    ex = row("WSC", text="Tom said that when he left.", target=target, label=True, idx=0)[0]
    assert ex.fields["text_marked"] == "Tom said that when *he* left."
    assert (ex.fields["pronoun"], ex.fields["target"], ex.label) == ("he", "Tom", 1)


def test_record_entities_use_inclusive_ends_and_highlights_become_dashes():
    text = "Paris is big.\n@highlight\nRome too"
    entities = [{"start": 0, "end": 4}, {"start": 25, "end": 28}, {"start": 0, "end": 4}]
    qas = [{"query": "@placeholder's mayor spoke", "idx": 7, "answers": [{"start": 25, "end": 28, "text": "Rome"}]}]
    ex = row("ReCoRD", source="x", passage={"text": text, "entities": entities}, qas=qas, idx=1)[0]
    assert ex.choices == ("Paris", "Rome") and ex.label == 1 and ex.answers == ("Rome",)
    assert ex.fields["passage"] == "Paris is big.\n- Rome too"
    assert (ex.fields["query_left"], ex.fields["query_right"]) == ("", "'s mayor spoke")
    view = sg.record_training_view([ex], max_candidates=10)
    assert [(v.choices, v.label) for v in view] == [(("Rome", "Paris"), 0)]


def test_record_training_view_caps_candidates_per_answer():
    ex = sg.Example("ReCoRD", "r", {}, 0, tuple(f"e{i}" for i in range(20)), answers=("e0", "e5"))
    view = sg.record_training_view([ex], max_candidates=4)
    assert [len(v.choices) for v in view] == [4, 4] and [v.choices[0] for v in view] == ["e0", "e5"]
    assert all("e5" not in v.choices[1:] and "e0" not in v.choices[1:] for v in view)


def test_classifier_pairs_follow_pet_sequence_classifier_inputs():
    rte = row("RTE", premise="A.", hypothesis="B.", label="entailment", idx=0)[0]
    assert sg.classifier_pairs(rte) == [("A.", "B.")]
    wic = row("WiC", word="bank", sentence1="s1", sentence2="s2", label=True, idx=0)[0]
    assert sg.classifier_pairs(wic) == [("bank: s1", "s2")]
    copa = row("COPA", premise="It broke.", choice1="It fell.", choice2="It sang.", question="cause", label=0, idx=0)[0]
    assert sg.classifier_pairs(copa) == [("It broke because it fell", None), ("It broke because it sang", None)]


def test_rows_round_trip_through_jsonl(tmp_path):
    folder = tmp_path / "fewglue" / "RTE"
    folder.mkdir(parents=True)
    rows = [{"premise": f"p{i}", "hypothesis": "h.", "label": "not_entailment", "idx": i} for i in range(5)]
    (folder / "dev32.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    got = sg.load_split("rte", "dev32", "fewglue", root=tmp_path, limit=3)
    assert [ex.uid for ex in got] == ["dev32-0", "dev32-1", "dev32-2"] and {ex.label for ex in got} == {1}
