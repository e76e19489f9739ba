"""LM-BFF (Gao, Fisch, Chen 2021): k-shot SST-2 / SNLI splits, similarity-filtered demonstrations, runner."""
