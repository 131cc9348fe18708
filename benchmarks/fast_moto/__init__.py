"""Speed-ups of moto for the benchmarks: the harness, not the product.

At fleet scale (20,000 endpoints) moto's own costs (its routing, method lookups, serializer
and CloudWatch scans) would dwarf what SageSaver spends, so the benchmarks serve from
:class:`benchmarks.fast_moto.simulator.FastSimulator`: the shipped simulator with these
speed-ups, which patch moto's internals and so may break with any moto release.
``benchmarks/tests`` checks each against moto's own answers (``make bench`` runs them first;
``make test-latest`` runs them on the newest moto).
"""
