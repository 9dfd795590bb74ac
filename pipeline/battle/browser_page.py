"""The battle browser's page: HTML, CSS and the script that renders it, and the escaping
that puts data into it.

Data travels as JSON inside <script type="application/json"> elements, which the HTML
parser leaves alone except for one thing: `</script` ends the element. `script_json`
therefore writes `<`, `>` and `&` as \\u003c, \\u003e, \\u0026 (and U+2028/2029, which
older JavaScript parsers take for line ends), so no data can end the element or start
markup, and JSON.parse reads the same text back. The script builds every element with
createElement and sets data only through textContent and properties, never innerHTML;
a Content-Security-Policy lets only this script run (by its hash) and nothing load, so
even a mistake there could not run or fetch anything.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math

STYLE = """
:root { --fg: #1d2330; --muted: #5b6473; --line: #d9dee7; --bg: #f6f7f9; --a: #1f5fbf;
  --b: #a4431a; --win: #1b7f3b; --tie: #6b6f78; --err: #b3261e; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 "Liberation Sans", Arial, sans-serif; color: var(--fg);
  background: var(--bg); }
header, main { max-width: 1400px; margin: 0 auto; padding: 12px 20px; }
h1 { font-size: 20px; margin: 4px 0 2px; }
h2 { font-size: 16px; margin: 16px 0 6px; }
.muted { color: var(--muted); }
table.board { border-collapse: collapse; background: #fff; margin: 6px 0; }
table.board th, table.board td { border: 1px solid var(--line); padding: 3px 9px; }
table.board td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.board th { background: #eef1f5; text-align: left; }
.filters { display: flex; flex-wrap: wrap; gap: 8px 14px; align-items: end; background: #fff;
  border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; position: sticky;
  top: 0; z-index: 1; }
.filters label { display: flex; flex-direction: column; font-size: 12px; color: var(--muted); }
.filters label.check { flex-direction: row; gap: 5px; align-items: center; padding-bottom: 4px; }
.filters select, .filters input[type=search] { font: inherit; padding: 3px 5px; min-width: 130px; }
.filters input[type=search] { min-width: 260px; }
.pager { display: flex; gap: 10px; align-items: center; margin: 10px 0; }
.pager button { font: inherit; padding: 3px 12px; }
.battle { background: #fff; border: 1px solid var(--line); border-radius: 6px; margin: 12px 0;
  padding: 10px 14px; }
.battle .head { display: flex; flex-wrap: wrap; gap: 6px 14px; align-items: baseline; }
.battle .pair { font-weight: bold; }
.tag { font-size: 12px; border-radius: 10px; padding: 1px 8px; background: #eef1f5; }
.tag.win { background: #e3f3e8; color: var(--win); }
.tag.tie { color: var(--tie); }
.tag.error { background: #fbe9e7; color: var(--err); }
.tag.disagree { background: #fff3d6; color: #7a5200; }
.turn { margin: 6px 0; }
.role { font-size: 12px; font-weight: bold; color: var(--muted); text-transform: uppercase; }
pre.text { white-space: pre-wrap; word-break: break-word; margin: 2px 0; font: 13px/1.45
  "Liberation Mono", Menlo, monospace; background: var(--bg); padding: 6px 8px;
  border-radius: 4px; max-height: 420px; overflow: auto; }
.answers, .games { display: grid; grid-template-columns: 1fr 1fr; gap: 12px; margin-top: 8px; }
.answer h3, .game h3 { font-size: 14px; margin: 4px 0; }
.answer.a h3 { color: var(--a); }
.answer.b h3 { color: var(--b); }
.game { border-top: 2px solid var(--line); padding-top: 4px; }
.scores { font-variant-numeric: tabular-nums; }
.error-text { color: var(--err); }
details summary { cursor: pointer; color: var(--muted); font-size: 12px; }
"""

BODY = """
<header>
  <h1 id="title"></h1>
  <div id="meta" class="muted"></div>
  <h2>Leaderboard</h2>
  <div id="board"></div>
  <div id="board-notes" class="muted"></div>
</header>
<main>
  <noscript>This page renders its battles with JavaScript; enable it to read them.</noscript>
  <form class="filters" id="filters" autocomplete="off">
    <label>model pair<select id="f-pair"></select></label>
    <label>model<select id="f-model"></select></label>
    <label>outcome<select id="f-outcome"></select></label>
    <label>subset<select id="f-subset"></select></label>
    <label>cluster<select id="f-cluster"></select></label>
    <label class="check"><input type="checkbox" id="f-disagree">the two games disagree</label>
    <label>search prompts, answers, verdicts<input type="search" id="f-q"
      placeholder="text"></label>
  </form>
  <div class="pager"><button id="prev" type="button">previous</button><span id="count"></span>
    <button id="next" type="button">next</button></div>
  <div id="battles"></div>
  <div class="pager"><button id="prev2" type="button">previous</button>
    <button id="next2" type="button">next</button></div>
</main>
"""

SCRIPT = r"""
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const D = JSON.parse($("arena-index").textContent);
  const B = D.battles, P = D.prompts, M = D.models;
  const N = B.p.length;
  const PAGE = D.page_size;
  const OUTCOME = ["model_a", "model_b", "tie", "error"];
  const parsed = new Map();
  const lowered = new Map();

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  // Texts live in chunks, parsed the first time a page or a search needs them.
  function chunk(family, j) {
    const key = family + j;
    if (!parsed.has(key)) parsed.set(key, JSON.parse($("arena-" + family + "-" + j).textContent));
    return parsed.get(key);
  }
  function item(family, i) {
    const starts = D.chunks[family];
    let lo = 0, hi = starts.length - 2;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid] <= i) lo = mid; else hi = mid - 1;
    }
    return chunk(family, lo)[i - starts[lo]];
  }
  function lowerChunk(family, j, flatten) {
    const key = family + j;
    if (!lowered.has(key)) lowered.set(key, chunk(family, j).map((x) => flatten(x).toLowerCase()));
    return lowered.get(key);
  }
  const flat = {
    p: (msgs) => msgs.map((m) => m[1]).join("\n"),
    a: (turns) => turns.join("\n"),
    g: (games) => games.map((g) => g.filter((x) => x !== null).join("\n")).join("\n"),
  };

  // ---- filters --------------------------------------------------------------------------
  const state = { pair: "", model: "", outcome: "", subset: "", cluster: "", disagree: false,
    q: "", page: 0 };
  let hits = null;  // search matches per battle (Uint8Array), null without a query

  function option(select, value, label) {
    const o = el("option", null, label);
    o.value = value;
    select.appendChild(o);
  }
  function fillFilters() {
    const pairs = new Map();
    for (let i = 0; i < N; i++) pairs.set(B.a[i] + "|" + B.b[i], [B.a[i], B.b[i]]);
    const fp = $("f-pair");
    option(fp, "", "every pair");
    for (const [key, [a, b]] of [...pairs].sort()) option(fp, key, M[a] + " vs " + M[b]);
    const fm = $("f-model");
    option(fm, "", "every model");
    M.forEach((name, i) => option(fm, String(i), name));
    const fo = $("f-outcome");
    for (const [v, l] of [["", "any outcome"], ["win", "a model won"], ["tie", "tie"],
                          ["error", "error (no verdict)"]]) option(fo, v, l);
    const fs = $("f-subset");
    option(fs, "", "every subset");
    D.subsets.forEach((name, i) => option(fs, String(i), D.subset_labels[i]));
    fs.disabled = D.subsets.length === 0;
    const fc = $("f-cluster");
    option(fc, "", "every cluster");
    D.clusters.forEach((c) => option(fc, String(c), "cluster " + c));
    fc.disabled = D.clusters.length === 0;
  }
  function readHash() {
    const h = new URLSearchParams(location.hash.slice(1));
    for (const k of ["pair", "model", "outcome", "subset", "cluster", "q"]) state[k] = h.get(k) || "";
    state.disagree = h.get("disagree") === "1";
    state.page = Math.max(0, parseInt(h.get("page") || "1", 10) - 1) || 0;
  }
  function writeHash() {
    const h = new URLSearchParams();
    for (const k of ["pair", "model", "outcome", "subset", "cluster", "q"]) if (state[k]) h.set(k, state[k]);
    if (state.disagree) h.set("disagree", "1");
    if (state.page) h.set("page", String(state.page + 1));
    const text = h.toString();
    history.replaceState(null, "", text ? "#" + text : location.pathname + location.search);
  }
  function showState() {
    for (const k of ["pair", "model", "outcome", "subset", "cluster"]) {
      const select = $("f-" + k);
      select.value = state[k];
      if (select.value !== state[k]) { state[k] = ""; select.value = ""; }
    }
    $("f-disagree").checked = state.disagree;
    $("f-q").value = state.q;
  }

  function search(q) {
    if (!q) { hits = null; return; }
    const started = performance.now();
    const needle = q.toLowerCase();
    const found = {};
    for (const family of ["p", "a", "g"]) {
      const starts = D.chunks[family];
      const mark = new Uint8Array(starts[starts.length - 1]);
      for (let j = 0; j < starts.length - 1; j++) {
        const texts = lowerChunk(family, j, flat[family]);
        for (let k = 0; k < texts.length; k++) if (texts[k].includes(needle)) mark[starts[j] + k] = 1;
      }
      found[family] = mark;
    }
    P.id.forEach((id, i) => { if (id.toLowerCase().includes(needle)) found.p[i] = 1; });
    const named = M.map((m) => m.toLowerCase().includes(needle));
    hits = new Uint8Array(N);
    for (let i = 0; i < N; i++) {
      hits[i] = found.g[i] || found.p[B.p[i]] || (B.ia[i] >= 0 && found.a[B.ia[i]]) ||
        (B.ib[i] >= 0 && found.a[B.ib[i]]) || named[B.a[i]] || named[B.b[i]] ? 1 : 0;
    }
    document.documentElement.dataset.searchMs = (performance.now() - started).toFixed(1);
  }

  function selected() {
    const pair = state.pair ? state.pair.split("|").map(Number) : null;
    const model = state.model === "" ? -1 : Number(state.model);
    const subset = state.subset === "" ? -1 : Number(state.subset);
    const shared = D.shared_subset;  // a prompt in both subsets is in each
    const cluster = state.cluster === "" ? null : Number(state.cluster);
    const out = [];
    for (let i = 0; i < N; i++) {
      if (pair && (B.a[i] !== pair[0] || B.b[i] !== pair[1])) continue;
      if (model >= 0 && B.a[i] !== model && B.b[i] !== model) continue;
      const o = B.o[i];
      if (state.outcome === "win" && o > 1) continue;
      if (state.outcome === "tie" && o !== 2) continue;
      if (state.outcome === "error" && o !== 3) continue;
      if (state.disagree && !B.d[i]) continue;
      if (subset >= 0) {
        const s = P.subset[B.p[i]];
        if (s !== subset && !(s === shared && shared >= 0)) continue;
      }
      if (cluster !== null && P.cluster[B.p[i]] !== cluster) continue;
      if (hits && !hits[i]) continue;
      out.push(i);
    }
    return out;
  }

  // ---- rendering ------------------------------------------------------------------------
  function signed(x) { return (x < 0 ? "" : "+") + x.toFixed(1); }
  function fmt(x) { return x === null || x === undefined ? "-" : String(Math.round(x * 100) / 100); }

  function renderBoard() {
    const L = D.leaderboard;
    const box = $("board");
    if (!L) { box.appendChild(el("p", "muted", D.leaderboard_note)); return; }
    const table = el("table", "board");
    const head = el("tr");
    for (const h of ["rank", "model", ...L.columns.map((c) => L.labels[c] + " (95% CI)"), "battles"])
      head.appendChild(el("th", null, h));
    table.appendChild(head);
    const whole = L.columns[L.columns.length - 1];
    for (const row of L.rows) {
      const tr = el("tr");
      const mine = row.cells[whole];
      tr.appendChild(el("td", "num", mine ? mine.rank : "-"));
      tr.appendChild(el("td", null, row.model));
      for (const c of L.columns) {
        const cell = row.cells[c];
        tr.appendChild(el("td", "num", cell ? cell.rating.toFixed(1) + " (" +
          signed(cell.lower - cell.rating) + " / " + signed(cell.upper - cell.rating) + ")" : "-"));
      }
      tr.appendChild(el("td", "num", mine ? mine.battles : "-"));
      table.appendChild(tr);
    }
    const counts = el("tr");
    counts.appendChild(el("td"));
    counts.appendChild(el("td", "muted", "battles counted"));
    for (const c of L.columns) counts.appendChild(el("td", "num muted", L.battles[c]));
    counts.appendChild(el("td"));
    table.appendChild(counts);
    box.appendChild(table);
    const notes = $("board-notes");
    notes.textContent = L.note;
    for (const w of L.warnings) notes.appendChild(el("div", null, "warning: " + w));
  }

  function texts(parent, label, cls, list) {
    const box = el("div", cls);
    box.appendChild(el("h3", null, label));
    if (!list) { box.appendChild(el("div", "error-text", "no answer")); parent.appendChild(box); return; }
    list.forEach((text, t) => {
      const turn = el("div", "turn");
      if (list.length > 1) turn.appendChild(el("div", "role", "turn " + (t + 1)));
      turn.appendChild(el("pre", "text", text));
      box.appendChild(turn);
    });
    parent.appendChild(box);
  }

  function game(i, g, detail) {
    const a = M[B.a[i]], b = M[B.b[i]];
    const first = g === 0 ? a : b, second = g === 0 ? b : a;
    const box = el("div", "game");
    box.appendChild(el("h3", null, "Game " + (g + 1) + ": " + first + " shown as answer A, " +
      second + " as B"));
    const sa = B.s[4 * i + 2 * g], sb = B.s[4 * i + 2 * g + 1];
    const w = B.w[2 * i + g];
    const verdict = w === 3 ? "no verdict" : w === 2 ? "tie" : (w === 0 ? a : b) + " wins";
    box.appendChild(el("div", "scores", "score " + a + ": " + fmt(sa) + "/10, " + b + ": " +
      fmt(sb) + "/10 -> " + verdict));
    const [explanation, raw, error] = detail || [null, null, null];
    if (error) box.appendChild(el("div", "error-text", "error: " + error));
    if (explanation) box.appendChild(el("p", "explanation", explanation));
    if (raw !== null && raw !== undefined) {
      const more = el("details");
      more.appendChild(el("summary", null, "the judge's raw reply"));
      more.appendChild(el("pre", "text raw", raw));
      box.appendChild(more);
    }
    return box;
  }

  function battle(i) {
    const a = M[B.a[i]], b = M[B.b[i]];
    const p = B.p[i];
    const box = el("section", "battle");
    box.dataset.battle = String(i);
    const head = el("div", "head");
    head.appendChild(el("span", "pair", a + " vs " + b));
    const o = B.o[i];
    const totals = B.s[4 * i] === null ? "" : " (" + fmt(B.s[4 * i] + B.s[4 * i + 2]) + " to " +
      fmt(B.s[4 * i + 1] + B.s[4 * i + 3]) + " over both games)";
    const outcome = o === 3 ? "error" : o === 2 ? "tie" + totals : (o === 0 ? a : b) + " wins" + totals;
    head.appendChild(el("span", "tag " + (o === 3 ? "error" : o === 2 ? "tie" : "win"), outcome));
    if (B.d[i]) head.appendChild(el("span", "tag disagree", "the two games disagree"));
    const s = P.subset[p];
    if (s >= 0) head.appendChild(el("span", "tag", D.subsets[s]));
    if (P.cluster[p] !== null) head.appendChild(el("span", "tag", "cluster " + P.cluster[p]));
    head.appendChild(el("span", "muted", "prompt " + P.id[p]));
    box.appendChild(head);
    if (B.e[i]) box.appendChild(el("div", "error-text", B.e[i]));
    const prompt = el("div", "prompt");
    for (const [role, content] of item("p", p)) {
      const turn = el("div", "turn");
      turn.appendChild(el("div", "role", role));
      turn.appendChild(el("pre", "text", content));
      prompt.appendChild(turn);
    }
    box.appendChild(prompt);
    const answers = el("div", "answers");
    texts(answers, a, "answer a", B.ia[i] >= 0 ? item("a", B.ia[i]) : null);
    texts(answers, b, "answer b", B.ib[i] >= 0 ? item("a", B.ib[i]) : null);
    box.appendChild(answers);
    const details = item("g", i);
    const games = el("div", "games");
    games.appendChild(game(i, 0, details[0]));
    games.appendChild(game(i, 1, details[1]));
    box.appendChild(games);
    return box;
  }

  function render() {
    const chosen = selected();
    const pages = Math.max(1, Math.ceil(chosen.length / PAGE));
    state.page = Math.min(state.page, pages - 1);
    const start = state.page * PAGE;
    const list = $("battles");
    list.replaceChildren();
    for (const i of chosen.slice(start, start + PAGE)) list.appendChild(battle(i));
    $("count").textContent = chosen.length + " of " + N + " battles" + (chosen.length ?
      ", " + (start + 1) + "-" + Math.min(start + PAGE, chosen.length) + " shown (page " +
      (state.page + 1) + " of " + pages + ")" : "");
    for (const id of ["prev", "prev2"]) $(id).disabled = state.page === 0;
    for (const id of ["next", "next2"]) $(id).disabled = state.page >= pages - 1;
    document.documentElement.dataset.shown = String(chosen.length);
    writeHash();
  }

  function changed() { state.page = 0; render(); }
  $("filters").addEventListener("submit", (ev) => ev.preventDefault());
  for (const k of ["pair", "model", "outcome", "subset", "cluster"]) {
    $("f-" + k).addEventListener("change", (ev) => { state[k] = ev.target.value; changed(); });
  }
  $("f-disagree").addEventListener("change", (ev) => { state.disagree = ev.target.checked; changed(); });
  let typing = null;
  $("f-q").addEventListener("input", (ev) => {
    clearTimeout(typing);
    typing = setTimeout(() => { state.q = ev.target.value.trim(); search(state.q); changed(); }, 200);
  });
  const step = (by) => () => { state.page += by; render(); window.scrollTo(0, $("filters").offsetTop); };
  $("prev").addEventListener("click", step(-1));
  $("prev2").addEventListener("click", step(-1));
  $("next").addEventListener("click", step(1));
  $("next2").addEventListener("click", step(1));

  $("title").textContent = D.title;
  $("meta").textContent = D.meta;
  document.title = D.title;
  renderBoard();
  fillFilters();
  readHash();
  showState();
  search(state.q);
  render();
  // Read by the tests and bench.battle_browser: milliseconds from navigation to this page.
  document.documentElement.dataset.ready = performance.now().toFixed(1);
})();
"""


def _finite(value):
    """NaN and infinities as null: JSON has no spelling for them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def script_json(value) -> str:
    """`value` as JSON that is safe inside <script type="application/json">: no `<`, `>` or
    `&` (so nothing can close the element or open markup) and no U+2028/2029."""
    text = json.dumps(_finite(value), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for char, escaped in (
        ("&", "\\u0026"),
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escaped)
    return text


def render_page(index: dict, chunks: dict[str, list[str]]) -> str:
    """The whole page. `index`: the small JSON the script reads first; `chunks`: family ->
    JSON texts (script_json) of each chunk, parsed only when needed."""
    digest = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
    policy = (
        f"default-src 'none'; script-src 'sha256-{digest}'; style-src 'unsafe-inline';"
        " base-uri 'none'; form-action 'none'"
    )
    parts = [
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8>",
        f'<meta http-equiv="Content-Security-Policy" content="{policy}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>Battles</title>",
        f"<style>{STYLE}</style></head><body>",
        BODY,
        f'<script type="application/json" id="arena-index">{script_json(index)}</script>\n',
    ]
    for family, texts in chunks.items():
        for j, text in enumerate(texts):
            parts.append(
                f'<script type="application/json" id="arena-{family}-{j}">{text}</script>\n'
            )
    parts.append(f"<script>{SCRIPT}</script>\n</body></html>\n")
    return "".join(parts)
