"""Whole jobs as library functions: each takes a Dask client, its inputs and config
dataclasses, runs its stages, and returns what it wrote (a manifest or summary).
The `arena` CLI (jobs/) only parses arguments into these configs, connects, calls
one flow and prints its report; tests and notebooks call flows directly.

ingest       pool files -> canonical conversations
dedup        exact (file shuffle) and near (MinHash) dedup of a conversation folder
evalset      WizardArena Diverse / Hard / Mix from a pool (Recipe)
decontaminate  training pool minus the rows nearest to benchmark items
battle       roster answers, pairwise verdicts, records and summary
ratings      Bradley-Terry leaderboard from battle files (RatingsConfig)
main         `arena run`: all of the above, end to end (MainJobConfig)
"""
