"""Evaluation: metrics on uint8 RGB (``metrics``), scoring folders (``runner``), reports (``report``)."""
