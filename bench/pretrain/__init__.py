"""The offline mini-world: small masked / causal LMs pretrained on the LAMA T-REx evidence sentences.

``python -m bench.pretrain mini-bert`` builds one model from ``conf/model/mini-bert.yaml`` (whose
``build:`` names a ``conf/pretrain/*.yaml`` recipe); ``bench.pretrain.publish.ensure_built`` builds on
first use. See docs/mini-world.md for what these models are (and are not).
"""
