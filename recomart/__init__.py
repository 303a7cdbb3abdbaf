"""RecoMart's top floor: the `recomart` command (cli), the pipeline runner (pipeline), reproduce,
summary, the demo generator and embedded catalog API (demo/) and the benchmarks (bench/).

It may import every floor below it; none imports it. The floors, one folder each in the order the
data flows, are the table in the README's "Where things are" (tests/test_layers.py reads it).
Importing a module changes nothing.
"""
