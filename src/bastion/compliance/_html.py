"""The HTML report: one self-contained page (inline CSS, no script, nothing fetched), built with
lxml's element builder so every text from the image is escaped, never interpreted."""

from __future__ import annotations

from lxml import html
from lxml.html import builder as E

from bastion import __version__
from bastion.compliance._model import CIS_DOCKER, Area, ComplianceResult, Result, RuleResult
from bastion.compliance._report import summary
from bastion.compliance._xccdf import clean

_CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem; color: #1d232a; }
h1 { font-size: 1.5rem; margin-bottom: .25rem; } h2 { margin-top: 2rem; font-size: 1.2rem; }
.meta { color: #555; } .meta td { padding: 0 1rem 0 0; } code { font-size: 12px; }
.counts { display: flex; gap: .75rem; flex-wrap: wrap; margin: 1.25rem 0; }
.count { border-radius: 6px; padding: .6rem 1rem; min-width: 7rem; background: #eef0f3; }
.count .n { font-size: 1.8rem; font-weight: 600; display: block; }
.pass { background: #dff3e4; } .fail, .error { background: #fbe1e1; }
.notapplicable, .notchecked, .informational, .unknown { background: #eef0f3; }
.score { background: #e3ebfa; } .waived { background: #fdf1d6; }
table.rules { border-collapse: collapse; width: 100%; }
table.rules th, table.rules td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid #e2e5e9;
  vertical-align: top; }
td.result { font-weight: 600; white-space: nowrap; }
td.result.pass { color: #17692f; } td.result.fail, td.result.error { color: #a11212; }
.sev-high { font-weight: 600; } ul.evidence { margin: .25rem 0 0 1rem; padding: 0; font-size: 12px; }
.refs { color: #555; font-size: 12px; }
.override { margin-top: .25rem; padding: .25rem .5rem; background: #fdf1d6; border-radius: 4px; }
"""


def _t(text: str) -> str:
    return clean(text)


def _rule_row(item: RuleResult, anchor: bool) -> html.HtmlElement:
    rule = item.rule
    refs = [f"{CIS_DOCKER} {s}" for s in rule.cis] + list(rule.cci)
    details: list[html.HtmlElement | str] = [E.DIV(_t(item.message))]
    change = item.override
    if change is not None:
        details.append(
            E.DIV(
                E.CLASS("override"),
                E.STRONG(f"waived (the check's result: {change.old_result.value})"),
                _t(f" by {change.authority}: {change.remark}"),
            )
        )
    if item.evidence:
        details.append(E.UL(*(E.LI(E.CODE(_t(e))) for e in item.evidence), E.CLASS("evidence")))
    if refs:
        details.append(E.DIV(_t("; ".join(refs)), E.CLASS("refs")))
    word = item.result.value + (" (waived)" if change is not None else "")
    return E.TR(
        E.TD(E.CLASS(f"result {item.result.value}"), word),
        E.TD(E.CLASS(f"sev-{item.severity.value}"), item.severity.value),
        E.TD(E.STRONG(_t(rule.title)), E.BR(), E.CODE(rule.id)),
        E.TD(*details),
        **({"id": rule.id} if anchor else {}),
    )


def _table(items: list[RuleResult], *, anchor: bool = False) -> html.HtmlElement:
    """The rules of ``items``; ``anchor`` gives each row its rule's id (only in the area tables, so
    that ids stay unique when the failed and waived tables repeat a rule)."""
    return E.TABLE(
        E.CLASS("rules"),
        E.THEAD(E.TR(E.TH("result"), E.TH("severity"), E.TH("rule"), E.TH("finding"))),
        E.TBODY(*(_rule_row(i, anchor) for i in items)),
    )


def to_html(result: ComplianceResult) -> bytes:
    """The HTML report of ``result``: deterministic for the same result."""
    info = summary(result)
    target = result.target
    counts = [
        E.DIV(E.SPAN(str(n), E.CLASS("n")), word, E.CLASS(f"count {word}"), id=f"count-{word}")
        for word, n in info.counts.items()
        if n or word in (Result.PASS.value, Result.FAIL.value)
    ]
    if info.waived:
        counts.append(
            E.DIV(
                E.SPAN(str(info.waived), E.CLASS("n")), "waived", E.CLASS("count waived"), id="count-waived"
            )
        )
    counts.append(
        E.DIV(E.SPAN(f"{info.score:.2f}", E.CLASS("n")), "score", E.CLASS("count score"), id="score")
    )
    meta_rows = [
        ("image", target.name),
        ("digest", target.manifest_digest or "—"),
        ("platform", target.platform or "—"),
        ("variant", (target.variant or "unlabelled") + (" (runtime)" if target.runtime else "")),
        ("profile", f"{result.profile.title} ({result.profile.name} {result.profile.version})"),
        ("evaluated", result.time.strftime("%Y-%m-%d %H:%M:%SZ") + f" by Bastion {__version__}"),
    ]
    if result.waiver_source:
        meta_rows.append(("waivers", result.waiver_source))
    body: list[html.HtmlElement] = [
        E.H1(_t(f"Compliance report: {target.name}")),
        E.TABLE(E.CLASS("meta"), *(E.TR(E.TD(k), E.TD(E.CODE(_t(v)))) for k, v in meta_rows)),
        E.DIV(E.CLASS("counts"), *counts),
    ]
    failed = list(result.failed)
    if failed:
        body += [E.H2(f"Failed rules ({len(failed)})"), _table(failed)]
    waived = list(result.waived)
    if waived:
        body += [E.H2(f"Waived rules ({len(waived)})"), _table(waived)]
    for area in Area:
        items = [r for r in result.results if r.rule.area is area]
        if items:
            body += [E.H2(area.heading), _table(items, anchor=True)]
    page = E.HTML(
        E.HEAD(
            E.META(charset="utf-8"),
            E.TITLE(_t(f"Compliance: {target.name} — {result.profile.name} {result.profile.version}")),
            E.STYLE(_CSS),
        ),
        E.BODY(*body),
        lang="en",
    )
    document: bytes = html.tostring(page, doctype="<!DOCTYPE html>", encoding="utf-8", pretty_print=True)
    return document
