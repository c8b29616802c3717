"""Benchmarks of the fake: ``python -m bench`` runs it beside a bare Starlette floor."""
