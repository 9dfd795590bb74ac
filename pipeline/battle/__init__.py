"""Battles: answers (cached) -> pairwise judge, two games per pair -> battle records.

schedule.py  which pairs meet on which prompt
prompts.py   the eval set's prompts, as the models and the judge see them
answers.py   the answer task: one model, a chunk of prompts, answers into the cache
judging.py   the judge task: a chunk of games, verdicts into the cache
combine.py   game winners, the two-game rule, inconsistency
records.py   battle records and the combined per-pair table, from the caches
summary.py   counts, win matrix, errors, tokens, speed
cost.py      what a run cost per stage and model: tokens, seconds, cache hits
browser.py   browser.html: every battle to read, with the leaderboard (page: browser_page.py)
run.py       the order of it all on a client
"""
