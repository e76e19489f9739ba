"""Progress bars of evaluation loops: a total (hence tqdm's ETA), transient, throttled like LAMA's."""

from __future__ import annotations

from collections.abc import Sized

from tqdm.auto import tqdm


def eval_progress(batches: Sized, desc: str):
    """Iterate ``batches`` under a bar that shows ``done/total`` batches and the ETA; gone when finished."""
    return tqdm(batches, total=len(batches), desc=desc, unit="batch", leave=False, mininterval=2.0)
