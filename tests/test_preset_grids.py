"""Every experiment preset loads and resolves as it did before the presets became grids (issue 26, part 5).

tests/golden/resolved_presets.json.gz was written from the one-file-per-preset conf/experiment/ (before any
recipe existed): per preset, the config source Hydra's repository loads for ``experiment/<name>`` (its header
and body, defaults list included). Whatever now produces a preset (a file or a recipe's per-task table,
bench.grid), each golden name must load as exactly that source (fast, every preset), and compose as
``bench.run experiment=<preset>`` does to the same resolved config (group choices and values, ``paths`` dropped)
as the golden source written back as a file beside today's other config groups (so an edit of a template or
method file by another area changes both sides alike): once with the default model and once per debug
preset a study maps a tiny model to. Presets added since are loaded too; `python tests/test_preset_grids.py
--add-new` appends them to the golden file without touching the existing entries.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from bench.identity import spec_from_config
from bench.paths import REPO_ROOT

CONF = REPO_ROOT / "conf"
GOLDEN = REPO_ROOT / "tests" / "golden" / "resolved_presets.json.gz"
TINY = "tiny-bert"
# "<preset name prefix>:<dotted key>" (the key and everything under it) whose value may differ from the golden file
# in the presets so named, each with the reason (a parity fix landed since the snapshot)
ALLOWED_CHANGES: dict[str, str] = {
    "sgv2_finetune_:method.component.head": "issue 24 A: P-tuning-v2's fine-tuning runs transformers' AutoModelFor* head",
    "sgv2_finetune_:method.component.init": "issue 24 A: new layers N(0, initializer_range), as from_pretrained fills them",
    "sgv2_finetune_copa:method.component.freeze_backbone": "issue 24 A: the reference freezes COPA's backbone (fix_bert)",
    "sgv2_finetune_:run": "the record name carries the config hash, which the three keys above change",
    "sgv2_prompt_tuning_:defaults": "issue 24 B: the presets run prompt_classifier (P-tuning-v2's --prompt model)",
    "sgv2_prompt_tuning_:method": "issue 24 B: prompt_classifier's own config (length 4 = --pre_seq_len default)",
    "sgv2_prompt_tuning_:task.max_length": "issue 24 B: P-tuning-v2's --max_seq_length 128",
    "sgv2_prompt_tuning_:task.classifier_inputs": "issue 24 B: P-tuning-v2's own inputs (pet kept for ReCoRD: C)",
    "sgv2_prompt_tuning_wic:task.classifier_template": "issue 24 B: WiC on P-tuning-v2's default --template_id 0",
    "sgv2_prompt_tuning_:sweep.archs": "issue 24 B: P-tuning-v2's prompt models exist for BERT and RoBERTa only",
    "sgv2_prompt_tuning_:run": "the record name carries the method and the config hash, which the keys above change",
    "sgv2_ptuning_v2_:task.val_selection_by": "8515acf: who selects on val, a text for the selection rule (not hashed)",
    "fewglue_pet_:trainer.aux_mlm_masking": "issue 23 G: PET's _mask_tokens for the auxiliary MLM loss (code wins)",
    "fewglue_ipet_:trainer.aux_mlm_masking": "issue 23 G: iPET's generations are PET's recipe (fewglue_pet_<task>)",
    "fewglue_pet_:run": "the record name carries the config hash, which aux_mlm_masking changes",
    "fewglue_ipet_:run": "the record name carries the config hash, which aux_mlm_masking changes",
    "fewglue_pet_:model.mlm_head_layer_norm_eps": "issue 23: ALBERT's MLM-head LayerNorm eps 1e-5 as transformers 3.0.2",
    "fewglue_ipet_:model.mlm_head_layer_norm_eps": "issue 23: iPET's generations are PET's recipe (ALBERT head eps 1e-5)",
    "fewglue_ptuning_:model.mlm_head_layer_norm_eps": "issue 23: PT-Fewshot pins transformers 3.0.2 (ALBERT head eps)",
    "fewglue_ptuning_:run": "the record name carries the config hash, which mlm_head_layer_norm_eps changes",
    "fewglue_pet_distill_copa:task.copa_classifier_inputs": "issue 23 E: PET's COPA classifier reads one pair, 2 labels",
    "fewglue_ipet_distill_copa:task.copa_classifier_inputs": "issue 23 E: iPET's final classifier is PET's (pet_pair)",
    "fewglue_pet_record:task.choice_loss": "issue 23: PET's RecordTaskHelper.train_step loss (pet_record; code wins)",
    "fewglue_ptuning_:task.sep": "issue 23: PT-Fewshot's '[SEP]' is text in its one sequence (CB/WiC; code wins)",
    "fewglue_pet_distill_:task.tokenization": "issue 23: PET's classifier inputs by its slow tokenizers (3.0.2)",
    "fewglue_ipet_distill_:task.tokenization": "issue 23: iPET's final classifier is PET's (pet_slow)",
    "fewglue_pet_distill_wic:task.wic_classifier_inputs": "issue 23: PET registers no WiC helper: (s1, s2)",
    "fewglue_ipet_distill_wic:task.wic_classifier_inputs": "issue 23: iPET's final classifier is PET's (sentences)",
}
ALLOWED_CHANGES.update({  # issue 23: PET's CopaProcessor mirrors COPA's unlabeled set too (pattern runs, iPET, distillation)
    f"{prefix}:task.mirror_copa_unlabeled": "issue 23: PET mirrors COPA's unlabeled set as its train set (tasks.py)"
    for prefix in ("fewglue_pet_copa", "fewglue_pet_distill_copa", "fewglue_ipet_g1_copa", "fewglue_ipet_g2_copa",
                   "fewglue_ipet_distill_copa")})
ALLOWED_CHANGES.update({  # issue 28: the evaluation of AutoPrompt's search reads the stage-1 record's prompt set
    f"{variant}_autoprompt_search:{key}": "issue 28: stage 2 after <variant>_autoprompt_trigger_search (needs, its "
    "seed 0, its runner and the search template; fp32), the record name's hash with them"
    for variant in ("lama34k", "lama29k") for key in ("defaults", "template", "needs", "seed", "task.runner", "dtype", "run")})
ALLOWED_CHANGES.update({  # issue 23 (difference 13): PET's <Arch>ForSequenceClassification head for the classifier
    f"{prefix}:method.component.{key}": "issue 23: PET's distilled classifier is transformers' *ForSequenceClassification "
    "(the checkpoint's pooler; new layers N(0, initializer_range))"
    for prefix in ("fewglue_pet_distill_", "fewglue_ipet_distill_") for key in ("head", "init")})
ALLOWED_CHANGES.update({  # transformers' own AdamW, as the HF Trainer of P-tuning-v2 (4.11.3) runs it (golden optimizer)
    "sgv2_:trainer.optimizer": "P-tuning-v2's HF Trainer: transformers' AdamW (adamw_hf), checked by execution",
    "sgv2_:run": "the record name carries the config hash, which trainer.optimizer changes"})
# presets left out of the comparison (composed only): another engineer writes them now, so they change on purpose
# (empty: Lester's presets are final since issue 30 and are compared as every other preset)
IN_FLUX: tuple[str, ...] = ()


def preset_names() -> list[str]:
    """Every preset a run can name today: files of conf/experiment/ plus the presets recipes declare."""
    try:
        from bench.grid import preset_names as grid_preset_names
    except ImportError:  # before bench.grid existed (when the golden file was written)
        return sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))
    return grid_preset_names(CONF)


def debug_presets() -> dict[str, list[str]]:
    """Per preset, the debug presets the studies that list it map tiny/mini models to."""
    out: dict[str, set[str]] = {}
    for path in sorted((CONF / "study").glob("*.yaml")):
        study = yaml.safe_load(path.read_text(encoding="utf-8"))
        for preset in study.get("presets") or []:
            out.setdefault(preset, set()).update((study.get("debug") or {}).values())
    return {k: sorted(v) for k, v in out.items()}


@contextmanager
def hydra(conf: Path = CONF) -> Iterator[None]:
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(conf), version_base="1.3", job_name="preset_grids"), yaml_parsed_once():
        yield


@contextmanager
def yaml_parsed_once() -> Iterator[None]:
    """OmegaConf.load with each distinct YAML text parsed once: Hydra re-reads every config file on every compose,
    and PyYAML is about a quarter of a compose here; the same text always parses to the same tree (deep-copied)."""
    import copy

    from omegaconf import OmegaConf
    from omegaconf._utils import get_yaml_loader

    parsed: dict[str, object] = {}
    original = OmegaConf.__dict__["load"]  # the staticmethod itself, put back as it was

    def load(file_):
        if isinstance(file_, str | Path) or not hasattr(file_, "read"):
            return original.__func__(file_)
        text = file_.read()
        if text not in parsed:
            parsed[text] = yaml.load(text, Loader=get_yaml_loader())  # OmegaConf's own (safe) loader
        if not isinstance(parsed[text], dict | list):  # empty or odd files: OmegaConf's own handling and errors
            return original.__func__(io.StringIO(text))
        return OmegaConf.create(copy.deepcopy(parsed[text]))

    OmegaConf.load = staticmethod(load)
    try:
        yield
    finally:
        OmegaConf.load = original


def resolve(overrides: list[str]) -> dict:
    """Hydra's group choices and the resolved config (no ``paths``) of ``bench.run <overrides>``."""
    from hydra import compose
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf, open_dict

    cfg = compose(config_name="config", overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    choices = OmegaConf.to_container(cfg.hydra.runtime.choices)
    with open_dict(cfg):
        del cfg["hydra"]
        del cfg["paths"]
    config = json.loads(json.dumps(OmegaConf.to_container(cfg, resolve=True), default=str))
    run = spec_from_config(config, choices.get("experiment")).name  # the record's name, hence its folder and identity
    return {"choices": {k: v for k, v in choices.items() if not k.startswith("hydra/")}, "config": config, "run": run}


def source_of(name: str) -> dict:
    """The preset's config as Hydra's config repository loads it, before composing: its header and body."""
    from hydra._internal.config_repository import ConfigRepository
    from hydra._internal.utils import create_config_search_path
    from hydra.core.object_type import ObjectType
    from omegaconf import OmegaConf

    global _REPO
    if _REPO is None:
        _REPO = ConfigRepository(create_config_search_path(str(CONF)))
    path = f"experiment/{name}"
    source = _REPO._find_object_source(config_path=path, object_type=ObjectType.CONFIG)  # noqa: SLF001
    assert source is not None, f"{path} not found"
    result = source.load_config(config_path=path)  # the raw source: its defaults list not yet extracted
    return {"header": dict(result.header), "body": OmegaConf.to_container(result.config, resolve=False)}


_REPO = None


def resolve_preset(name: str, debugs: list[str]) -> dict:
    out = {"default": resolve([f"experiment={name}"])}
    for debug in debugs:
        out[f"{TINY}+{debug}"] = resolve([f"experiment={name}", f"model={TINY}", f"debug={debug}"])
    return out


def load_golden() -> dict:
    with gzip.open(GOLDEN, "rt", encoding="utf-8") as f:
        return json.load(f)


def write_golden(golden: dict) -> None:
    body = json.dumps(golden, sort_keys=True, indent=1) + "\n"
    with open(GOLDEN, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as f:
        f.write(body.encode("utf-8"))


def flat(tree: object, prefix: str = "") -> dict[str, object]:
    if isinstance(tree, dict) and tree:
        return {k: v for key, value in tree.items() for k, v in flat(value, f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): tree}


def allowed(name: str, key: str) -> bool:
    """Whether ALLOWED_CHANGES lets ``key`` (header/body/choices/config part dropped) of preset ``name`` differ."""
    key = key.split(".", 1)[-1]
    return any(name.startswith(prefix) and (key == allowed_key or key.startswith(allowed_key + "."))
               for prefix, allowed_key in (entry.split(":", 1) for entry in ALLOWED_CHANGES))


def differences(want: dict, got: dict, name: str = "") -> list[str]:
    a, b = flat(want), flat(got)
    return [f"{key}: {a.get(key, '<absent>')!r} -> {b.get(key, '<absent>')!r}"
            for key in sorted(set(a) | set(b)) if a.get(key, "<absent>") != b.get(key, "<absent>")
            and not (name and allowed(name, key))]


def compared(golden_part: dict) -> list[str]:
    return [name for name in sorted(golden_part) if not name.startswith(IN_FLUX)]


def test_every_golden_preset_loads_as_the_same_config_source():
    """Fast, for every preset: Hydra's config repository returns the same header and body (defaults list
    included) for ``experiment/<name>`` as the file it was; the same source composes to the same config."""
    golden = load_golden()["sources"]
    assert len(golden) > 100  # the snapshot holds every preset of the time
    problems = []
    for name in compared(golden):
        try:
            got = source_of(name)
        except AssertionError as err:
            problems.append(str(err))
            continue
        problems += [f"{name} {d}" for d in differences(golden[name], got, name)]
    assert problems == [], "\n".join(problems[:60])


def test_new_presets_load_too():
    """A preset added since the snapshot (a file or a recipe's row) loads; its values are the recipe's own."""
    golden = load_golden()["sources"]
    for name in preset_names():
        if name not in golden:
            assert source_of(name)["body"], name


def golden_conf(tmp: Path) -> Path:
    """A copy of conf/ whose experiment/ holds the golden sources as files (the presets as they were)."""
    import shutil

    from omegaconf import OmegaConf

    conf = tmp / "conf"
    shutil.copytree(CONF, conf, ignore=shutil.ignore_patterns("experiment"))
    (conf / "experiment").mkdir()
    for name, source in load_golden()["sources"].items():
        header = "".join(f"# @{key} {value}\n" for key, value in source["header"].items())
        (conf / "experiment" / f"{name}.yaml").write_text(header + OmegaConf.to_yaml(source["body"]), encoding="utf-8")
    return conf


def _compare_resolved(names: list[str], tmp: Path) -> list[str]:
    debugs, problems, now = debug_presets(), [], preset_names()
    with hydra(golden_conf(tmp)):
        want = {name: resolve_preset(name, debugs.get(name, [])) for name in names}
    with hydra():
        for name in names:
            if name not in now:
                problems.append(f"{name}: no longer exists")
                continue
            got = resolve_preset(name, debugs.get(name, []))
            problems += [f"{name} [{variant}] {d}" for variant in want[name]
                         for d in differences(want[name][variant], got[variant], name)]
    return problems


# one preset of each kind of recipe (PET's iPET on top of PET, P-Tuning v2's task x architecture table with its variant,
# LAMA's lookup with a paper-protocol preset on top, LM-BFF's SNLI row): composed and resolved fully in the fast test
SAMPLE = ("fewglue_ipet_g2_wic", "sgv2_ptuning_v2_rte_bert_valsel", "lama29k_manual_paper", "lmbff_snli_demo")


def test_sampled_presets_resolve_to_the_same_config(tmp_path):
    assert _compare_resolved([n for n in SAMPLE if n in load_golden()["sources"]], tmp_path) == []


@pytest.mark.slow
def test_every_golden_preset_resolves_to_the_same_config(tmp_path):
    """Every preset composed as bench.run does (default model; tiny model with each study's debug preset)."""
    problems = _compare_resolved(compared(load_golden()["sources"]), tmp_path)
    assert problems == [], "\n".join(problems[:60])


def test_a_preset_differs_in_one_value_when_its_recipe_differs_in_one_value():
    """The comparison sees one changed leaf (a plain second walk over two hand-written trees)."""
    want = {"choices": {"task": "cb"}, "config": {"trainer": {"lr": 1e-5, "batch_size": 16}, "seed": 42}}
    got = {"choices": {"task": "cb"}, "config": {"trainer": {"lr": 1e-4, "batch_size": 16}, "seed": 42}}
    assert differences(want, got) == ["config.trainer.lr: 1e-05 -> 0.0001"]
    assert differences(want, want) == []


RECIPE = """# @package _global_
# Run: python -m bench.run experiment=toy_cb model=tiny-bert
grid:
  name: toy_{task}_{arch}
  rows:
    cb_bert: {}
    copa_gpt2: {trainer: {lr: 2.0e-5}, task: {choice_loss: hinge}}
  lookup:
    size: {cb_bert: base, copa_gpt2: medium}
  variants:
    valsel: {task: {selection_split: val}}
defaults:
  - override /task: "{task}"
  - override /template: pet_{task}
trainer: {lr: 1.0e-5, batch_size: 16}
needs: {presets: ["toy_{task}_{arch}_src"]}
model_size: "{size}"
"""


def test_a_recipe_expands_into_its_rows_and_variants(tmp_path):
    """Hand-written expectation: placeholders from the row key and the lookup, row values over the recipe."""
    from bench.grid import expand_text

    presets = expand_text(RECIPE, "toy.grid.yaml")
    assert sorted(presets) == ["toy_cb_bert", "toy_cb_bert_valsel", "toy_copa_gpt2", "toy_copa_gpt2_valsel"]
    header, body = presets["toy_copa_gpt2"]
    assert header == {"package": "_global_"}
    assert body == {"defaults": [{"override /task": "copa"}, {"override /template": "pet_copa"}],
                    "trainer": {"lr": 2e-5, "batch_size": 16}, "needs": {"presets": ["toy_copa_gpt2_src"]},
                    "model_size": "medium", "task": {"choice_loss": "hinge"}}
    assert presets["toy_cb_bert"][1]["trainer"] == {"lr": 1e-5, "batch_size": 16}
    assert presets["toy_cb_bert_valsel"][1]["task"] == {"selection_split": "val"}
    assert "task" not in presets["toy_cb_bert"][1]


@pytest.mark.parametrize(("edit", "message"), [
    (("    cb_bert: {}\n", "    cb: {}\n"), "grid row 'cb' has 1 part(s) for the 2 placeholder(s)"),
    (("{cb_bert: base, ", "{"), "grid.lookup.size has no value for row 'cb_bert'"),
    (("    cb_bert: {}\n", "    cb_bert: {defaults: [x]}\n"), "grid row 'cb_bert' sets `defaults`"),
    (("grid:\n  name", "grid:\n  nam"), "a recipe needs `grid:"),
])
def test_a_malformed_recipe_is_one_error_naming_the_file_and_the_row(edit, message):
    from bench.errors import ConfigError
    from bench.grid import expand_text

    with pytest.raises(ConfigError, match=re.escape(message)) as err:
        expand_text(RECIPE.replace(*edit), "conf/experiment/toy.grid.yaml")
    assert str(err.value).startswith("conf/experiment/toy.grid.yaml: ")


def test_a_preset_made_twice_is_an_error_naming_both(tmp_path):
    from bench.errors import ConfigError
    from bench.grid import grid_presets, preset_names

    (tmp_path / "experiment").mkdir()
    (tmp_path / "experiment" / "toy.grid.yaml").write_text(RECIPE)
    assert preset_names(tmp_path) == ["toy_cb_bert", "toy_cb_bert_valsel", "toy_copa_gpt2", "toy_copa_gpt2_valsel"]
    (tmp_path / "experiment" / "toy_cb_bert.yaml").write_text("# @package _global_\nseed: 1\n")
    with pytest.raises(ConfigError, match="preset 'toy_cb_bert' is made twice: by .*toy.grid.yaml and by .*toy_cb_bert.yaml"):
        grid_presets(tmp_path)


def test_hydra_composes_a_row_under_its_own_name():
    """`experiment=<row>` through Hydra: the choice is the row's name (hence the record's preset field)."""
    with hydra():
        got = resolve(["experiment=fewglue_pet_wsc", "model=tiny-albert"])
    assert got["choices"]["experiment"] == "fewglue_pet_wsc"
    assert got["choices"]["template"] == "pet_wsc" and got["choices"]["task"] == "wsc"
    assert got["config"]["task"]["wsc_pad_draws"] == "pet" and got["config"]["trainer"]["aux_mlm_weight"] == 0.0


if __name__ == "__main__":  # write the golden file (the first time) or append presets added since (--add-new)
    golden = load_golden() if GOLDEN.exists() else {"sources": {}}
    if GOLDEN.exists() and "--add-new" not in sys.argv:
        sys.exit(f"{GOLDEN} exists: it is the snapshot the grids are compared with; --add-new appends new presets only")
    for name in preset_names():
        if name not in golden["sources"]:
            golden["sources"][name] = source_of(name)
            print("added", name)
    write_golden(golden)
    print(f"wrote {GOLDEN} ({len(golden['sources'])} presets)")
