"""Parity by execution: a reference implementation's own code run beside the suite on the same inputs.

Layout (docs/parity.md):

- ``bench/parity/refenv.py``: the reference's own virtual environment (its pinned Python and
  libraries, built from the package registries) and the check that the checkout the user passes
  (``--ref /path/to/checkout``) is at the commit the goldens were made from.
- ``bench/parity/<study>_ref.py``: a script run *inside the reference's environment*; it imports
  only the reference's code (from the checkout, never copied here) and writes what that code
  produced (token ids, losses, logits) as JSON. It must not import ``bench``.
- ``bench/parity/<study>.py``: the suite's side and the ``python -m bench.parity <study>`` entry
  that regenerates ``tests/golden/parity/<study>/`` (facts: numbers and ids, never the
  reference's code or sentences).
- ``tests/parity/test_<study>.py``: CI compares the suite with the committed golden files; the
  reference is not needed there.
"""
