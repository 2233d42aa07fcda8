"""Terminal tables (rich) of what the library returns as rows of text: the packages of an SBOM and the
findings of a CVE scan. Readable in a 100-column terminal: long cells fold, or are cut with an
ellipsis, instead of widening the table. Every cell is a rich ``Text``, never read as markup: names
and versions come from the image."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from bastion.sbom import Sbom
    from bastion.vuln import ScanResult


def sbom_table(sbom: Sbom) -> Table:
    from bastion.sbom import TABLE_COLUMNS, table_rows

    title = sbom.name + (f" ({sbom.platform})" if sbom.platform else "")
    table = Table(title=Text(title), caption=f"{len(sbom.packages)} packages", expand=True, pad_edge=False)
    kind, *others = TABLE_COLUMNS
    table.add_column(kind, no_wrap=True)
    for column in others:
        # Licences: one line each, cut rather than folded.
        licences = column == "Licences"
        table.add_column(column, overflow="ellipsis" if licences else "fold", no_wrap=licences, ratio=3)
    for row in table_rows(sbom):
        table.add_row(*map(Text, row))
    return table


def findings_table(result: ScanResult, *, show_suppressed: bool = False) -> Table:
    from bastion.vuln import FINDING_COLUMNS, finding_row

    table = Table(*FINDING_COLUMNS, title=Text(result.name), box=None, pad_edge=False)
    for finding in result.findings:
        table.add_row(*map(Text, finding_row(finding)))
    if show_suppressed:
        for finding in result.suppressed:
            table.add_row(*map(Text, finding_row(finding)), style="dim")
    return table
