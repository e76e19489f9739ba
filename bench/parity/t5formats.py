"""T5's SuperGLUE text-to-text formats by execution: T5's own preprocessors beside the suite's t5_<task> templates.

``python -m bench.parity t5formats --ref /path/to/text-to-text-transfer-transformer`` runs tfds'
``super_glue`` example generator and T5's preprocessors (``bench/parity/t5formats_ref.py``, in T5's
environment: TensorFlow, seqio, tfds-nightly) on picked rows of the suite's prepared data and writes
``tests/golden/parity/t5formats/<task>.json(.gz)``: per picked example T5's ``inputs`` and ``targets``
strings, and their token ids under the suite's tiny T5 tokenizer (the whole string tokenised at once,
as seqio does). :func:`compare` is what the CI test and docs/parity.md report: the suite's rendered
``conf/template/t5_<task>.yaml`` input string, option strings and token ids against the golden ones.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.io_utils import read_jsonl
from bench.parity.golden import load_golden, write_golden
from bench.parity.refenv import RefSpec, check_checkout, ensure_venv, run_ref_script
from bench.paths import data_dir

STUDY = "t5formats"
SPEC = RefSpec(
    name="t5-e081111",
    repo="google-research/text-to-text-transfer-transformer",
    commit="e081111",
    python="3.11",
    requirements=(  # setup.py's unpinned requirements at versions of the commit's time that install together
        "tensorflow==2.14.1",  # the newest TF whose tensorflow-text has a Python 3.11 wheel of the same minor
        "tensorflow-text==2.14.0",  # seqio's tokenizer ops
        "numpy==1.26.4",  # TF 2.14 wants <2; chex 0.1.82 wants >=1.25
        "protobuf==3.20.3",  # seqio 0.0.19 pins <=3.20.3
        "seqio==0.0.19",  # setup.py: seqio-nightly; the release it pins tfds-nightly for
        "tfds-nightly==4.9.2.dev202308090034",  # seqio 0.0.19's pin: super_glue:1.0.2's builder and features
        "jax==0.4.13",  # seqio and t5.evaluation import jax / flax (not used for formats)
        "jaxlib==0.4.13",
        "flax==0.7.2",
        "clu==0.0.9",  # clu 0.0.10 pins numpy 1.23.1
        "ml-collections==0.1.1",
        "etils[epath]==1.5.2",
        "pyglove==0.4.4",
        "orbax-checkpoint==0.3.5",
        "chex==0.1.82",
        "optax==0.1.7",
        "gin-config==0.5.0",
        "babel==2.12.1",
        "sentencepiece==0.1.99",
        "editdistance==0.6.2",
        "sacrebleu==2.3.1",
        "rouge-score==0.1.2",
        "nltk==3.8.1",
        "scikit-learn==1.3.0",
        "scipy==1.11.2",
        "immutabledict==3.0.0",
        "absl-py==1.4.0",
    ),
    patches=(),  # T5's checkout and tfds run unpatched
)
PROMPT_TUNING = RefSpec(  # its taskless_* tasks: T5's formats with the task name dropped (same environment)
    name=SPEC.name, repo="google-research/prompt-tuning", commit="72285ee", python=SPEC.python,
    requirements=SPEC.requirements)
TASKS = ("boolq", "cb", "copa", "multirc", "record", "rte", "rte_glue", "wic", "wsc")  # rte_glue: T5's GLUE RTE
FOLDER = {"boolq": "BoolQ", "cb": "CB", "copa": "COPA", "multirc": "MultiRC", "record": "ReCoRD", "rte": "RTE",
          "rte_glue": "RTE", "wic": "WiC", "wsc": "WSC"}
# (data family, file) per compared split: SuperGLUE's own files where prepared, FewGLUE's otherwise
FILES = {"sg_train": ("superglue", "train"), "sg_val": ("superglue", "val"), "fg_train": ("fewglue", "train"),
         "fg_dev32": ("fewglue", "dev32")}
N_FIRST, N_LONGEST = 50, 5
MULTIRC_PER_LONG_ROW = 10  # answers kept of each of the longest MultiRC passages (the golden file stays small)
TOKENIZER = "tiny-t5"


def split_path(task: str, split: str, root: Path | None = None) -> Path:
    family, name = FILES[split]
    return (root or data_dir()) / family / FOLDER[task] / f"{name}.jsonl"


def splits_for(task: str, root: Path | None = None) -> list[str]:
    """SuperGLUE train/val where prepared; FewGLUE train (and dev32 without a SuperGLUE val) otherwise."""
    out = [s for s in ("sg_train", "sg_val") if split_path(task, s, root).is_file()]
    if "sg_train" not in out:
        out.append("fg_train")
    if "sg_val" not in out:
        out.append("fg_dev32")
    return [s for s in out if split_path(task, s, root).is_file()]


def _odd_wsc(row: Mapping[str, Any]) -> bool:
    """A WSC row whose ``span2_index`` word (split at spaces) is not the pronoun: T5 hard-codes its input."""
    words, target = str(row["text"]).split(" "), row["target"]
    index = int(target["span2_index"])
    return not 0 <= index < len(words) or words[index] != target["span2_text"]


def picked_rows(task: str, split: str, root: Path | None = None) -> list[dict]:
    """The first N_FIRST rows and the N_LONGEST longest; for WSC also every row T5 special-cases."""
    rows = read_jsonl(split_path(task, split, root))
    longest = sorted(range(len(rows)), key=lambda i: len(json.dumps(rows[i])), reverse=True)[:N_LONGEST]
    first = list(range(min(N_FIRST, len(rows))))
    if task == "wsc":
        first += [i for i, row in enumerate(rows) if _odd_wsc(row)]
    if task == "multirc":  # N_FIRST answers, not passages
        count, first = 0, []
        for i, row in enumerate(rows):
            if count >= N_FIRST:
                break
            first.append(i)
            count += sum(len(q["answers"]) for q in row["passage"]["questions"])
    return [rows[i] for i in dict.fromkeys(first + longest)]


def suite_uid(task: str, split: str, row: Mapping[str, Any], tfds_key: str) -> str:
    """The uid ``bench.superglue.data`` gives the example tfds yields under ``tfds_key``."""
    prefix = f"{FILES[split][1]}-{row['idx']}"
    if task == "rte_glue":  # tfds numbers GLUE's TSV rows; the driver hands it one row at a time
        return prefix
    if task == "multirc":
        _, question, answer = tfds_key.split("_")
        return f"{prefix}-q{question}-a{answer}"
    if task == "record":
        return f"{prefix}-q{tfds_key}"
    return prefix


def regenerate(ref: Path, args: Sequence[str]) -> list[Path]:
    """Run T5's preprocessors on the picked rows and write one golden file per task; ``--prompt-tuning PATH``
    (a google-research/prompt-tuning checkout) adds its ``taskless_*`` inputs."""
    import argparse

    from transformers import AutoTokenizer

    from bench.parity.superglue import tokenizer_dir

    parser = argparse.ArgumentParser(prog="python -m bench.parity t5formats --ref T5_CHECKOUT")
    parser.add_argument("--prompt-tuning", type=Path, help="google-research/prompt-tuning checkout at 72285ee")
    extra = parser.parse_args(list(args))
    check_checkout(ref, SPEC)
    driver_args = []
    if extra.prompt_tuning:
        check_checkout(extra.prompt_tuning.resolve(), PROMPT_TUNING)
        driver_args = ["--prompt-tuning", str(extra.prompt_tuning.resolve())]
    python = ensure_venv(SPEC)
    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir(TOKENIZER)))
    script = Path(__file__).with_name("t5formats_ref.py")
    picked = {task: {split: picked_rows(task, split) for split in splits_for(task)} for task in TASKS}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_dir = Path(tmp)
        spec: dict[str, Any] = {"tasks": {}}
        for task, splits in picked.items():
            spec["tasks"][task] = {}
            for split, rows in splits.items():
                path = tmp_dir / f"{task}.{split}.jsonl"
                path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
                spec["tasks"][task][split] = str(path)
        (tmp_dir / "spec.json").write_text(json.dumps(spec))
        run_ref_script(python, script, ["--spec", str(tmp_dir / "spec.json"), "--out", str(tmp_dir / "out.json"),
                                        *driver_args], ref)
        out = json.loads((tmp_dir / "out.json").read_text())
    written = []
    for task in TASKS:
        result = out["tasks"][task]
        payload: dict[str, Any] = {"reference": f"{SPEC.repo}@{SPEC.commit}", "versions": out["versions"],
                                   "tokenizer": TOKENIZER, "label_classes": result["label_classes"], "splits": {}}
        for split, entries in result["splits"].items():
            rows = picked[task][split]
            examples, answers_before = [], 0
            for entry in entries:
                row = rows[entry["row"]]
                if "error" in entry:
                    examples.append({"uid": f"{FILES[split][1]}-{row['idx']}", "error": entry["error"]})
                    continue
                kept = entry["examples"]
                if task == "multirc" and answers_before >= N_FIRST:  # one of the longest passages
                    kept = kept[:MULTIRC_PER_LONG_ROW]
                answers_before += len(entry["examples"])
                for item in kept:
                    t5 = item["t5"]
                    record = {"uid": suite_uid(task, split, row, item["tfds_key"]),
                              "inputs": t5[0]["inputs"] if t5 else None,
                              "targets": [x["targets"] for x in t5],
                              "input_ids": list(tok(t5[0]["inputs"])["input_ids"]) if t5 else None,
                              "target_ids": [list(tok(x["targets"])["input_ids"]) for x in t5]}
                    if t5 and "taskless_inputs" in t5[0]:  # stored as the characters it drops when it is a suffix
                        rest = t5[0]["taskless_inputs"]
                        whole = t5[0]["inputs"]
                        record["taskless"] = len(whole) - len(rest) if whole.endswith(rest) else rest
                    if "in_train_task" in item:
                        record["in_train_task"] = item["in_train_task"]
                    examples.append(record)
            payload["splits"][split] = examples
        written.append(write_golden(STUDY, task, payload))
    return written


# comparison (CI test, docs) ----------------------------------------------------------------------
@dataclass
class Tally:
    """Identical / compared counts of one task and split, per compared thing, and the first difference."""

    counts: dict[str, list[int]] = field(default_factory=dict)  # what -> [identical, n]
    first: dict[str, str] = field(default_factory=dict)

    def add(self, what: str, same: bool, detail: str) -> None:
        pair = self.counts.setdefault(what, [0, 0])
        pair[0] += int(same)
        pair[1] += 1
        if not same and what not in self.first:
            self.first[what] = detail

    @property
    def ok(self) -> bool:
        return all(n > 0 and same == n for same, n in self.counts.values())


def compare(task: str, tokenizer=None, root: Path | None = None) -> dict[str, Tally]:
    """The suite's t5_<task> template on the golden examples' rows, per split: input string, option strings,
    the gold option, WSC's train filter and (with ``tokenizer``, the tiny T5's) input and target token ids."""
    import yaml

    from bench.paths import REPO_ROOT
    from bench.prompts import render, templates_for, verbalizer_for
    from bench.prompts.text2text import input_text, label_ids, target_strings, text2text_entry
    from bench.superglue import data as sg

    golden = load_golden(STUDY, task)
    conf = yaml.safe_load((REPO_ROOT / "conf" / "template" / f"t5_{task}.yaml").read_text())
    template = templates_for(conf, family="seq2seq")[0]
    taskless_conf = yaml.safe_load((REPO_ROOT / "conf" / "template" / f"t5_{task}_taskless.yaml").read_text())
    taskless = templates_for(taskless_conf, family="seq2seq")[0]
    verbalizer = verbalizer_for(conf)
    name = sg.canonical_task(task.removesuffix("_glue"))
    out: dict[str, Tally] = {}
    for split, expected in golden["splits"].items():
        tally = out.setdefault(split, Tally())
        rows = {f"{FILES[split][1]}-{r['idx']}": r for r in read_jsonl(split_path(task, split, root))}
        examples: dict[str, sg.Example] = {}
        for uid, row in rows.items():
            examples.update({ex.uid: ex for ex in sg.examples_from_row(name, row, uid)})
        for gold in expected:
            uid = gold["uid"]
            tally.add("t5 ran", "error" not in gold, f"{uid}: {gold.get('error')}")
            ex = examples.get(uid)
            if ex is None or "error" in gold:
                tally.add("input", False, f"{uid}: no suite example")
                continue
            ours = input_text(template, ex.fields)
            tally.add("input", ours == gold["inputs"], f"{uid}: suite {ours!r} vs T5 {gold['inputs']!r}")
            if "taskless" in gold:  # prompt-tuning's taskless_* task
                want = gold["taskless"] if isinstance(gold["taskless"], str) else gold["inputs"][gold["taskless"]:]
                ours = input_text(taskless, ex.fields)
                tally.add("taskless input", ours == want, f"{uid}: suite {ours!r} vs prompt-tuning {want!r}")
                if tokenizer is not None:  # the string tokenised whole, as for the golden ids
                    rendered = render(taskless, ex.fields, tokenizer, "seq2seq", max_length=None, num_target_tokens=1)
                    ids = text2text_entry(rendered, label_ids("x", tokenizer), tokenizer).input_ids
                    tally.add("taskless ids", ids == list(tokenizer(want)["input_ids"]), f"{uid}: ids differ")
            if task == "wsc":  # T5 generates the referent; the suite has it as a field
                tally.add("target", [ex.fields["target_t5"]] == gold["targets"],
                          f"{uid}: suite {ex.fields['target_t5']!r} vs T5 {gold['targets']!r}")
                if "in_train_task" in gold:
                    tally.add("train filter", (ex.label == 1) == gold["in_train_task"], f"{uid}: label {ex.label}")
            else:
                strings = target_strings(sg.LABELS[name], verbalizer, ex.choices)
                if task == "record":  # one T5 example per answer; the suite ranks the entities
                    want = sorted(set(ex.answers)) or ["<unk>"]
                    ok = gold["targets"] == want and all(a in strings for a in ex.answers)
                    tally.add("target", ok, f"{uid}: suite answers {want!r} vs T5 {gold['targets']!r}")
                else:
                    gold_string = strings[ex.label] if ex.label is not None else "<unk>"
                    tally.add("target", [gold_string] == gold["targets"],
                              f"{uid}: suite {gold_string!r} vs T5 {gold['targets']!r}")
                    labels = golden["label_classes"]
                    tally.add("label strings", labels is None or sorted(strings) == sorted(labels),
                              f"{uid}: suite {strings!r} vs tfds {labels!r}")
            if tokenizer is not None:
                rendered = render(template, ex.fields, tokenizer, "seq2seq", max_length=None, num_target_tokens=1)
                entry = text2text_entry(rendered, label_ids("x", tokenizer), tokenizer)
                tally.add("input ids", entry.input_ids == gold["input_ids"], f"{uid}: input ids differ")
                ids = [label_ids(t, tokenizer) for t in gold["targets"]]
                tally.add("target ids", ids == gold["target_ids"], f"{uid}: target ids differ")
    return out
