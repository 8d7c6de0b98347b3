"""``report.html``: one self-contained page (images inlined as base64), rendered with jinja2."""

from __future__ import annotations

import base64
from pathlib import Path

from jinja2 import Environment, select_autoescape

from obliviate.report.rundir import RunDir
from obliviate.report.tables import INTERVALS, columns, decided, display_rows, summary
from obliviate.report.verdicts import verdict_table

TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>obliviate report: {{ title }}</title>
<style>
 body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1400px; padding: 0 1em; color: #222; }
 table { border-collapse: collapse; font-size: 12px; margin: 1em 0; }
 th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: right; white-space: nowrap; }
 th { background: #f0f0f0; } td.name, th.name { text-align: left; }
 tr.reference { font-weight: bold; background: #fffbe6; }
 td.status { text-align: left; color: #666; white-space: normal; min-width: 6em; max-width: 22em; }
 span.ci { color: #777; font-size: 10px; }
 figure { margin: 2em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
 figcaption { color: #555; font-size: 14px; }
 .meta { color: #666; font-size: 13px; }
 .scroll { overflow-x: auto; }
</style></head>
<body>
<h1>obliviate report</h1>
<p class="meta">{{ title }}</p>
<h2>Leaderboard</h2>
<div class="scroll"><table id="leaderboard">
<thead><tr><th class="name">method</th><th class="name">status</th>
{% for c in cols %}<th title="{{ c.meaning }}">{{ c.name }} {{ c.arrow }}</th>{% endfor %}
<th>seeds</th></tr></thead>
<tbody>
{% for r in rows %}<tr class="{{ 'reference' if r.reference else '' }}">
<td class="name">{{ r.method }}</td><td class="status">{{ r.status }}</td>
{% for v in r.cells %}<td>{{ v.split(' [')[0] }}{% if ' [' in v %}<br><span class="ci">[{{ v.split(' [')[1] }}</span>{% endif %}</td>{% endfor %}
<td>{{ r.seeds }}</td></tr>
{% endfor %}</tbody></table></div>
<p class="meta">↑ higher is better, ↓ lower is better, ≈ closer to the reference is better.</p>
{% for line in decided %}<p class="meta decided">{{ line }}</p>{% endfor %}
{% for line in notes %}<p class="meta note">note: {{ line }}</p>{% endfor %}
<h3>What each metric means</h3>
<table id="metrics"><thead><tr><th class="name">metric</th><th class="name">meaning</th>
<th class="name">better</th><th class="name">ideal</th></tr></thead><tbody>
{% for c in cols %}<tr><td class="name">{{ c.name }}</td><td class="name">{{ c.meaning }}</td>
<td class="name">{{ c.direction }}</td><td class="name">{{ c.ideal }}</td></tr>{% endfor %}
</tbody></table>
<p class="meta">{{ intervals }}</p>
{% if verdicts %}<h3>{{ verdicts.title }}</h3>
<p class="meta">{{ verdicts.text }}</p>
<table id="verdicts"><thead><tr>{% for h in verdicts.header %}<th class="name">{{ h }}</th>
{% endfor %}</tr></thead><tbody>
{% for r in verdicts.rows %}<tr>{% for v in r %}<td class="name">{{ v }}</td>{% endfor %}</tr>
{% endfor %}</tbody></table>{% endif %}
<h2>Figures</h2>
{% for f in figures %}<figure id="fig-{{ f.name }}">
<img alt="{{ f.name }}" src="data:image/png;base64,{{ f.data }}">
<figcaption>{{ f.caption }}</figcaption></figure>
{% endfor %}
<p class="meta">Versions: {{ versions }}. Written from {{ root }} by 'obliviate report'.</p>
</body></html>
"""


def render(run: RunDir, figures: dict[str, tuple[Path, str]]) -> str:
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    figs = [{"name": name, "caption": caption,
             "data": base64.b64encode(path.read_bytes()).decode("ascii")}
            for name, (path, caption) in figures.items()]
    versions = ", ".join(f"{k} {v}" for k, v in run.config.get("versions", {}).items())
    return env.from_string(TEMPLATE).render(
        title=summary(run), cols=columns(run), rows=display_rows(run), figures=figs,
        versions=versions, root=run.root.name, decided=decided(run),
        notes=run.config.get("notes", []), intervals=INTERVALS, verdicts=verdict_table(run))
