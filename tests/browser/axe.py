"""axe-core in the browser tests: where it is, and a check that reports what matters.

``make test`` installs the npm package ``axe-core`` into ``.cache/npm`` (or point
``SEOULBRIDGE_AXE`` at an ``axe.min.js``). Pages are opened with ``bypass_csp`` for
the injection, since their Content-Security-Policy allows only their own scripts.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import REPO

AXE_JS = Path(
    os.environ.get("SEOULBRIDGE_AXE", REPO / ".cache/npm/node_modules/axe-core/axe.min.js")
)
#: What must never be found on any page.
BLOCKING = ("serious", "critical")


def axe_source() -> str:
    if not AXE_JS.exists():
        pytest.fail(f"axe-core is not installed at {AXE_JS}: run 'make test' (it installs it)")
    return AXE_JS.read_text()


async def violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's violations on the page as it is now (WCAG 2.x A and AA rules)."""
    if not await page.evaluate("() => typeof window.axe !== 'undefined'"):
        await page.add_script_tag(content=axe_source())
    found: list[dict[str, Any]] = await page.evaluate(
        """async () => {
            const r = await axe.run(document, {
                runOnly: {type: "tag", values: [
                    "wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]},
                resultTypes: ["violations"],
            });
            return r.violations.map((v) => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 4).map(
                    (n) => n.target.join(" ") + " :: " + n.failureSummary),
            }));
        }"""
    )
    return found


async def assert_no_serious(page: Any, where: str) -> list[dict[str, Any]]:
    found = await violations(page)
    bad = [v for v in found if v["impact"] in BLOCKING]
    assert not bad, f"{where}: axe-core found serious or critical violations:\n" + "\n".join(
        f"  {v['impact']} {v['id']}: {v['help']}\n    " + "\n    ".join(v["nodes"]) for v in bad
    )
    return found
