"""A battle runs only on prompts every roster model can answer: prompts a recorded model
lacks are left out before the limit, and the summary says how many and for whom."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.errors import UserError
from core.parquet_io import write_parquet_atomic
from core.schemas import CONVERSATION, prompt_id
from pipeline.battle.config import BattleConfig
from pipeline.flows.battle import prepare_battle, run_battle

USER = [[{"role": "user", "content": f"Question {n}?"}] for n in range(1, 6)]
TWO_TURNS = [{"role": "user", "content": "Name a colour."}, {"role": "user", "content": "Another?"}]


def _answers(path, conversations):
    """One recorded row per conversation, an answer after each user turn."""
    rows = []
    for conversation in conversations:
        messages = []
        for m in conversation:
            messages += [m, {"role": "assistant", "content": f"Answer to {m['content']}"}]
        rows.append(json.dumps({"messages": messages}))
    path.write_text("\n".join(rows) + "\n")


@pytest.fixture(scope="module")
def arena(tmp_path_factory):
    """Six prompts: both recorded models answer questions 1-3 and the two-turn prompt,
    only `alpha` answers question 4, neither answers question 5. Three more rows hold no
    prompt (null, empty and assistant-only messages) and one repeats question 1."""
    root = tmp_path_factory.mktemp("answerable")
    conversations = [*USER, TWO_TURNS]
    rows = [
        {
            "prompt_id": prompt_id(c),
            "messages": c,
            "source": "test",
            "source_id": None,
            "source_file": "test",
            "source_line": line,
            "metadata": "{}",
        }
        for line, c in enumerate(conversations)
    ]
    nothing = [None, [], [{"role": "assistant", "content": "An answer to nothing."}]]
    rows += [{**rows[0], "prompt_id": f"empty-{i}", "messages": m} for i, m in enumerate(nothing)]
    rows.append(rows[0])
    write_parquet_atomic(
        pa.Table.from_pylist(rows, CONVERSATION), root / "evalset" / "part-0.parquet"
    )
    _answers(root / "alpha.jsonl", [*USER[:4], TWO_TURNS])
    _answers(root / "beta.jsonl", [*USER[:3], TWO_TURNS])
    (root / "roster.yaml").write_text(
        "models:\n"
        f"  - {{name: alpha, backend: recorded, path: '{root / 'alpha.jsonl'}'}}\n"
        f"  - {{name: beta, backend: recorded, path: '{root / 'beta.jsonl'}'}}\n"
        # A recorded judge has no verdicts: its games are judge errors, enough here. It
        # battles only under all-pairs, so it leaves prompts out only there.
        f"  - {{name: judge, backend: recorded, path: '{root / 'alpha.jsonl'}'}}\n"
    )
    return root


def _battle(client, arena, out, **options):
    setup = prepare_battle(
        arena / "roster.yaml",
        BattleConfig(schedule="target", target="alpha", opponents=("beta",), **options),
        judge="judge",
    )
    return run_battle(client, setup, arena / "evalset", out, progress=False)


def _battled(out) -> set[str]:
    return set(pq.read_table(out / "battles", columns=["prompt_id"]).column(0).to_pylist())


def test_prompts_a_model_lacks_are_left_out_before_the_limit(arena, client, tmp_path):
    answered_by_both = sorted(prompt_id(c) for c in [*USER[:3], TWO_TURNS])
    summary = _battle(client, arena, tmp_path / "all")
    assert _battled(tmp_path / "all") == set(answered_by_both)
    assert summary["missing_answer_games"] == 0
    left_out = {"prompts": 2, "of": 6, "by_model": {"alpha": 1, "beta": 2}}
    assert summary["prompts_left_out"] == {**left_out, "no_user_turn": 3, "repeated": 1}
    left_out = summary["prompts_left_out"]
    lines = (tmp_path / "all" / "summary.md").read_text().splitlines()
    assert "- left out 2 of 6 prompts: no recorded answer from alpha (1), beta (2)" in lines
    assert "- left out 3 eval-set rows with no user turn (null or empty messages)" in lines
    assert "- left out 1 eval-set rows repeating a prompt_id" in lines
    assert (
        json.loads((tmp_path / "all" / "summary.json").read_text())["prompts_left_out"] == left_out
    )

    # The limit counts answerable prompts: 3 of them, in prompt_id order.
    limited = _battle(client, arena, tmp_path / "limited", limit=3)
    assert _battled(tmp_path / "limited") == set(answered_by_both[:3])
    assert limited["prompts"] == 3 and limited["missing_answer_games"] == 0


def test_answerable_only_off_battles_every_prompt(arena, client, tmp_path):
    summary = _battle(client, arena, tmp_path / "every", answerable_only=False)
    assert len(_battled(tmp_path / "every")) == 6
    assert summary["prompts_left_out"]["prompts"] == 0
    assert summary["missing_answer_games"] == 2 * 2  # questions 4 and 5, two games each
    assert "left out 2 of" not in (tmp_path / "every" / "summary.md").read_text()


def test_no_prompt_left_is_a_one_line_error(arena, client, tmp_path):
    (tmp_path / "gamma.jsonl").write_text(
        json.dumps(
            {
                "messages": [
                    {"role": "user", "content": "Unasked."},
                    {"role": "assistant", "content": "-"},
                ]
            }
        )
        + "\n"
    )
    roster = tmp_path / "roster.yaml"
    roster.write_text(
        (arena / "roster.yaml").read_text()
        + f"  - {{name: gamma, backend: recorded, path: '{tmp_path / 'gamma.jsonl'}'}}\n"
    )
    setup = prepare_battle(roster, BattleConfig(), judge="judge")
    with pytest.raises(UserError) as error:
        run_battle(client, setup, arena / "evalset", tmp_path / "out", progress=False)
    message = str(error.value)
    assert "no prompt every roster model can answer" in message and "\n" not in message
    assert "alpha (1)" in message and "gamma (6)" in message
    assert not (tmp_path / "out" / "battles").exists()  # nothing ran
