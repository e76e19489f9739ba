"""Tuning methods, one module each, selected by ``method=`` (conf/method/<name>.yaml ``_target_``)."""
