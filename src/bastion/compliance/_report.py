"""The summary and the JSON report of a compliance result."""

from __future__ import annotations

import json
from dataclasses import dataclass

from bastion.compliance._model import CIS_DOCKER, ComplianceResult, Result, RuleResult


@dataclass(frozen=True)
class Summary:
    """What an attestation and a CI log need: the profile, the counts per result word, the score."""

    profile: str
    profile_title: str
    version: str
    target: str
    digest: str | None
    counts: dict[str, int]  # every XCCDF result word Bastion produces, in a fixed order
    score: float
    passed: bool  # no rule failed or ended in error
    waived: int = 0  # results an override changed (counted under their new result word)

    def as_dict(self) -> dict[str, object]:
        return {
            "profile": self.profile,
            "title": self.profile_title,
            "version": self.version,
            "target": self.target,
            "digest": self.digest,
            "counts": dict(self.counts),
            "score": self.score,
            "passed": self.passed,
            "waived": self.waived,
        }

    def line(self) -> str:
        counts = ", ".join(f"{n} {word}" for word, n in self.counts.items() if n)
        waived = f" ({self.waived} waived)" if self.waived else ""
        return f"{self.profile} {self.version}: {counts}{waived}; score {self.score:.2f}"


def summary(result: ComplianceResult) -> Summary:
    return Summary(
        profile=result.profile.name,
        profile_title=result.profile.title,
        version=result.profile.version,
        target=result.target.name,
        digest=result.target.manifest_digest,
        counts={word.value: result.count(word) for word in Result},
        score=result.score,
        passed=not result.failed,
        waived=len(result.waived),
    )


def _override(item: RuleResult) -> dict[str, str] | None:
    change = item.override
    if change is None:
        return None
    return {
        "time": change.time.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "authority": change.authority,
        "old_result": change.old_result.value,
        "new_result": change.new_result.value,
        "remark": change.remark,
    }


def to_json(result: ComplianceResult) -> str:
    """Every rule with its XCCDF result word, severity, message and evidence, as JSON text."""
    target = result.target
    document = {
        "summary": summary(result).as_dict(),
        "time": result.time.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end_time": result.ended.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "waiver_source": result.waiver_source,
        "target": {
            "name": target.name,
            "digest": target.manifest_digest,
            "index_digest": target.index_digest,
            "platform": target.platform,
            "variant": target.variant,
            "runtime": target.runtime,
        },
        "rules": [
            {
                "id": r.rule.id,
                "name": r.rule.name,
                "area": r.rule.area.value,
                "title": r.rule.title,
                "severity": r.severity.value,
                "result": r.result.value,
                "message": r.message,
                "evidence": list(r.evidence),
                "override": _override(r),
                "references": {
                    "cis": [f"{CIS_DOCKER} {s}" for s in r.rule.cis],
                    "cci": list(r.rule.cci),
                },
            }
            for r in result.results
        ],
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
