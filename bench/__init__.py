"""Benchmark reproduction suite for prompt-based adaptation of pretrained language models."""

__version__ = "0.1.0"
