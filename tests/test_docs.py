"""The documents are a front door: every relative link in README.md and docs/*.md leads to a file that
exists (and, with a #fragment, to a heading in it), and the integrator guide's worked examples are the very
files `make test` runs (tests/interop/test_integration_examples.py)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCED = re.compile(r"^```.*?^```", re.S | re.M)
INLINE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")


def prose(text: str) -> str:
    return INLINE.sub("", FENCED.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped (hyphens kept), spaces to hyphens."""
    text = INLINE.sub(lambda m: m.group(0)[1:-1], heading.strip()).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {slug(line.lstrip("#")) for line in FENCED.sub("", path.read_text()).splitlines()
            if re.match(r"#{1,6} ", line)}


def relative_links(path: Path) -> list[str]:
    return [target for target in LINK.findall(prose(path.read_text()))
            if not re.match(r"[a-z][a-z0-9+.-]*:", target)]


def test_there_are_links_to_check() -> None:
    assert len(DOCUMENTS) >= 6 and sum(len(relative_links(p)) for p in DOCUMENTS) > 20


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(document: Path) -> None:
    broken = []
    for target in relative_links(document):
        file_part, _, fragment = target.partition("#")
        resolved = (document.parent / file_part).resolve() if file_part else document
        if not resolved.exists():
            broken.append(f"{target}: no such file")
        elif fragment and resolved.suffix == ".md" and fragment not in anchors(resolved):
            broken.append(f"{target}: no heading #{fragment} in {resolved.name}")
    assert not broken, broken


def test_readme_is_a_front_door() -> None:
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 150
    for needed in ("make run", "make test", "docs/operations.md", "docs/integration.md", "docs/security.md",
                   "docs/development.md", "/docs"):
        assert needed in text, needed


def test_the_guide_shows_the_examples_that_are_tested() -> None:
    guide = ROOT / "docs" / "integration.md"
    shown = re.findall(r"<!-- example: (\S+) -->\n```\w*\n(.*?)\n```", guide.read_text(), re.S)
    assert {name for name, _ in shown} == {"examples/SignRequest.java", "examples/sign_request.php"}
    for name, code in shown:
        assert code == (guide.parent / name).read_text().rstrip("\n"), f"{name} differs from its copy in the guide"
