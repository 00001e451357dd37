"""Marked documents → Spec: the JSON Schema first, then the semantic rules, then the parser; every error
located, all reported at once (raised together as SpecErrors; the cli prints them).
"""

from __future__ import annotations

from typing import Mapping

from netspec.errors import SpecError, SpecErrors
from netspec.frontend import formats
from netspec.frontend.parse import parse_spec
from netspec.frontend.rules import resolve_params, rule_errors
from netspec.frontend.schema import schema_errors
from netspec.frontend.syntax import Spec
from netspec.frontend.yaml_source import Document, MDict

# Errors shown from one run.  A file of 19,900 empty items is within every size limit; its 19,900 errors (4 MB
# of text) would bury the first one, and one look at the first hundred tells what is wrong.
MAX_ERRORS = 100


def validate(documents: list[Document], overrides: Mapping[str, object] | None = None) -> Spec:
    documents = [formats.upgrade_in_memory(doc) for doc in documents]  # an older format, read as the current
    schema = [e for doc in documents for e in schema_errors(doc)]
    if any(not isinstance(doc.data, MDict) for doc in documents):
        raise SpecErrors(schema)
    # The rules run even when the schema failed (they skip what is malformed), so that a typo in a key and a
    # misspelt op elsewhere are reported by the same run.
    semantic = rule_errors(documents)
    # Where a rule and the schema flag the same spot, the rule's message is the more specific one.
    ruled = {s.mark for s in semantic}
    errors = [e for e in schema if e.mark not in ruled] + semantic
    params: dict[str, object] = {}
    if not schema:  # param declarations are read as the schema shapes them
        params, param_errors = resolve_params(documents[0], overrides or {})
        errors += param_errors
    if errors:
        raise SpecErrors(_in_source_order(errors, documents))
    return parse_spec(documents, params)


def _in_source_order(errors: list[SpecError], documents: list[Document]) -> list[SpecError]:
    """Errors file by file (the spec first, then its imports), top to bottom; duplicates dropped."""
    rank = {doc.name: i for i, doc in enumerate(documents)}
    unique = {(e.mark, e.message): e for e in errors}
    ordered = sorted(unique.values(), key=lambda e: (rank.get(e.mark.file, len(rank)), e.mark.line, e.mark.col))
    if len(ordered) <= MAX_ERRORS:
        return ordered
    rest = ordered[MAX_ERRORS]
    return ordered[:MAX_ERRORS] + [SpecError(f"… and {len(ordered) - MAX_ERRORS:,} more errors from here on; "
                                             f"only the first {MAX_ERRORS} are shown", rest.mark,
                                             hint="fix these and run again")]
