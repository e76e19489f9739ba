"""``python -m bench.run`` errors before Hydra (issue 27, Found 1 and 8): misspelled config groups, options and keys
get the closest names; an unwritable results folder and a malformed config YAML give one clear error, no
traceback; a classification task with LAMA's default template names the task's own template."""

import shutil
import subprocess
import sys

import pytest
from hydra import compose, initialize_config_dir

import bench.backbones.loading as loading
import bench.checks
from bench.errors import ConfigError
from bench.paths import REPO_ROOT, data_dir, models_dir
from bench.run import cli, execute


def _error(capsys, args):
    assert cli(args) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_misspelled_option_of_a_group_names_the_closest(capsys):
    err = _error(capsys, ["task=lama", "model=tiny-bret"])
    assert err.startswith("error: no model option 'tiny-bret' in ") and "did you mean tiny-bert" in err


def test_misspelled_option_inside_a_sweep_and_of_the_launcher(capsys):
    assert "did you mean tiny-gpt2" in _error(capsys, ["-m", "model=tiny-bert,tiny-gpt", "task=lama"])
    assert "did you mean local?" in _error(capsys, ["hydra/launcher=lokal"])
    assert "did you mean lama34k_manual" in _error(capsys, ["experiment=lama34k_manul"])


def test_misspelled_group_and_key_names(capsys):
    assert "unknown config key 'tsk'; did you mean task" in _error(capsys, ["tsk=lama"])
    assert "unknown config key 'trainer.lrr'; did you mean lr?" in _error(capsys, ["trainer.lrr=1e-3"])


def test_unwritable_results_folder_is_one_error_before_hydra(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    err = _error(capsys, ["task=lama", "model=tiny-bert", f"paths.results_dir={blocker / 'results'}"])
    assert err.splitlines()[0] == f"error: results folder {blocker / 'results' / 'logs'} is not writable (Not a " \
                                  "directory); the run would be lost at the end."


def test_malformed_config_yaml_names_file_line_and_column(capsys, tmp_path, monkeypatch):
    conf = tmp_path / "conf"
    shutil.copytree(REPO_ROOT / "conf", conf)
    (conf / "trainer" / "broken.yaml").write_text("name: broken\nlr: [1e-3\nbatch_size: 8\n")
    monkeypatch.setattr(bench.checks, "CONF_DIR", conf)
    err = _error(capsys, ["trainer=default"])
    assert err.startswith(f"error: {conf / 'trainer' / 'broken.yaml'}:3:")
    assert "malformed YAML" in err and len(err.splitlines()) == 2  # the error and its fix


def test_the_module_entry_point_prints_one_line_not_hydras_list():
    out = subprocess.run([sys.executable, "-m", "bench.run", "model=tiny-bret"], capture_output=True, text=True,
                         cwd=REPO_ROOT, timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.count("\n") == 1 and "did you mean tiny-bert" in out.stderr


def test_a_classification_task_with_the_lama_template_names_its_own_template(tmp_path, tiny_backbone, monkeypatch):
    tiny_backbone("tiny-albert")  # the preflight reads its tokenizer
    monkeypatch.setattr(loading, "load_backbone", lambda *a, **k: pytest.fail("weights loaded"))
    overrides = [f"paths.root={tmp_path}", f"paths.data_dir={data_dir()}", f"paths.models_dir={models_dir()}",
                 f"paths.results_dir={tmp_path / 'results'}", "device=cpu", "task=cb", "model=tiny-albert",
                 "method=pet", "debug=smoke"]  # the README's old sweep example, without template=
    with initialize_config_dir(config_dir=str(REPO_ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    with pytest.raises(ConfigError, match=r"template=lama is LAMA's per-relation prompt set; task=cb needs one of "
                                          r"its own patterns.\n  fix: add template=pet_cb \(from conf/task/cb.yaml\)"):
        execute(cfg)
