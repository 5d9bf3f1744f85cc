"""Evaluation: frame metrics and the papers' reenactment protocols."""
