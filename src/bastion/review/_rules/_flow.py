"""Control flow: an unconditional jump that makes the checks after it dead (the `goto fail;` of
CVE-2014-1266), and a tri-state verification result tested as a boolean (CVE-2008-5077)."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

from bastion.review._model import Confidence, Hit, Rule, Severity
from bastion.review._rules._common import condition, hit, negated
from bastion.review._syntax import Source, functions, statements, unwrap

DEAD_CHECK = Rule(
    "CF001", "control-flow", Severity.CRITICAL, Confidence.HIGH,
    "An unconditional jump or return skips the check that follows it: the check can never fail "
    "(the `goto fail; goto fail;` shape of CVE-2014-1266).",
)  # fmt: skip
DEAD_CODE = Rule(
    "CF002", "control-flow", Severity.MEDIUM, Confidence.MEDIUM,
    "Statements after an unconditional jump or return never run.",
)  # fmt: skip
TRISTATE = Rule(
    "CF003", "control-flow", Severity.HIGH, Confidence.HIGH,
    "The function returns -1 on error, 0 on failure and 1 on success; tested as a boolean, an error "
    "counts as a valid result (CVE-2008-5077, OpenSSL's EVP_VerifyFinal).",
)  # fmt: skip
RULES = (DEAD_CHECK, DEAD_CODE, TRISTATE)

#: Library functions documented to return 1 / 0 / a negative value (OpenSSL EVP_VerifyFinal(3),
#: EVP_DigestVerifyFinal(3), EVP_PKEY_verify(3), DSA_verify(3), ECDSA_verify(3), X509_verify_cert(3)).
TRISTATE_LIBRARY = frozenset({
    "EVP_VerifyFinal", "EVP_DigestVerifyFinal", "EVP_DigestVerify", "EVP_PKEY_verify", "DSA_verify",
    "ECDSA_verify", "X509_verify_cert", "X509_verify", "OCSP_basic_verify", "PKCS7_verify",
})  # fmt: skip

_BLOCKS = {"compound_statement", "block"}
_JUMPS = {"goto_statement", "return_statement", "raise_statement"}
_LABELS = {"labeled_statement", "label_statement", "case_statement", "expression_case", "default_case"}
_CHECK_CALL = re.compile(r"(verify|check|valid|auth|cmp|compare)", re.IGNORECASE)


def check(src: Source, tristate: frozenset[str]) -> Iterator[Hit]:
    if src.language == "bash":
        return
    yield from _dead(src)
    if src.language == "c":
        yield from _tristate(src, tristate)


def _dead(src: Source) -> Iterator[Hit]:
    for block in src.of(*_BLOCKS):
        body = statements(block)
        for first, after in itertools.pairwise(body):
            if first.type not in _JUMPS or after.type in _LABELS or after.type.startswith("preproc"):
                continue  # a label is reachable; what the preprocessor keeps is not known here
            if src.text(after).strip() in (";", ""):
                continue
            text = f"{src.text(first)} then {src.text(after).split(chr(10), 1)[0]}"
            if after.type == "if_statement" or _CHECK_CALL.search(src.text(after)):
                yield hit(DEAD_CHECK, src, after, text)
            else:
                yield hit(DEAD_CODE, src, after, text)
            break  # one finding per block: the rest is dead for the same reason


def tristate_functions(src: Source) -> set[str]:
    """Functions of a C file that return both a negative value and 1."""
    found: set[str] = set()
    for name, fn in functions(src):
        values = {src.text(v).replace(" ", "") for r in src.of("return_statement", within=fn)
                  for v in src.of("number_literal", "unary_expression", within=r)}  # fmt: skip
        if "1" in values and any(v.startswith("-") and v[1:].isdigit() for v in values):
            found.add(name)
    return found


def _tristate(src: Source, tristate: frozenset[str]) -> Iterator[Hit]:
    for node in src.of("if_statement", "while_statement"):
        cond = condition(node)
        if cond is None:
            continue
        tested = negated(src, cond) or cond
        tested = unwrap(tested)
        if tested.type != "call_expression":
            continue
        callee = tested.child_by_field_name("function")
        if callee is not None and src.text(callee) in (tristate | TRISTATE_LIBRARY):
            yield hit(
                TRISTATE, src, node, f"if ({src.text(cond)})", detail=f"{src.text(callee)} is tri-state"
            )
