"""The report's jinja2 template, kept in Python so it ships with the package without package-data."""

from __future__ import annotations

__all__ = ["REPORT_TEMPLATE"]

REPORT_TEMPLATE = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #1d232a; background: #fafafa; }
header { background: #1f3b57; color: #fff; padding: 1.2rem 2rem; }
header h1 { margin: 0 0 .3rem 0; font-size: 1.5rem; }
header p { margin: 0; opacity: .85; font-size: .9rem; }
nav { padding: .6rem 2rem; background: #e8eef4; font-size: .9rem; }
nav a { margin-right: 1rem; color: #1f3b57; }
main { padding: 1rem 2rem 3rem 2rem; max-width: 1200px; }
section { overflow-x: auto; background: #fff; border: 1px solid #dde3e8; border-radius: 6px; padding: 1rem 1.4rem; margin: 1.2rem 0; }
h2 { margin-top: 0; font-size: 1.25rem; }
h3 { font-size: 1rem; margin: 1.2rem 0 .4rem 0; }
figure.plot { margin: .8rem 0; }
figure.plot img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption, .note { color: #5a6570; font-size: .85rem; }
table.tbl { border-collapse: collapse; font-size: .8rem; margin: .5rem 0; }
table.tbl th, table.tbl td { border-bottom: 1px solid #e3e7ea; padding: .2rem .55rem; text-align: right; }
table.tbl th { background: #f1f4f6; }
table.tbl td:first-child, table.tbl th:first-child { text-align: left; }
.empty { background: #fff8e1; border-color: #f0d48a; }
code { background: #f1f4f6; padding: 0 .25rem; border-radius: 3px; }
</style>
</head>
<body>
<header>
<h1>{{ title }}</h1>
<p>{{ subtitle }} · generated {{ generated }} by sharpbench {{ version }}</p>
</header>
<nav>{% for s in sections %}<a href="#{{ s.anchor }}">{{ s.title }}</a>{% endfor %}</nav>
<main>
{% if not sections %}<section class="empty"><h2>Nothing to report yet</h2><p>{{ empty_hint }}</p></section>{% endif %}
{% for s in sections %}
<section id="{{ s.anchor }}"{% if not s.blocks %} class="empty"{% endif %}>
<h2>{{ s.title }}</h2>
{% if s.intro %}<p>{{ s.intro | safe }}</p>{% endif %}
{% for b in s.blocks %}{{ b | safe }}
{% endfor %}
</section>
{% endfor %}
</main>
</body>
</html>
"""
