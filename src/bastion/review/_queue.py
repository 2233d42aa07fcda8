"""The review queue: reviews that wait for a person, and the decisions made on them.

A small file store under ``BASTION_HOME/reviews/`` — one JSON document per review, written atomically —
so that one machine needs nothing to start; the factory's review gate can adopt the same records (a
proposal, the predicate, the decision) into its database. A review whose verdict is ``pass`` is
recorded as ``passed`` and needs no decision; ``review`` and ``block`` wait as ``pending`` until someone
approves or rejects them. A decision is final and names the reviewer, the reason and the time.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bastion._atomic import atomic_write
from bastion._clock import rfc3339
from bastion.documents import load_json
from bastion.errors import InputError
from bastion.review._model import Review, Verdict
from bastion.review._report import predicate

#: Store format of one record (changes when the fields change).
FORMAT = 1
_ID = re.compile(r"^[0-9a-f]{12}$")
_MAX_RECORD = 64 * 1024 * 1024


@dataclass(frozen=True)
class QueueEntry:
    id: str
    subject: str
    status: str  # passed, pending, approved, rejected
    created: str
    record: dict[str, Any]

    @property
    def verdict(self) -> str:
        return str(self.record["predicate"]["verdict"])

    @property
    def score(self) -> float:
        return float(self.record["predicate"]["score"])

    def predicate(self) -> dict[str, Any]:
        """The review predicate with the decision (``reviewer``) once one was made."""
        doc: dict[str, Any] = dict(self.record["predicate"])
        doc["reviewer"] = self.record.get("decision")
        return doc


class ReviewQueue:
    def __init__(self, home: Path) -> None:
        self.root = home / "reviews"

    def submit(self, review: Review, subject: str, *, hold: bool = False) -> QueueEntry:
        """Record ``review`` of ``subject`` (what the change is: a proposal, an image, a project). The same
        review of the same subject is the same entry (its id is the digest of both). With ``hold`` even a
        ``pass`` waits as ``pending``, for a caller whose policy decides every verdict (the factory)."""
        body = predicate(review)
        digest = hashlib.sha256(json.dumps([subject, body], sort_keys=True).encode()).hexdigest()[:12]
        path = self.root / f"{digest}.json"
        if path.exists():
            return self.get(digest)
        record = {
            "format": FORMAT,
            "id": digest,
            "subject": subject,
            "created": rfc3339(),
            "status": "passed" if review.verdict is Verdict.PASS and not hold else "pending",
            "predicate": body,
            "decision": None,
        }
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps(record, indent=2).encode() + b"\n")
        return _entry(record)

    def entries(self) -> list[QueueEntry]:
        if not self.root.is_dir():
            return []
        found = [self.get(p.stem) for p in sorted(self.root.glob("*.json")) if _ID.match(p.stem)]
        return sorted(found, key=lambda e: (e.created, e.id))

    def get(self, review_id: str) -> QueueEntry:
        if not _ID.match(review_id):
            raise InputError(
                f"not a review id: {review_id!r}", hint="12 hex digits, as `bastion review list` shows"
            )
        path = self.root / f"{review_id}.json"
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise InputError(f"no review {review_id} in {self.root}") from None
        record = load_json(data, where=str(path), max_bytes=_MAX_RECORD)
        if not isinstance(record, dict) or record.get("format") != FORMAT or record.get("id") != review_id:
            raise InputError("not a review record of this version of Bastion", where=str(path))
        return _entry(record)

    def decide(self, review_id: str, *, approve: bool, reviewer: str, reason: str | None) -> QueueEntry:
        """Approve or reject a pending review; the decision is recorded with who, why and when."""
        entry = self.get(review_id)
        if entry.status != "pending":
            raise InputError(f"review {review_id} is {entry.status}; only a pending review takes a decision")
        if not reviewer.strip():
            raise InputError("a decision needs a reviewer identity")
        if not approve and not (reason and reason.strip()):
            raise InputError("a rejection needs a reason (--reason)")
        record = dict(entry.record)
        record["status"] = "approved" if approve else "rejected"
        record["decision"] = {
            "reviewer": reviewer,
            "decision": "approve" if approve else "reject",
            "reason": reason or None,
            "at": rfc3339(),
        }
        atomic_write(self.root / f"{review_id}.json", json.dumps(record, indent=2).encode() + b"\n")
        return _entry(record)


def _entry(record: dict[str, Any]) -> QueueEntry:
    try:
        return QueueEntry(str(record["id"]), str(record["subject"]), str(record["status"]), str(record["created"]),
                          record)  # fmt: skip
    except KeyError as exc:
        raise InputError(f"review record lacks {exc.args[0]!r}", where=str(record.get("id"))) from None
