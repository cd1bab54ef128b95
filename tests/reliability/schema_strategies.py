"""Hypothesis strategies drawn from the OpenAPI document's JSON schemas, mostly right and sometimes wrong.

A fuzzer that only sends valid bodies tests nothing; one that only sends noise
never gets past the parser.  Each value here follows the declared schema
with probability, and otherwise is any JSON value (wrong type, missing
field, deep nesting, odd Unicode), so both the validation and the code
behind it are reached.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

ODD_TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", " ", "INC-0", "INC-99999999999999999999", "-1", "1e309", "NaN", "null", "☃", "\x00",
                     "../../etc/passwd", "<script>", "'; drop table incidents; --", "%ff", "１２３", "٣"]),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
)
ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats(allow_nan=False)
    | ODD_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ODD_TEXT, inner, max_size=4),
    max_leaves=12,
)


def from_schema(schema: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """Values for ``schema`` (the subset the document uses), with wrong ones mixed in."""
    return st.one_of(_right(schema, depth), ANY_JSON) if depth else _right(schema, depth) | ANY_JSON


def _right(schema: dict[str, Any], depth: int) -> st.SearchStrategy[Any]:
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if isinstance(kind, list):
        return st.one_of(*[_right({**schema, "type": k}, depth) for k in kind])
    if kind == "object":
        props = schema.get("properties") or {}
        required = set(schema.get("required") or [])
        fields = {name: from_schema(sub, depth + 1) for name, sub in props.items()}
        optional = {name: s for name, s in fields.items() if name not in required}
        base = st.fixed_dictionaries({n: s for n, s in fields.items() if n in required}, optional=optional)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            return st.tuples(base, st.dictionaries(ODD_TEXT, from_schema(extra, depth + 1), max_size=3)).map(
                lambda pair: {**pair[1], **pair[0]})
        return base
    if kind == "array":
        return st.lists(from_schema(schema.get("items") or {}, depth + 1), max_size=3 if depth else 6)
    if kind == "string":
        if schema.get("format") == "date-time":
            return st.datetimes().map(lambda d: d.isoformat() + "Z") | ODD_TEXT
        return ODD_TEXT
    if kind == "integer":
        return st.integers(min_value=-(2**40), max_value=2**40)
    if kind == "number":
        return st.floats(allow_nan=False, allow_infinity=False)
    if kind == "null":
        return st.none()
    return ANY_JSON
