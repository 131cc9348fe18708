"""Benchmarks of SageSaver against a naive per-endpoint scan (``make bench``)."""
