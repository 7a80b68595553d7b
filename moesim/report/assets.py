"""What every HTML page shares: one plotly.js file per output folder, the page head, and a
sortable-table script.

Each page references ``plotly.min.js`` beside it with a relative ``<script src>``, so a folder
of pages carries the 4.6 MB library once and every page still opens offline from the file
system with nothing fetched. The file is plotly's own bundle, written only when missing or
different.
"""

from __future__ import annotations

import html
import importlib.resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from moesim.io import write_bytes_atomic, write_text_atomic

if TYPE_CHECKING:
    import plotly.graph_objects as go

PLOTLY_JS = "plotly.min.js"

# plotly.js options of every figure: no plotly logo, a fixed size (the layout's)
FIGURE_CONFIG: dict[str, Any] = {"displaylogo": False, "responsive": False}

# Records uncaught script errors on <html data-js-errors=N> so a headless check can read them.
ERROR_HOOK = ("<script>document.documentElement.dataset.jsErrors='0';"
              "window.addEventListener('error',function(){var d=document.documentElement.dataset;"
              "d.jsErrors=String(Number(d.jsErrors)+1);});</script>")

# Says what is wrong when the page was copied without its plotly.min.js.
_MISSING_PLOTLY = ("<script>if(!window.Plotly){document.addEventListener('DOMContentLoaded',"
                   "function(){var p=document.createElement('p');p.id='plotly-missing';p.style.color='#b00';"
                   f"p.textContent='{PLOTLY_JS} is missing beside this page: the figures need "
                   "it (moesim writes it into every output folder).';"
                   "document.body.insertBefore(p,document.body.firstChild);});}</script>")

# Click a column header of a table.sortable to sort by it (numbers by value); again to reverse.
SORT_SCRIPT = """<script>
document.addEventListener('click', function (e) {
  var th = e.target.closest('table.sortable th');
  if (!th) return;
  var table = th.closest('table'), body = table.tBodies[0];
  var col = Array.prototype.indexOf.call(th.parentNode.children, th);
  var asc = th.dataset.sort !== 'asc';
  Array.prototype.forEach.call(th.parentNode.children, function (h) { delete h.dataset.sort; });
  th.dataset.sort = asc ? 'asc' : 'desc';
  var key = function (row) {
    var cell = row.children[col], v = cell.dataset.value;
    if (v === undefined) v = cell.textContent;
    var n = parseFloat(v);
    return isNaN(n) ? v.toLowerCase() : n;
  };
  var rows = Array.prototype.slice.call(body.rows);
  rows.sort(function (a, b) {
    var x = key(a), y = key(b);
    if (typeof x !== typeof y) { x = String(x); y = String(y); }
    return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
  });
  rows.forEach(function (r) { body.appendChild(r); });
});
</script>"""

# The look of a report page: body, sections, headings and the notes line (report.html and the
# serving report.html).
PAGE_STYLE = ("body{font-family:sans-serif;margin:16px 24px;color:#222}"
              "section{margin:12px 0 28px}h2{font-size:18px;margin:4px 0}"
              ".notes{color:#555;font-size:13px}")

TABLE_STYLE = ("table.sortable{border-collapse:collapse;font-size:13px}"
               "table.sortable th,table.sortable td{border:1px solid #ccc;padding:3px 8px;"
               "text-align:right;white-space:nowrap}"
               "table.sortable td.text,table.sortable th.text{text-align:left}"
               "table.sortable th{background:#eef2f7;cursor:pointer;position:sticky;top:0}"
               "table.sortable th[data-sort=asc]::after{content:' \\25B2'}"
               "table.sortable th[data-sort=desc]::after{content:' \\25BC'}"
               "table.sortable tr.bad td{color:#b00}")


def head(title: str, style: str = "") -> str:
    """``<!DOCTYPE html>`` through ``<body>``: title, style, error hook, plotly.min.js."""
    esc = html.escape(title)
    return "".join([
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{esc}</title>",
        f"<style>{style}</style>" if style else "", ERROR_HOOK,
        f"<script src='{PLOTLY_JS}' charset='utf-8'></script>", _MISSING_PLOTLY,
        "</head><body>"])


def write_plotly_js(out_dir: str | Path) -> Path:
    """``out_dir/plotly.min.js``, written (atomically) only when missing or different."""
    path = Path(out_dir) / PLOTLY_JS
    data = plotly_js_bytes()
    try:
        same = path.stat().st_size == len(data) and path.read_bytes() == data
    except OSError:
        same = False
    return path if same else write_bytes_atomic(path, data)


def plotly_js_bytes() -> bytes:
    """plotly's bundled plotly.min.js: the file plotly.offline.get_plotlyjs() reads, as
    bytes (not decoded and encoded again), or get_plotlyjs()'s text where it is elsewhere."""
    try:
        return (importlib.resources.files("plotly") / "package_data" / PLOTLY_JS).read_bytes()
    except OSError:
        import plotly.offline

        return plotly.offline.get_plotlyjs().encode("utf-8")


def write_page(path: str | Path, page: str) -> Path:
    """Write an HTML page and the plotly.min.js it references beside it."""
    p = Path(path)
    write_plotly_js(p.parent)
    return write_text_atomic(p, page)


def figure_div(fig: go.Figure, div_id: str) -> str:
    """A plotly figure as a ``<div>`` for a page that loads plotly.min.js itself."""
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id,
                       config=dict(FIGURE_CONFIG))
