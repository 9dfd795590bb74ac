"""Defaults that more than one config needs, named once. Every other default lives on
its config dataclass, and the CLI flags are generated from those (jobs/options.py)."""

EMBED_MODEL = "builtin:all-minilm-l6-v2"  # any sentence-transformers folder; gte-large in the paper
JUDGE_SEES_CHARS = 4000  # what a judge sees of each answer, or of an instruction it grades
MAX_CONVERSATION_CHARS = 200_000  # a longer pool row is quarantined
JUDGE_ROSTER = "judges"  # the packaged roster of judges
JUDGE = "smollm2-judge"  # the pairwise judge of battles, flywheel and judge-eval
