"""Shared fixtures. `tiny_backbone(name)` gives a tiny offline model, built once into bench.paths.models_dir()."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_backbone():
    """Factory: tiny_backbone("tiny-bert") -> Backbone on CPU/fp32, loaded once per session.

    The first call per name builds the model when data/models has no current build (reused across
    sessions). The same object is handed to every test: deep-copy it before training it.
    """
    from bench.backbones import load_backbone, load_model_config

    loaded = {}

    def get(name: str = "tiny-bert"):
        if name not in loaded:
            loaded[name] = load_backbone(load_model_config(name), device="cpu", dtype="fp32")
        return loaded[name]

    return get


@pytest.fixture(scope="session", autouse=True)
def prepared_data():
    """Prepare data/ from the local mirror once per session (a no-op when it is up to date), so a
    clean clone with ../shared beside it tests against the real data instead of skipping."""
    import importlib

    from bench.paths import mirror_dir
    from data_prep import FAMILIES

    if mirror_dir() is None:
        return
    for name in FAMILIES:
        importlib.import_module(f"data_prep.{name}").prepare(None, None, False, quiet=True)


@pytest.fixture(scope="session")
def lama_data():
    """The LAMA relation ids of the prepared data; skips when data/lama is not prepared."""
    from bench.errors import DataError
    from bench.lama.data import relation_ids

    try:
        return relation_ids()
    except DataError as err:
        pytest.skip(f"real LAMA data is not prepared (run `python -m data_prep lama`): {err}")


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny forward passes: one torch thread avoids the sync cost of several on a busy machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
