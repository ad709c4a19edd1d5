"""A structure-aware mutation fuzzer over the spec language (issue 14).

``pytest`` runs a bounded slice of it (tests/fuzz/test_fuzz.py); ``python -m tests.fuzz --cases 100000``
runs a long, supervised campaign that also catches crashes and hangs that would kill a process.
"""
