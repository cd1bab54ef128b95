"""Playbook parameters: declared once, parsed, validated and documented from that declaration.

A ``Param`` says what a value is (its type, range, choices) and why it is
there (``help``).  ``parse_params`` turns chat text (``k=v``) or Python values
into typed values and raises ``BadInput`` naming the parameter and what was
expected, so a mistyped parameter never reaches a cluster.  ``usage`` and the
playbook documentation read the same declaration, so the help cannot drift.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.core.errors import BadInput


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()
TYPES = ("str", "int", "float", "bool", "duration", "list")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d)?$", re.IGNORECASE)
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}
_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


@dataclass(frozen=True)
class Param:
    """One declared parameter.

    ``type``: str, int, float, bool, duration (seconds; ``90``, ``15m``, ``2h``)
    or list (comma-separated words).  ``choices`` restricts a value (or each
    item of a list); ``minimum``/``maximum`` bound numbers and durations.
    ``from_diagnosis`` names keys of the incident's diagnosis evidence that can
    supply the value when the caller gives none.  ``check`` is a last,
    playbook-specific validation: it returns the (normalised) value or raises
    ``ValueError`` with a sentence that becomes the ``BadInput`` message.
    """

    name: str
    help: str
    type: str = "str"
    default: Any = REQUIRED
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    example: str | None = None
    from_diagnosis: tuple[str, ...] = ()
    check: Callable[[Any], Any] | None = None

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise ValueError(f"parameter {self.name}: type must be one of {TYPES}, not {self.type!r}")

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def expected(self) -> str:
        """What a valid value looks like, in words (used in messages and docs)."""
        if self.type == "list":
            what = "a comma-separated list" + (f" of {', '.join(self.choices)}" if self.choices else "")
        elif self.choices:
            what = "one of " + ", ".join(self.choices)
        else:
            what = {"str": "text", "int": "a whole number", "float": "a number", "bool": "true or false",
                    "duration": "a duration like 90s, 15m or 2h"}[self.type]
        bounds = []
        if self.minimum is not None:
            bounds.append(f"at least {_show_number(self.minimum, self.type)}")
        if self.maximum is not None:
            bounds.append(f"at most {_show_number(self.maximum, self.type)}")
        return what + (f" ({', '.join(bounds)})" if bounds else "")

    def usage(self) -> str:
        shown = f"{self.name}=<{self.example or self.type}>"
        return shown if self.required else f"[{shown}]"

    def parse(self, raw: Any) -> Any:
        """A typed, checked value; raises BadInput naming this parameter."""
        try:
            value = self._convert(raw)
            self._bounds(value)
            if self.check is not None:
                value = self.check(value)
        except (ValueError, TypeError) as exc:
            detail = str(exc) or f"expected {self.expected()}"
            raise BadInput(f"parameter `{self.name}`: {detail}.".replace("..", "."), field=self.name,
                           usage=self.usage()) from None
        return value

    def _convert(self, raw: Any) -> Any:
        bad = ValueError(f"expected {self.expected()}, not `{raw}`")
        value: Any  # its type is the parameter's declared type
        if self.type == "str":
            if not isinstance(raw, str) or not raw.strip():
                raise bad
            value = raw.strip()
        elif self.type == "int":
            if isinstance(raw, bool):
                raise bad
            try:
                value = int(str(raw).strip())
            except ValueError:
                raise bad from None
        elif self.type == "float":
            try:
                value = float(str(raw).strip())
            except ValueError:
                raise bad from None
        elif self.type == "bool":
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text not in _TRUE | _FALSE:
                raise bad
            return text in _TRUE
        elif self.type == "duration":
            value = parse_duration(raw, bad)
        else:  # list
            items = raw if isinstance(raw, (list, tuple)) else str(raw).split(",")
            value = [str(i).strip() for i in items if str(i).strip()]
            if not value:
                raise bad
            if self.choices:
                wrong = [i for i in value if i not in self.choices]
                if wrong:
                    raise ValueError(f"`{wrong[0]}` is not one of {', '.join(self.choices)}")
            return value
        if self.choices and str(value) not in self.choices:
            raise bad
        return value

    def _bounds(self, value: Any) -> None:
        if self.type not in ("int", "float", "duration"):
            return
        if (self.minimum is not None and value < self.minimum) or (self.maximum is not None and value > self.maximum):
            raise ValueError(f"expected {self.expected()}, not `{_show_number(value, self.type)}`")


def parse_duration(raw: Any, error: Exception | None = None) -> float:
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return float(raw)
    match = _DURATION.match(str(raw).strip())
    if not match:
        raise error or ValueError(f"expected a duration like 90s, 15m or 2h, not `{raw}`")
    unit = match.group(2).lower() if match.group(2) else None
    return float(match.group(1)) * _UNIT[unit]


def _show_number(value: float, type_: str) -> str:
    if type_ == "duration":
        return format_duration(value)
    return str(int(value)) if float(value).is_integer() else str(value)


def format_duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def parse_params(declared: Sequence[Param], given: Mapping[str, Any],
                 evidence: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """All declared parameters, typed: given value, else diagnosis evidence, else default.

    Unknown names and missing required values are ``BadInput`` naming the
    parameter and listing what the playbook accepts.
    """
    by_name = {p.name: p for p in declared}
    usage = " ".join(p.usage() for p in declared)
    for name in given:
        if name not in by_name:
            known = ", ".join(by_name) or "none"
            raise BadInput(f"unknown parameter `{name}`; this playbook takes: {known}.", field=name, usage=usage)
    values: dict[str, Any] = {}
    for param in declared:
        raw = given.get(param.name)
        if raw is None and evidence:
            raw = next((evidence[k] for k in param.from_diagnosis if evidence.get(k) not in (None, "")), None)
        if raw is None:
            if param.required:
                hint = f" e.g. {param.name}={param.example}" if param.example else ""
                raise BadInput(f"parameter `{param.name}` is required ({param.help});{hint}".rstrip(";") + ".",
                               field=param.name, usage=usage)
            values[param.name] = list(param.default) if isinstance(param.default, (list, tuple)) else param.default
            continue
        values[param.name] = param.parse(raw)
    return values
