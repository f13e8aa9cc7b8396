"""Checks of run parameters (notebook parameters, source specs): a bad value names itself and what is allowed."""

from __future__ import annotations

from typing import Any, Iterable


class ParameterError(ValueError):
    """A notebook parameter has a value outside its allowed set; the message names both."""


def check_choice(name: str, value: Any, allowed: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``allowed``, else raise :class:`ParameterError`."""
    allowed = list(allowed)
    if value not in allowed:
        raise ParameterError(f"parameter {name}={value!r} is not allowed; choose one of {allowed}")
    return value


def check_range(name: str, value: Any, low: float | None = None, high: float | None = None,
                types: tuple[type, ...] = (int, float)) -> Any:
    """Return ``value`` if it is a number of ``types`` within ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, types):
        raise ParameterError(f"parameter {name}={value!r} must be of type {[t.__name__ for t in types]}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ParameterError(f"parameter {name}={value!r} must lie in [{low}, {high}]")
    return value
