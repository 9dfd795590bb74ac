"""Judge agreement with people: an LLM judge on answer pairs the crowd has labelled.

pairs.py    the labelled pairs (checked, bad rows quarantined), the human label,
            recorded verdicts of other judges
metrics.py  agreement with and without ties, position consistency, tie rate,
            longer-answer wins, parse errors: pure functions over per-pair verdicts
table.py    the report's rows: the judge's games and recorded verdicts beside the pairs
run.py      the judge's two games per pair on the cluster, cached per game
report.py   report.md, judge_eval.json, agreement.png
"""
