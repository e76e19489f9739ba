"""LAMA knowledge probing: facts and vocabularies, rendering and scoring, the per-relation runner, baselines."""
