"""Backbones: model configs (conf/model/*.yaml) loaded into a model + tokenizer, and family-agnostic scoring."""

from bench.backbones.loading import Backbone, check_model_config, load_backbone, load_model_config

__all__ = ["Backbone", "check_model_config", "load_backbone", "load_model_config"]
