"""Which arguments of a proposed call came from untrusted content (a sign of injection).

An argument is *tainted* when one of its values appears in some untrusted text
(output of a tool declared `trusted=False`: an e-mail, a web page) and in none
of the trusted texts (the user's request, trusted tool output, the
instructions). Values are compared like this:

- strings: case-insensitively, as a whole token (not inside a longer word or
  number), after trimming; strings shorter than 4 characters are ignored
  ("yes", "EUR", "1") because they appear everywhere;
- numbers: numerically against every number written in the text, with thousands
  separators and currency signs ignored ("$1,500.00" is 1500); numbers with fewer
  than 3 digits (0-99 without decimals, such as a quantity) are ignored;
- booleans and None are ignored; lists and dicts are searched leaf by leaf, and
  a tainted leaf taints its top-level argument.

It is a heuristic that errs on the side of asking: a value the model computed
itself is never tainted; a value copied from an e-mail the user never
mentioned is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

MIN_STRING_LENGTH = 4
MIN_NUMBER_DIGITS = 3

_NUMBER = re.compile(r"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\w])")


def _leaves(value: Any) -> Iterable[Any]:
    if isinstance(value, Mapping):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from _leaves(item)
    else:
        yield value


class _Text:
    """One text, lower-cased once; the numbers written in it are found on first need."""

    __slots__ = ("_numbers", "lower", "text")

    def __init__(self, text: str):
        self.text = text
        self.lower = text.lower()
        self._numbers: set[float] | None = None

    @property
    def numbers(self) -> set[float]:
        if self._numbers is None:
            self._numbers = set()
            for token in _NUMBER.findall(self.text):
                try:
                    self._numbers.add(float(token.replace(",", "")))
                except ValueError:
                    continue
        return self._numbers

    def contains(self, value: Any) -> bool:
        if isinstance(value, bool) or value is None:
            return False
        if isinstance(value, int | float):
            return float(value) in self.numbers
        needle = str(value).strip().lower()
        haystack = self.lower
        start = haystack.find(needle)
        while start != -1:
            end = start + len(needle)
            before = haystack[start - 1] if start else " "
            after = haystack[end] if end < len(haystack) else " "
            if not _word(before) and not _word(after):
                return True
            start = haystack.find(needle, start + 1)
        return False


@lru_cache(maxsize=256)
def _prepared(text: str) -> _Text:
    # A run's texts are checked again at every later call: prepare each once.
    return _Text(text)


def _word(char: str) -> bool:
    return char.isalnum() or char == "_"


def _significant(value: Any) -> bool:
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, int | float):
        if value != value or value in (float("inf"), float("-inf")):
            return False
        text = str(int(value)) if float(value).is_integer() else repr(float(value))
        return sum(c.isdigit() for c in text) >= MIN_NUMBER_DIGITS
    if isinstance(value, str):
        return len(value.strip()) >= MIN_STRING_LENGTH
    return False


def tainted_arguments(
    args: Mapping[str, Any], untrusted_texts: Sequence[str], trusted_texts: Sequence[str]
) -> tuple[str, ...]:
    """Names of the arguments with a value found in untrusted text and in no trusted text."""
    if not untrusted_texts or not args:
        return ()
    untrusted = [_prepared(t) for t in untrusted_texts if t]
    trusted = [_prepared(t) for t in trusted_texts if t]
    tainted = []
    for name, value in args.items():
        for leaf in _leaves(value):
            if not _significant(leaf):
                continue
            if any(t.contains(leaf) for t in untrusted) and not any(
                t.contains(leaf) for t in trusted
            ):
                tainted.append(name)
                break
    return tuple(tainted)


__all__ = ["MIN_NUMBER_DIGITS", "MIN_STRING_LENGTH", "tainted_arguments"]
