"""The battle browser (RUN/browser.html) in Debian's headless Chromium: answers and prompts
that carry hostile HTML and JavaScript are battled for real (recorded answers, the tiny
Llama judging in the enforced format on the test cluster), and the page they land in
shows them as text: nothing in them runs, loads or becomes an element."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from bench.headless_chromium import INSTALL, SCREENSHOTS, Chromium, find_chromium
from core.parquet_io import write_parquet_atomic
from core.schemas import CONVERSATION, prompt_id
from pipeline.battle.browser_page import script_json
from pipeline.battle.config import BattleConfig
from pipeline.flows.battle import prepare_battle, run_battle

# Each would run, load or make an element if the page put it into markup.
HOSTILE = [
    "<script>window.__pwned = 'script'</script>",
    "<img src=x onerror=\"window.__pwned = 'img'\">",
    "</script><script>window.__pwned = 'closed'</script>",
    "<svg onload=\"window.__pwned = 'svg'\"></svg>",
    '<a href="javascript:window.__pwned=1">a link</a> <iframe src="https://example.com">',
    "<!-- <script>window.__pwned = 'comment'</script> -->",
    "&lt;b&gt;an entity, not bold&lt;/b&gt; & \u2028 line separator \u2029",
]
TWO_TURNS = [
    {"role": "user", "content": "First turn: " + HOSTILE[0]},
    {"role": "user", "content": "Second turn: " + HOSTILE[1]},
]
ONE_TURN = [{"role": "user", "content": "Repeat this: " + " ".join(HOSTILE)}]


def _recorded(path, name: str) -> None:
    """Recorded answers of `name`: hostile text after every user turn of both prompts."""
    rows = []
    for conversation in (ONE_TURN, TWO_TURNS):
        messages = []
        for n, turn in enumerate(conversation):
            answer = f"{name} answers turn {n + 1}: " + " ".join(HOSTILE)
            messages += [turn, {"role": "assistant", "content": answer}]
        rows.append(json.dumps({"messages": messages}))
    path.write_text("\n".join(rows) + "\n")


@pytest.fixture(scope="module")
def chromium():
    if find_chromium() is None:
        pytest.fail(f"the browser tests need Debian's Chromium: {INSTALL}")
    with Chromium() as browser:
        yield browser


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory, tiny_llama, client):
    """A battle of two recorded models whose answers (and the prompts) are hostile, on a
    Mix-like eval set (subset and cluster columns), judged by the tiny Llama."""
    root = tmp_path_factory.mktemp("hostile")
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
        for line, c in enumerate((ONE_TURN, TWO_TURNS))
    ]
    table = pa.Table.from_pylist(rows, CONVERSATION)
    table = table.append_column("subset", pa.array(["diverse", "hard"]))
    table = table.append_column("cluster", pa.array([3, 7], pa.int32()))
    write_parquet_atomic(table, root / "evalset" / "part-0.parquet")
    _recorded(root / "evil.jsonl", "evil")
    _recorded(root / "worse.jsonl", "worse")
    (root / "roster.yaml").write_text(
        "models:\n"
        f"  - {{name: evil, backend: recorded, path: '{root / 'evil.jsonl'}'}}\n"
        f"  - {{name: worse, backend: recorded, path: '{root / 'worse.jsonl'}'}}\n"
    )
    (root / "judges.yaml").write_text(
        f"models:\n  - {{name: tiny-judge, backend: transformers, path: '{tiny_llama}',"
        " sampling: {max_tokens: 200}}\n"
    )
    setup = prepare_battle(
        root / "roster.yaml",
        BattleConfig(max_answer_chars=300, judge_retries=1),
        judge="tiny-judge",
        judge_roster=root / "judges.yaml",
    )
    summary = run_battle(client, setup, root / "evalset", root / "out", progress=False)
    return root / "out", summary


def test_script_json_cannot_close_its_element_and_reads_back():
    value = {"text": HOSTILE, "nan": float("nan")}
    text = script_json(value)
    for forbidden in ("<", ">", "&", "\u2028", "\u2029"):
        assert forbidden not in text
    assert json.loads(text) == {"text": HOSTILE, "nan": None}


@pytest.mark.slow
def test_hostile_answers_show_as_text_and_nothing_runs(hostile_run, chromium):
    out, summary = hostile_run
    assert summary["battles"] == 4  # 2 prompts x 1 pair x 2 games
    page_file = out / "browser.html"
    html = page_file.read_text(encoding="utf-8")
    # The data is in the page, but never as markup: no tag of it survives in the file.
    for tag in ("<img", "<svg", "<iframe", "<a ", "window.__pwned = 'closed'</script>"):
        assert tag not in html, tag
    page = chromium.open(page_file.as_uri())
    page.wait_for("document.documentElement.dataset.ready")
    assert page.evaluate("typeof window.__pwned") == "undefined"
    # Our page makes no images, frames, links or SVG; its only scripts are its own.
    assert page.evaluate("document.querySelectorAll('img, svg, iframe, a').length") == 0
    scripts = page.evaluate(
        "[...document.scripts].map((s) => s.type || 'js').filter((t) => t !== 'application/json')"
    )
    assert scripts == ["js"]
    assert page.problems() == []  # no error, and no script the page's policy had to refuse

    text = page.evaluate("document.body.innerText")
    for hostile in HOSTILE[:-1]:
        assert hostile in text, hostile
    assert "&lt;b&gt;an entity, not bold&lt;/b&gt; &" in text  # shown as written, not decoded
    # Both models' answers, every turn of the two-turn prompt, both games of each battle.
    for shown in (
        "evil answers turn 2: ",
        "worse answers turn 2: ",
        "First turn: ",
        "Second turn: ",
    ):
        assert shown in text, shown
    assert page.evaluate("document.querySelectorAll('section.battle').length") == 2
    assert page.evaluate("document.querySelectorAll('.game').length") == 4
    assert "evil" in page.evaluate("document.getElementById('board').innerText")

    # Searching for the hostile text finds it as text; a subset filter keeps its prompt.
    page.evaluate("document.getElementById('f-q').focus()")
    page.type_text("onerror")
    page.wait_for("document.documentElement.dataset.searchMs")
    assert page.evaluate("document.getElementById('count').textContent").startswith("2 of 2")
    page.evaluate(
        """(() => { const s = document.getElementById("f-subset");
        s.value = [...s.options].find((o) => o.text === "hard").value;
        s.dispatchEvent(new Event("change")); })()"""
    )
    assert page.evaluate("document.getElementById('count').textContent").startswith("1 of 2")
    assert page.evaluate("location.hash").startswith("#subset=")
    assert "Second turn: " in page.evaluate("document.getElementById('battles').innerText")
    assert page.evaluate("typeof window.__pwned") == "undefined"
    page.screenshot(SCREENSHOTS / "hostile-answers.png")
    assert page.problems() == []
