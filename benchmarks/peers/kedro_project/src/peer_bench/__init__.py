"""Kedro project for the peer benchmarks."""
