"""The documentation stays inside the repository and true to the code.

- README.md and docs/ link nothing outside the repository, and every relative link resolves.
- docs/cli.md is exactly what the parsers print (regenerate: python -m service.cli._docs > docs/cli.md).
- docs/configuration.md shows every settings key; docs/operations.md every metric.
- docs/architecture.md draws the path of one event (Mermaid).
"""

from __future__ import annotations

import re
from pathlib import Path

import msgspec
import pytest
from prometheus_client import Counter, Histogram

import service.metrics
from schemas.settings import Settings
from service.api.metrics import HookyardCollector, Snapshot
from service.cli._docs import reference

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_stay_inside_the_repository_and_resolve(page: Path):
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if target.startswith(("http://", "https://", "mailto:")):
            assert page.name != "README.md" or page.parent != ROOT, f"README links outside: {target}"
            continue
        path = target.split("#", 1)[0]
        if not path:
            continue
        resolved = (page.parent / path).resolve()
        assert resolved.is_relative_to(ROOT), f"{page.name}: {target} leaves the repository"
        assert resolved.exists(), f"{page.name}: {target} does not exist"
    assert "../shared" not in page.read_text(encoding="utf-8")


def test_cli_reference_is_what_the_parsers_print():
    assert (DOCS / "cli.md").read_text(encoding="utf-8") == reference(), (
        "docs/cli.md is stale: .venv/bin/python -m service.cli._docs > docs/cli.md"
    )


def _keys(struct: type[msgspec.Struct], prefix: str = "") -> list[str]:
    keys = []
    for field in msgspec.structs.fields(struct):
        kind = field.type
        inner = getattr(kind, "__args__", (None,))[0]
        if isinstance(kind, type) and issubclass(kind, msgspec.Struct):
            keys += _keys(kind, f"{field.name}.")
        elif isinstance(inner, type) and issubclass(inner, msgspec.Struct):  # [[sources]], [[api_keys]]
            keys += _keys(inner, f"{field.name}[].")
        else:
            keys.append(prefix + field.name)
    return keys


def test_configuration_page_shows_every_key():
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    sections = {m.group(1): m.start() for m in re.finditer(r"^\[\[?(\w+)\]\]?", text, re.MULTILINE)}
    for key in _keys(Settings):
        section, _, name = key.partition(".")
        section = section.removesuffix("[]")
        assert section in sections, f"[{section}] missing"
        after = text[sections[section] :]
        following = [start for start in sections.values() if start > sections[section]]
        block = after[: (min(following) - sections[section]) if following else None]
        assert re.search(rf"^(# )?{name} = ", block, re.MULTILINE), f"{key} is not in docs/configuration.md"


def _metric_names() -> set[str]:
    names = {value._name for value in vars(service.metrics).values() if isinstance(value, Counter | Histogram)}
    full = Snapshot(queue_jobs={"waiting": 0}, queue_events=0, dead=0, oldest_pending_seconds=0.0, database_read=True)
    collector = HookyardCollector()
    collector.update(full)
    names |= {family.name for family in collector.collect()}
    return names


def test_operations_page_lists_every_metric():
    text = (DOCS / "operations.md").read_text(encoding="utf-8")
    for name in sorted(_metric_names()):
        assert f"`{name}" in text, f"{name} is not in docs/operations.md"  # a counter's `_total` may follow


def test_architecture_is_a_picture_of_one_events_path():
    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    assert "```mermaid" in text
    for step in ("receive.py", "enqueue.py", "spool", "worker", "store", "deliver"):
        assert step in text
