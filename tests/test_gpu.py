"""CUDA paths CI never reaches (issue 27, Found 11): bf16 storage of a frozen backbone, bf16 autocast with fp32
masters for a trained method, and one study smoke run on the GPU. ``make test-gpu`` runs these and the fp16
grad-scaler test of tests/test_precision.py; without CUDA they skip."""

import json

import pytest
import torch
from hydra import compose, initialize_config_dir

from bench.paths import REPO_ROOT, data_dir, models_dir

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (make test-gpu)")
CUDA = torch.device("cuda")


def _run(tmp_path, *overrides):
    from bench.run import execute

    base = [f"paths.root={REPO_ROOT}", f"paths.data_dir={data_dir()}", f"paths.models_dir={models_dir()}",
            f"paths.results_dir={tmp_path / 'results'}", "device=cuda", "task=lama", "model=tiny-bert",
            "debug=smoke", "task.relations=[P17]"]
    with initialize_config_dir(config_dir=str(REPO_ROOT / "conf"), version_base="1.3"):
        return json.loads(execute(compose(config_name="config", overrides=[*base, *overrides])).read_text())


def test_a_frozen_backbone_is_stored_in_bf16_on_the_gpu(tiny_backbone):
    from bench.backbones import load_backbone, load_model_config
    from bench.precision import resolve_precision

    tiny_backbone("tiny-bert")
    policy = resolve_precision(CUDA, "bf16", "auto", tunes_backbone=False, trains=True)
    frozen = load_backbone(load_model_config("tiny-bert"), device=CUDA, precision=policy)
    assert {(p.dtype, p.device.type) for p in frozen.model.parameters()} == {(torch.bfloat16, "cuda")}


def test_manual_probing_on_cuda_in_bf16_and_fp32_records_its_precision(tmp_path, tiny_backbone, lama_data):
    tiny_backbone("tiny-bert")
    bf16 = _run(tmp_path / "bf16", "method=manual", "template=lama", "dtype=bf16")
    assert bf16["precision"]["compute"] == "bf16" and bf16["precision"]["backbone_storage"] == "bf16"
    assert bf16["precision"]["device"].startswith("cuda")
    fp32 = _run(tmp_path / "fp32", "method=manual", "template=lama", "dtype=fp32")
    assert fp32["precision"]["compute"] == "fp32" and not fp32["precision"]["autocast"]
    assert fp32["metrics"]["test"]["groups"]["P17"]["n"] == bf16["metrics"]["test"]["groups"]["P17"]["n"] > 0


def test_ptuning_trains_on_cuda_with_fp32_masters_under_bf16_autocast(tmp_path, tiny_backbone, lama_data):
    tiny_backbone("tiny-bert")
    record = _run(tmp_path, "method=ptuning", "template=ptuning_lama", "dtype=bf16")
    assert record["precision"]["trained_parameters"] == "fp32" and record["precision"]["autocast"]
    assert record["status"] == "finished"


def test_one_study_smoke_run_on_the_gpu(tmp_path, tiny_backbone, lama_data):
    from bench.study import main

    tiny_backbone("tiny-bert")
    code = main(["run", "lama", "--models", "tiny-bert", "--presets", "lama34k_manual", "task.relations=[P17]",
                 f"paths.results_dir={tmp_path}"])
    assert code == 0
    records = [json.loads(p.read_text()) for p in (tmp_path / "runs").rglob("*.json")]
    assert records and all(r["precision"]["device"].startswith("cuda") for r in records)
