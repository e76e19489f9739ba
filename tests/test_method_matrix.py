"""Every method x every tiny family x {LAMA, a SuperGLUE task}: one training step and one evaluation
through the Hydra app, or a clear ConfigError before any weights load where the pair cannot work."""

import json

import pytest
from hydra import compose, initialize_config_dir

from bench.errors import ConfigError
from bench.paths import REPO_ROOT
from bench.run import execute

FAMILIES = ["tiny-bert", "tiny-roberta", "tiny-albert", "tiny-gpt2", "tiny-t5"]
METHODS = ["manual", "finetune", "pet", "icl", "prompt_tuning", "ptuning", "prefix_tuning", "ptuning_v2"]
TRAINS = {"finetune", "pet", "prompt_tuning", "ptuning", "prefix_tuning", "ptuning_v2"}
# LAMA's target is open-vocabulary: a classifier head cannot score it; ICL demonstrations exist for classification only
UNSUPPORTED = {("lama", "finetune"): "classifier head", ("lama", "icl"): "not implemented for LAMA"}


def _overrides(task: str, model: str, method: str, results) -> list[str]:
    common = [f"model={model}", f"method={method}", f"paths.results_dir={results}", f"paths.root={REPO_ROOT}",
              "trainer.max_steps=1", "trainer.max_epochs=1", "trainer.batch_size=2", "seed=1"]
    if task == "lama":
        template = "ptuning_lama" if method == "ptuning" else "lama"
        return [*common, "task=lama", "task.relations=[P19]", "task.limit_per_relation=4", f"template={template}"]
    template = "ptuning_rte" if method == "ptuning" else ("gpt3_rte" if model == "tiny-gpt2" else "pet_rte")
    return [*common, "task=rte", "task.limit=4", f"template={template}"]


@pytest.mark.slow
@pytest.mark.parametrize("task", ["lama", "rte"])
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("model", FAMILIES)
def test_method_runs_or_refuses_clearly(task, method, model, tmp_path, tiny_backbone, monkeypatch):
    tiny_backbone(model)  # built once per session
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with initialize_config_dir(config_dir=str(REPO_ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="config", overrides=_overrides(task, model, method, tmp_path))
    if (task, method) in UNSUPPORTED:
        with pytest.raises(ConfigError, match=UNSUPPORTED[(task, method)]):
            execute(cfg)
        assert not (tmp_path / "runs").exists()
        return
    record = json.loads(execute(cfg).read_text())
    assert record["spec"]["method"] == method and record["spec"]["model"] == model
    assert record["report_split"] in record["metrics"] and record["selection_split"] != record["report_split"]
    trainable = record["params"]["trainable"]
    assert (trainable > 0) == (method in TRAINS)
    if method in TRAINS - {"finetune", "pet"}:  # frozen backbone: only the method's own modules train
        assert trainable == record["params"]["method_modules"]
