"""A string type for credentials that never shows its value by accident."""

from __future__ import annotations

from typing import Final

_MASK: Final = "********"


class Secret:
    """Holds a secret value; ``str``/``repr``/f-strings print a mask.

    The value is reachable only through :meth:`reveal`, so a secret can travel through
    settings, exceptions and log calls without leaking: only code that must use the
    value (the credential check, the Kafka client config) asks for it.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({_MASK})"

    def __str__(self) -> str:
        return _MASK

    def __format__(self, spec: str) -> str:
        return _MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)
