"""axe-core in the browser tests, from the test environment (never a CDN).

The script is the ``axe.min.js`` that the ``axe-playwright-python`` package
ships (PyPI, a test dependency); it is evaluated in the page through the
DevTools protocol, which the page's Content-Security-Policy does not govern.
"""

from __future__ import annotations

from importlib.resources import files

AXE_JS = (files("axe_playwright_python") / "axe.min.js").read_text(encoding="utf-8")
# WCAG 2.1 A and AA, what schools must buy, plus axe's best practices and its
# experimental rules (label-content-name-mismatch, which a reviewer's scan
# found on the legend, is one of them).
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice", "experimental"]


def axe_violations(page) -> list[dict]:
    """The violations axe-core finds on the page as it is now."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE_JS)
    result = page.evaluate(
        "options => axe.run(document, options)",
        {"runOnly": {"type": "tag", "values": TAGS}, "resultTypes": ["violations"]},
    )
    return result["violations"]


def describe(violations: list[dict]) -> str:
    lines = []
    for v in violations:
        lines.append(f"{v['id']} ({v['impact']}): {v['help']} [{len(v['nodes'])} node(s)]")
        for node in v["nodes"][:5]:
            lines.append(f"    {' '.join(node['target'])}: {node['failureSummary'].splitlines()[-1].strip()}")
    return "\n".join(lines)
