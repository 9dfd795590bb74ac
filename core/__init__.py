"""The floor of the house: what every layer above shares and nothing here imports from above.

errors (UserError), schemas and ids, Parquet I/O, hashing, the Stage contract and
its runner, the one submit helper every path uses, and the worker-side model cache.
"""
