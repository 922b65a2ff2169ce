"""Benchmarks that print figures, run as ``python -m bench.<name>`` from the repository root
(see bench/README.md); not part of the product package."""
