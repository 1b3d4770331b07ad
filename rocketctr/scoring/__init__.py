"""Scoring finished runs: exact metrics, evaluate, predict, the frontier and the HTML report."""
