# SPDX-License-Identifier: LGPL-2.1-or-later
"""The HTML page around the sections: one file, its CSS inline, no script, nothing fetched."""

from typing import Any, Dict, List, Sequence, Tuple

from drgn_ptwalk.report.sections import esc

__all__ = ("CSS", "page", "section_html")

CSS = """
body { font-family: sans-serif; margin: 0 auto; max-width: 1100px; padding: 0 1em 3em; color: #222; }
h1 { font-size: 1.5em; border-bottom: 2px solid #444; padding-bottom: .2em; }
h2 { font-size: 1.25em; margin-top: 1.6em; border-bottom: 1px solid #bbb; }
h3 { font-size: 1.05em; }
table { border-collapse: collapse; font-size: .8em; margin: .5em 0; }
th, td { border: 1px solid #ccc; padding: .15em .45em; text-align: right; vertical-align: top; }
th { background: #f0f0f0; }
td:last-child, th:last-child { text-align: left; }
table.kv td { text-align: left; }
table.kv td:first-child { font-weight: bold; }
figure { margin: .6em 0; }
figure svg { max-width: 100%; height: auto; }
figcaption { font-size: .8em; color: #555; }
pre.log { font-size: .75em; background: #f7f7f7; padding: .5em; overflow-x: auto; }
.err { color: #a00; font-weight: bold; }
.meta { font-size: .75em; color: #666; }
nav ul { columns: 2; font-size: .9em; }
.status-error { color: #a00; }
.status-ok { color: #070; }
.status-unsupported { color: #a60; }
"""


def section_html(name: str, title: str, status: str, seconds: float, error: str, body: str) -> str:
    """One ``<section>``: its title, its body or its error, its time."""
    inner = body if status == "ok" else f'<p class="err">{esc(error)}</p>'
    return (f'<section id="{esc(name)}" data-status="{esc(status)}"><h2>{esc(title)}</h2>{inner}'
            f'<p class="meta">section {esc(name)}: {esc(status)}, {seconds:.2f} s'
            + (f"; error: {esc(error)}" if error and status != "ok" else "") + "</p></section>")


def page(title: str, header: Sequence[Tuple[str, str]], sections: List[Dict[str, Any]], bodies: List[str]) -> str:
    """The whole page: a header table, a table of contents with each section's status, the sections."""
    toc = "".join(f'<li><a href="#{esc(s["name"])}">{esc(s["title"])}</a> '
                  f'<span class="status-{esc(s["status"])}">{esc(s["status"])}</span> ({s["seconds"]:.2f} s)</li>'
                  for s in sections)
    head = "".join(f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in header)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
        f"<h1>{esc(title)}</h1><table class=\"kv\">{head}</table>"
        f"<nav><ul>{toc}</ul></nav>" + "".join(bodies) + "</body></html>\n"
    )
