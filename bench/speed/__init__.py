"""``make bench``: speed at the papers' model sizes (random weights), each figure against a baseline in the same run."""
