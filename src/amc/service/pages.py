"""The service's web pages: server-rendered HTML with inline SVG charts (no scripts from
elsewhere, no build step). The list refreshes itself every few seconds."""

from __future__ import annotations

import html
import json
from typing import Any

__all__ = ["index", "detail", "line_chart", "bar_chart"]

STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem;color:#222}
table{border-collapse:collapse;width:100%}td,th{padding:.35rem .6rem;border-bottom:1px solid #ddd;text-align:left}
.bar{background:#eee;width:10rem;height:.8rem;display:inline-block}.fill{background:#3a7;height:100%}
.queued{color:#888}.running{color:#06c}.done{color:#292}.failed{color:#c22}.cancelled{color:#a60}
form input,form select{margin:.2rem .6rem .2rem 0}pre{background:#f6f6f6;padding:1rem;overflow:auto;max-height:24rem}
"""

FORM = """
<h2>Submit a search</h2>
<form id="f">model <input name="model" value="resnet56" size="12">
MACs budget <input name="flops" value="0.5" size="4">
method <select name="method"><option>ddpg</option><option>optuna</option><option>random</option>
<option>uniform</option><option>global</option><option>sensitivity</option></select>
episodes <input name="episodes" value="400" size="5"> seed <input name="seed" value="0" size="3">
<button>submit</button> <span id="msg"></span></form>
<script>
document.getElementById('f').onsubmit = async (e) => {
  e.preventDefault();
  const body = Object.fromEntries(new FormData(e.target));
  const r = await fetch('/searches', {method: 'POST', headers: {'Content-Type': 'application/json'},
                                      body: JSON.stringify(body)});
  const j = await r.json();
  document.getElementById('msg').textContent = r.ok ? 'queued ' + j.id : j.detail;
  if (r.ok) setTimeout(() => location.reload(), 500);
};
</script>
"""


def _page(title: str, body: str, refresh: bool = False) -> str:
    meta = '<meta http-equiv="refresh" content="5">' if refresh else ""
    return (f"<!doctype html><html><head><meta charset='utf-8'>{meta}<title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>{body}</body></html>")  # fmt: skip


def _pct(x: Any) -> str:
    return f"{100 * x:.2f}%" if isinstance(x, (int, float)) else "-"


def index(searches: list[dict[str, Any]]) -> str:
    rows = []
    for s in searches:
        best = s["best"] or {}
        req = s["request"]
        budget = (
            f"MACs {req['flops']}" if "flops" in req else (f"params {req['params']}" if "params" in req else "MACs 0.5")
        )
        rows.append(
            f"<tr><td><a href='/ui/searches/{s['id']}'>{s['id']}</a></td><td>{html.escape(str(s['model']))}</td>"
            f"<td>{html.escape(str(s['method']))}</td><td>{budget}</td><td class='{s['status']}'>{s['status']}</td>"
            f"<td><span class='bar'><span class='fill' style='display:block;width:{100 * s['progress']:.0f}%'></span>"
            f"</span> {s['completed']}/{s['episodes']}</td><td>{_pct(best.get('accuracy'))}</td>"
            f"<td>{html.escape(s['error'] or '')}</td></tr>"
        )
    heads = ("search", "model", "method", "budget", "status", "progress", "best held-out proxy", "error")
    table = "<table><tr>" + "".join(f"<th>{h}</th>" for h in heads) + "</tr>" + "".join(rows) + "</table>"
    body = f"<h1>amc searches</h1>{table if rows else '<p>No searches yet.</p>'}{FORM}"
    body += "<p><a href='/docs'>API docs</a></p>"
    return _page("amc searches", body, refresh=any(s["status"] in ("queued", "running") for s in searches))


def detail(search: dict[str, Any], trials: list[dict[str, Any]], policy: dict[str, Any] | None) -> str:
    best = search["best"] or {}
    head = (f"<p><a href='/'>all searches</a></p><h1>search {search['id']}: {html.escape(str(search['model']))}, "
            f"{html.escape(str(search['method']))}</h1><p class='{search['status']}'>{search['status']}: "
            f"{search['completed']}/{search['episodes']} policies evaluated, best held-out proxy accuracy "
            f"{_pct(best.get('accuracy'))} at {best.get('macs_ratio') or 0:.3f} of the MACs</p>")  # fmt: skip
    rewards = [float(t["reward"]) for t in trials]
    best_so_far = [max(rewards[: i + 1]) for i in range(len(rewards))]
    curve = line_chart(
        {"episode reward": rewards, "best so far": best_so_far},
        "search curve (episode reward: -error, or -loss with --reward loss)",
    )
    names = list((policy or {}).get("sparsity", {}))
    values = list((policy or {}).get("sparsity", {}).values()) or list(best.get("sparsity") or [])
    bars = bar_chart(values, names or [str(i) for i in range(len(values))], "sparsity per unit (best policy)")
    shown = json.dumps(policy, indent=2) if policy else "(the policy is written when the search is done)"
    body = f"{head}{curve}{bars}<h2>policy</h2><pre>{html.escape(shown)}</pre>"
    return _page(f"amc search {search['id']}", body, refresh=search["status"] in ("queued", "running"))


def line_chart(series: dict[str, list[float]], title: str, width: int = 640, height: int = 240) -> str:
    values = [v for s in series.values() for v in s]
    if not values:
        return f"<h2>{html.escape(title)}</h2><p>No episodes yet.</p>"
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    n = max(len(s) for s in series.values())
    colours = ("#9bb", "#c33", "#36c")
    lines = []
    for (name, s), colour in zip(series.items(), colours):
        pts = " ".join(f"{40 + (width - 210) * i / max(n - 1, 1):.1f},{10 + (height - 40) * (hi - v) / span:.1f}"
                       for i, v in enumerate(s))  # fmt: skip
        lines.append(f"<polyline fill='none' stroke='{colour}' stroke-width='1.5' points='{pts}'/>")
        lines.append(f"<text x='{width - 150}' y='{20 + 14 * len(lines) // 2}' fill='{colour}' font-size='12'>"
                     f"{html.escape(name)}</text>")  # fmt: skip
    axes = (
        f"<text x='2' y='14' font-size='11'>{hi:.3f}</text>"
        f"<text x='2' y='{height - 30}' font-size='11'>{lo:.3f}</text>"
        f"<text x='{width // 2}' y='{height - 5}' font-size='11'>episode (1..{n})</text>"
    )
    svg = f"<svg width='{width}' height='{height}' role='img'>{''.join(lines)}{axes}</svg>"
    return f"<h2>{html.escape(title)}</h2>{svg}"


def bar_chart(values: list[float], labels: list[str], title: str, width: int = 640, height: int = 220) -> str:
    if not values:
        return f"<h2>{html.escape(title)}</h2><p>No policy yet.</p>"
    w = (width - 40) / len(values)
    bars = [
        f"<rect x='{30 + i * w:.1f}' y='{10 + (height - 40) * (1 - v):.1f}' width='{max(w - 2, 1):.1f}' "
        f"height='{(height - 40) * v:.1f}' fill='#3a7'><title>{html.escape(labels[i])}: {v:.3f}</title></rect>"
        for i, v in enumerate(values)
    ]
    axes = (f"<text x='2' y='14' font-size='11'>1.0</text><text x='2' y='{height - 30}' font-size='11'>0</text>"
            f"<text x='{width // 2 - 60}' y='{height - 5}' font-size='11'>unit (network order)</text>")  # fmt: skip
    return f"<h2>{html.escape(title)}</h2><svg width='{width}' height='{height}' role='img'>{''.join(bars)}{axes}</svg>"
