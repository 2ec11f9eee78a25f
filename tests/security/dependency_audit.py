"""`make audit`: pip-audit over the locked Python environment (uv.lock) and `npm audit
--omit=dev` over the dashboard. Exit 0 only when both found nothing that docs/security.md
does not justify (by advisory id), and when every package could really be checked: an
unreachable vulnerability database is a failure, never a pass.

    .venv/bin/python tests/security/dependency_audit.py
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devinfra.toolchain import cache_dir, read_versions

ROOT = Path(__file__).resolve().parents[2]
JUSTIFICATIONS = ROOT / "docs" / "security.md"
DASHBOARD = ROOT / "services" / "dashboard"


@dataclass
class Report:
    tool: str
    audited: int = 0
    findings: list[tuple[str, str]] = field(default_factory=list)  # (package, advisory ids)
    errors: list[str] = field(default_factory=list)


def justified_ids(text: str) -> set[str]:
    """Advisory ids (GHSA-..., PYSEC-..., CVE-...) named in the justification document."""
    return set(re.findall(r"\b(?:GHSA(?:-[0-9a-z]{4}){3}|PYSEC-\d+-\d+|CVE-\d+-\d+)\b", text))


def locked_requirements(path: Path) -> None:
    uv = cache_dir() / f"uv-{read_versions()['UV_VERSION']}" / "bin" / "uv"
    subprocess.run(
        [str(uv), "export", "--frozen", "--all-packages", "--no-emit-workspace", "--no-hashes",
         "--format", "requirements-txt", "--output-file", str(path), "--quiet"],
        cwd=ROOT, check=True, env={"UV_CACHE_DIR": str(cache_dir() / "uv-cache"),
                                   "UV_PYTHON_DOWNLOADS": "never", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip


def parse_pip_audit(data: dict[str, Any]) -> Report:
    report = Report("pip-audit (uv.lock)")
    for dep in data.get("dependencies", []):
        if dep.get("skip_reason"):
            report.errors.append(f"{dep['name']} {dep.get('version', '')}: {dep['skip_reason']}")
            continue
        report.audited += 1
        for vuln in dep.get("vulns", []):
            ids = " ".join([vuln["id"], *vuln.get("aliases", [])])
            report.findings.append((f"{dep['name']} {dep['version']}", ids))
    return report


def pip_audit() -> Report:
    with tempfile.TemporaryDirectory() as tmp:
        requirements = Path(tmp) / "requirements.txt"
        locked_requirements(requirements)
        result = subprocess.run(
            [str(ROOT / ".venv" / "bin" / "pip-audit"), "--requirement", str(requirements),
             "--no-deps", "--disable-pip", "--strict", "--progress-spinner", "off",
             "--format", "json"],
            capture_output=True, text=True, timeout=900,
        )  # fmt: skip
    try:
        report = parse_pip_audit(json.loads(result.stdout))
    except json.JSONDecodeError:
        report = Report("pip-audit (uv.lock)", errors=[result.stderr.strip()[-2000:]])
    if report.audited == 0 and not report.errors:
        report.errors.append("no package was audited")
    return report


def parse_npm_audit(data: dict[str, Any]) -> Report:
    report = Report("npm audit --omit=dev (services/dashboard)")
    if "error" in data or "statusCode" in data:
        report.errors.append(str(data.get("message") or data.get("error")))
        return report
    report.audited = int(data.get("metadata", {}).get("dependencies", {}).get("prod", 0))
    for name, vuln in data.get("vulnerabilities", {}).items():
        ids = [
            str(v.get("url", "")).rsplit("/", 1)[-1] for v in vuln.get("via", [])
            if isinstance(v, dict)
        ]  # fmt: skip
        # A package only vulnerable through another one names it instead of an advisory.
        if ids:
            report.findings.append((name, " ".join(ids)))
    return report


def npm_audit() -> Report:
    result = subprocess.run(
        ["npm", "audit", "--omit=dev", "--json"],
        cwd=DASHBOARD, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    try:
        return parse_npm_audit(json.loads(result.stdout))
    except json.JSONDecodeError:
        return Report("npm audit", errors=[result.stderr.strip()[-2000:] or "no output"])


def verdict(report: Report, justified: set[str]) -> list[str]:
    """The problems that fail the audit: errors, and findings without a justification."""
    problems = [f"{report.tool}: could not audit: {e}" for e in report.errors]
    for package, ids in report.findings:
        if not set(ids.split()) & justified:
            problems.append(f"{report.tool}: {package}: {ids} (not justified in docs/security.md)")
    return problems


def main() -> int:
    justified = justified_ids(JUSTIFICATIONS.read_text())
    problems: list[str] = []
    for report in (pip_audit(), npm_audit()):
        problems += verdict(report, justified)
        print(
            f"{report.tool}: {report.audited} packages audited, {len(report.findings)} "
            f"findings, {len(report.errors)} not auditable"
        )
    for problem in problems:
        print(f"FAIL {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
