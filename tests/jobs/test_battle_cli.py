"""`arena battle`: an unknown judge, target or anchor, and a roster typo, are one-line errors
before any cluster starts (the arena: tests/battle_arena.py)."""

from __future__ import annotations

import pytest

from jobs.cli import main
from tests.battle_arena import battle_argv, write_arena


@pytest.fixture(scope="module")
def arena(tmp_path_factory, shared_data, tiny_llama):
    return write_arena(tmp_path_factory.mktemp("arena"), shared_data, tiny_llama)


@pytest.mark.parametrize(
    "extra, message",
    [
        (("--judge", "gpt-5"), "judge 'gpt-5' is not in"),
        (("--schedule", "target", "--target", "gpt-5"), "target 'gpt-5' is not in the roster"),
        (("--schedule", "anchor"), "schedule anchor needs --anchor"),
    ],
)
def test_unknown_models_are_clear_errors(arena, capsys, extra, message):
    assert main(battle_argv(arena, "roster3.yaml", *extra)) == 2
    assert message in capsys.readouterr().err


def test_roster_typo_is_a_clear_error(arena, capsys, tmp_path):
    typo = tmp_path / "typo.yaml"
    typo.write_text((arena / "roster3.yaml").read_text().replace("path: '/", "pth: '/", 1))
    argv = battle_argv(arena, "roster3.yaml")
    argv[argv.index("--roster") + 1] = str(typo)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "arena battle: error:" in err and "unknown key 'pth'" in err and "'path'" in err
    assert not (tmp_path / "out").exists()
