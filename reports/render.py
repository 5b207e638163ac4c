"""Pages from templates: the Jinja2 environment, the Content-Security-Policy, the written file.

Every page (the report, ``reports/report.py``; the regression page, ``reports/regression.py``)
is one file with inline CSS and a few lines of inline JavaScript, and loads nothing from
anywhere: its Content-Security-Policy says so, and allows exactly the page's own script by
its SHA-256. Every string from the records goes through Jinja2's autoescape.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import jinja2

from lossparity.reports.format import format_scalar

_ENV: jinja2.Environment | None = None


def _env() -> jinja2.Environment:
    global _ENV
    if _ENV is None:
        _ENV = jinja2.Environment(
            loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
            autoescape=True,  # every value from a results file is untrusted text
            trim_blocks=True,
            lstrip_blocks=True,
            undefined=jinja2.StrictUndefined,
        )
        _ENV.filters["fmt"] = format_scalar
    return _ENV


#: Stands in the page's Content-Security-Policy until the script's hash is known.
_SCRIPT_SOURCE = "LOSSPARITY-SCRIPT-HASH"
_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)


def render(template: str, context: dict) -> str:
    """Render a page and allow exactly its own inline script: the policy names the script's
    SHA-256, so a script that escaping ever let through would still not run."""
    page = _env().get_template(template).render(SCRIPT_SOURCE=_SCRIPT_SOURCE, **context)
    scripts = _SCRIPT.findall(page)
    digest = (
        "".join(f" 'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'" for s in scripts).strip()
        or "'none'"
    )
    return page.replace(_SCRIPT_SOURCE, digest, 1)


def write_page(path: str | Path, page: str) -> Path:
    """Write ``page`` to ``path`` as UTF-8 (parents created); return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
