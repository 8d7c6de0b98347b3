"""mkdocs hook: the site's navigation is the pages that exist, in the order below.

A page named here appears once its file exists in docs/ (and not before, so a page another
branch adds needs no change here to build); any other page is listed after these, under its
own title, so nothing is left out. Order and section are the only things this file decides.
"""

from __future__ import annotations

from pathlib import Path

SECTIONS = {
    "Guide": ["index.md", "python.md", "cli.md", "scenarios.md", "methods.md",
              "evaluation.md", "protocols.md", "your-data.md", "your-model.md",
              "real-models.md", "input-validation.md", "guaranteed.md", "language-models.md",
              "lm-fidelity.md", "reports.md", "security.md"],
    "Reference": ["reference/api.md", "reference/evaluation.md", "reference/errors.md"],
    "Benchmarks": ["benchmarks.md", "challenge.md", "lm-scale.md"],
    "Development": ["development.md"],
}


def _title(path: Path) -> str | None:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return None


def on_config(config, **_):
    docs = Path(config["docs_dir"])
    listed = {p for pages in SECTIONS.values() for p in pages}
    others = sorted(str(p.relative_to(docs)) for p in docs.rglob("*.md")
                    if str(p.relative_to(docs)) not in listed)
    nav = []
    for section, pages in SECTIONS.items():
        present = [p for p in pages if (docs / p).is_file()]
        if section == "Guide":
            present += others  # a new page shows up even before it has a place here
        if present:
            nav.append({section: [{_title(docs / p) or p: p} for p in present]})
    config["nav"] = nav
    return config
