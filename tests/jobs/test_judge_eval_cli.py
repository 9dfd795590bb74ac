"""`arena judge-eval`: a user mistake is one line (exit 2), before any cluster starts."""

from jobs.cli import main


def test_missing_pairs_file_is_a_one_line_error(tmp_path, capsys):
    missing = tmp_path / "missing.jsonl"
    assert main(["judge-eval", str(missing), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"arena judge-eval: error: {missing}: no such file"]
    assert not (tmp_path / "out").exists()


def test_unknown_judge_is_a_one_line_error(tmp_path, capsys, shared_data):
    pairs = shared_data / "judging" / "llmfao_pairs_dev.jsonl"
    argv = ["judge-eval", str(pairs), "--out", str(tmp_path / "o"), "--judge", "gpt-9"]
    assert main(argv) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("arena judge-eval: error: --judge 'gpt-9' is not in roster judges")


def test_the_reported_command_parses_back_to_the_same_config():
    import shlex

    from jobs.cli import build_parser
    from jobs.options import config_from_args
    from pipeline.flows.judge_eval import JudgeEvalConfig, command_line

    config = JudgeEvalConfig(limit=5, expected_scores=False, recorded=("a.jsonl", "b.jsonl"))
    line = command_line("p.jsonl", "out", config)
    assert line == (
        "arena judge-eval p.jsonl --out out --no-expected-scores"
        " --recorded a.jsonl --recorded b.jsonl --limit 5"
    )
    args = build_parser("judge-eval").parse_args(shlex.split(line)[1:])
    assert (args.pairs, args.out) == ("p.jsonl", "out")
    assert config_from_args(JudgeEvalConfig, args) == config
