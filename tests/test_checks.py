"""Bad input fails before any weights load, naming the key, file or line and the fix; paths come from
the run config. Every case goes through ``bench.run.execute`` with a loader that fails the test."""

import json
import shutil

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import bench.backbones.loading as loading
from bench.checks import preflight, validate_config
from bench.errors import ConfigError, DataError
from bench.paths import REPO_ROOT, data_dir, models_dir
from bench.run import execute


def rte_tree(out, n: int = 8):
    """data/{fewglue,superglue}/RTE with the first n rows of each split of the prepared data."""
    sources = {"train": data_dir() / "fewglue/RTE/train.jsonl", "dev32": data_dir() / "fewglue/RTE/dev32.jsonl",
               "val": data_dir() / "superglue/RTE/val.jsonl"}
    if not all(p.is_file() for p in sources.values()):
        pytest.skip("no prepared RTE data")
    for split, src in sources.items():
        dst = out / ("superglue" if split == "val" else "fewglue") / "RTE" / f"{split}.jsonl"
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_text("".join(src.read_text().splitlines(keepends=True)[:n]))
    return out


def lama_tree(out, n: int = 5):
    """data/lama with relation P17 only (first n facts of dev and test), its prompts and one vocabulary."""
    src = data_dir() / "lama"
    if not (src / "relations.jsonl").is_file():
        pytest.skip("no prepared LAMA data")
    for rel in ("relations.jsonl", "prompts/lama.jsonl", "vocab/34k/bert-base-cased.txt"):
        (out / "lama" / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src / rel, out / "lama" / rel)
    for split in ("dev", "test"):
        dst = out / "lama/facts/original/P17" / f"{split}.jsonl"
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_text("".join((src / f"facts/original/P17/{split}.jsonl").read_text().splitlines(keepends=True)[:n]))
    return out


def cfg_for(tmp_path, *overrides, data=None):
    base = [f"paths.root={tmp_path}", f"paths.data_dir={data or data_dir()}", f"paths.models_dir={models_dir()}",
            f"paths.results_dir={tmp_path / 'results'}", "device=cpu"]
    with initialize_config_dir(config_dir=str(REPO_ROOT / "conf"), version_base="1.3"):
        return compose(config_name="config", overrides=[*base, *overrides])


RTE = ["task=rte", "model=tiny-bert", "method=pet", "template=pet_rte"]


@pytest.fixture
def no_weights(monkeypatch):
    """Loading weights fails the test: every error must come first."""

    def refuse(*args, **kwargs):
        pytest.fail("weights were loaded before the error")

    monkeypatch.setattr(loading, "load_backbone", refuse)


def fails_early(cfg, error, pattern):
    with pytest.raises(error, match=pattern) as caught:
        execute(cfg)
    return str(caught.value)


# compose time: keys and enumerations ------------------------------------------------------------
def test_misspelled_variant_names_the_allowed_values(tmp_path, no_weights):
    fails_early(cfg_for(tmp_path, *RTE, "task.variant=fewglu"), ConfigError,
                r"task.variant='fewglu' is not allowed; use one of fewglue, superglue")


def test_unknown_schedule_names_the_allowed_values(tmp_path, no_weights):
    fails_early(cfg_for(tmp_path, *RTE, "trainer.schedule=cosine"), ConfigError,
                r"trainer.schedule='cosine' is not allowed; use one of linear, exponential, constant")


def test_added_unknown_key_is_refused_with_the_closest_known_key(tmp_path, no_weights):
    text = fails_early(cfg_for(tmp_path, *RTE, "+trainer.learning_rate=1e-3"), ConfigError,
                       r"unknown config key 'trainer.learning_rate'")
    assert "did you mean trainer.lr?" in text and "fix:" in text
    text = fails_early(cfg_for(tmp_path, *RTE, "+task.varient=superglue"), ConfigError, r"'task.varient'")
    assert "did you mean task.variant?" in text
    with pytest.raises(ConfigError, match=r"method.component.k.*Known keys here: _target_, decoding"):
        validate_config(cfg_for(tmp_path, *RTE, "+method.component.k=8"))


def test_a_refused_config_leaves_a_failure_record_naming_the_reason(tmp_path, no_weights):
    """Inside a study the job's runs then read as failed, with the reason, instead of missing."""
    fails_early(cfg_for(tmp_path, *RTE, "trainer.schedule=cosine"), ConfigError, r"trainer.schedule='cosine'")
    (failure,) = (tmp_path / "results" / "failed").glob("*.json")
    record = json.loads(failure.read_text())
    assert record["spec"]["task"] == "rte" and "trainer.schedule='cosine'" in json.dumps(record)
    assert not (tmp_path / "results" / "runs").exists()


def test_every_shipped_method_and_task_config_passes_validation(tmp_path):
    for task in ("rte", "cb", "copa", "boolq", "lama", "lama29k"):
        for method in sorted(p.stem for p in (REPO_ROOT / "conf/method").glob("*.yaml")):
            validate_config(cfg_for(tmp_path, f"task={task}", f"method={method}", "model=tiny-bert"))
    for debug in ("smoke", "mini"):
        validate_config(cfg_for(tmp_path, *RTE, f"debug={debug}"))


# before weights: device, folders, data, templates, label words -----------------------------------
@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_a_config_error(tmp_path, no_weights):
    fails_early(cfg_for(tmp_path, *RTE, "device=cuda"), ConfigError,
                r"device=cuda but CUDA is not available here .*device=cpu always works")


def test_unwritable_results_folder_fails_before_training(tmp_path, no_weights):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the results folder should be")
    text = fails_early(cfg_for(tmp_path, *RTE, f"paths.results_dir={blocker / 'results'}"), ConfigError,
                       r"results folder .*not-a-folder/results/runs/rte is not writable")
    assert "fix: point paths.results_dir at a writable folder" in text
    assert not (blocker.parent / "results").exists()  # nothing written, no failure record either


def test_missing_data_file_names_the_file_and_the_fix(tmp_path, no_weights):
    data = rte_tree(tmp_path / "data")
    (data / "fewglue/RTE/dev32.jsonl").unlink()
    text = fails_early(cfg_for(tmp_path, *RTE, data=data), DataError, r"fewglue/RTE/dev32.jsonl")
    assert "fix: run `make data`" in text


def test_row_without_a_field_names_file_line_and_field(tmp_path, no_weights):
    data = rte_tree(tmp_path / "data")
    path = data / "superglue/RTE/val.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    del rows[2]["hypothesis"]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    fails_early(cfg_for(tmp_path, *RTE, data=data), DataError,
                r"superglue/RTE/val.jsonl:3 \(field 'hypothesis'\): RTE row has no field 'hypothesis'")


def test_template_field_typo_names_the_template_field_and_available_fields(tmp_path, no_weights):
    text = fails_early(cfg_for(tmp_path, *RTE, "template.texts=null", "+template.text='{hypothesys} ? [SEP] [MASK] , {premise}'"),
                       ConfigError, r"conf/template/pet_rte.yaml .*field\(s\) \['hypothesys'\]")
    assert "available fields: hypothesis, hypothesis_bare, premise" in text and "fix:" in text


def test_template_without_a_target_slot_is_refused(tmp_path, no_weights):
    fails_early(cfg_for(tmp_path, *RTE, "template.texts=null", "+template.text='{hypothesis} ? {premise}'"),
                ConfigError, r"has 0 target slots; it needs exactly one")


def test_multi_token_label_word_is_refused_with_its_tokens_and_the_option(tmp_path, no_weights):
    word = "Thermodynamically"
    cfg = cfg_for(tmp_path, *RTE, f"template.verbalizer.entailment={word}")
    tok = loading.load_tokenizer(OmegaConf.to_container(cfg.model, resolve=True), models_dir())
    tokens = tok.convert_ids_to_tokens(tok(word, add_special_tokens=False)["input_ids"])
    assert len(tokens) > 1
    text = fails_early(cfg, ConfigError, r"method=pet scores one token per label word")
    assert f"label 'entailment' word '{word}' -> {len(tokens)} tokens {tokens}" in text
    assert "method.multi_token=sum_logprob" in text
    preflight(cfg_for(tmp_path, *RTE, f"template.verbalizer.entailment={word}", "method.multi_token=sum_logprob"))


# one source of truth for paths -------------------------------------------------------------------
def test_wrong_data_dir_fails_naming_the_path(tmp_path, no_weights):
    for task in (RTE, ["task=lama", "model=tiny-bert", "method=manual", "template=lama"]):
        fails_early(cfg_for(tmp_path, *task, data=tmp_path / "nowhere"), DataError, str(tmp_path / "nowhere"))
    empty = tmp_path / "empty"
    empty.mkdir()
    fails_early(cfg_for(tmp_path, "task=lama", "model=tiny-bert", "method=manual", "template=lama", data=empty),
                DataError, rf"{empty}/lama/relations.jsonl: LAMA data is not prepared")


def test_lama_and_superglue_read_the_configured_data_dir(tmp_path, tiny_backbone, monkeypatch):
    monkeypatch.setattr(loading, "load_backbone", lambda *a, **k: tiny_backbone("tiny-bert"))
    data = lama_tree(tmp_path / "data")
    rte_tree(data, n=6)
    lama = json.loads(execute(cfg_for(tmp_path, "task=lama", "model=tiny-bert", "method=manual", "template=lama",
                                      "task.relations=[P17]", data=data)).read_text())
    assert lama["extra"]["filter_counts"]["test"]["P17"]["n_file"] == 5  # the copy's 5 facts, not the real 930
    assert lama["config"]["paths"]["data_dir"] == str(data)
    rte = json.loads(execute(cfg_for(tmp_path, "task=rte", "model=tiny-bert", "method=manual", "template=pet_rte",
                                     data=data)).read_text())
    assert rte["extra"]["n_examples"] == {"dev32": 6, "val": 6}
    assert rte["precision"]["compute"] == "fp32" and rte["precision"]["backbone_storage"] == "fp32"


def test_too_little_disk_space_for_the_artifacts_fails_before_weights(tmp_path, no_weights, monkeypatch):
    import bench.checks as checks

    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(checks.shutil, "disk_usage", lambda path: usage._replace(free=10 * 2**20))
    text = fails_early(cfg_for(tmp_path, *RTE), ConfigError, r"has 10 MiB free; this run needs about 64 MiB")
    assert "fix: free disk space" in text
    # LAMA training saves one small state per relation: 41 x 4 bytes x 16 h^2 more (tiny-bert: h = 64)
    fails_early(cfg_for(tmp_path, "task=lama", "model=tiny-bert", "method=ptuning", "template=ptuning_lama"),
                ConfigError, rf"needs about {(64 * 2**20 + 41 * 4 * 16 * 64 * 64) / 2**20:.0f} MiB")


def test_the_write_probe_tolerates_a_parallel_job_in_the_same_new_folder(tmp_path, monkeypatch):
    """Two workers of a pool probe the same new runs/<task> folder: one's clean-up must not fail the other
    (seen in CI: 'not writable (Directory not empty)'), and a folder a worker filled stays."""
    from pathlib import Path

    from bench.checks import check_writable

    folder = tmp_path / "runs" / "lama"
    real_rmdir = Path.rmdir

    def other_job_wrote_first(path):
        if path == folder:
            (folder / "other-job-record.json").write_text("{}")  # the other worker's record lands now
        real_rmdir(path)

    monkeypatch.setattr(Path, "rmdir", other_job_wrote_first)
    check_writable(folder, "results folder")  # no ConfigError
    assert (folder / "other-job-record.json").is_file()
    monkeypatch.setattr(Path, "rmdir", real_rmdir)
    check_writable(tmp_path / "fresh" / "runs", "results folder")
    assert not (tmp_path / "fresh").exists()  # alone, it still leaves no folder behind
