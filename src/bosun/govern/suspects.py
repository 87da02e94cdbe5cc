"""One proposed call's provenance, and which of its sinks default policy v2 holds.

`call_provenance` gives every argument its origin (the least trusted of its leaves'; see
`bosun.govern.provenance`) and then picks the *suspect* sinks: an egress or target whose
value came from untrusted content or from nowhere, or an amount that came from untrusted
content, unless the user's request delegated it.

Delegation ("pay the bill in the email"). A user may ask the agent to act on a value in
untrusted content, and then the value legitimately comes from there. Bosun accepts that
only when the user's request names both ends: the *source* (a distinctive word of the
name of the untrusted tool the value was first seen in: `email` of `read_email`) and the
*action* (a distinctive word of the sink tool's name that is not in the source's: `pay`
of `pay_bill`). Words match as whole words of the request or by a shared prefix of at
least three letters ("pay" and "payment", "email" and "emails"); generic verbs (read,
get, list, search, fetch...) are not distinctive. So "summarise my latest email" delegates
nothing (an injected `send_money` is held), while "pay the bill in the email" lets
`pay_bill` use the IBAN and amount the e-mail holds. The limit, stated plainly: within a
delegated source the attacker who wrote it chooses the value (a forged bill is paid); a
model-made value (origin `none`) is never delegated.

What a delegation lets through is narrowed (docs/governance.md, "Delegation"): one value
per (sink tool, argument), the first one used (`_first_taken`); among several addresses
or accounts in a source, the record the request's words pick (`records_of_call`); an
address whose domain the request names is pointed at (`_names_party`); a target only from
a call the user named, by the tool's verb, and when trusted data lists it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from bosun.govern.provenance import NOWHERE, RANK, ProvenanceIndex, Source, leaves
from bosun.spec.vocab import Origin

GENERIC = frozenset(
    {
        *("get", "read", "list", "fetch", "search", "find", "query", "open", "lookup", "look"),
        *("load", "view", "show", "check", "browse", "retrieve", "see", "tool", "tools", "api"),
        *("all", "my", "the", "new", "latest", "recent", "info", "details", "data", "by", "for"),
        *("of", "to", "from", "in", "on", "and", "or", "a", "an", "with", "mcp"),
    }
)
_WORDS = re.compile(r"[a-z]+")
_NAME = re.compile(r"(?<=[a-z,;:] )[A-Z][a-z]{2}\b")
MIN_PREFIX = 3


#: Words people use for the same source or action; a word stands for its groups too.
SYNONYMS: dict[str, frozenset[str]] = {
    "~mail": frozenset({"email", "mail", "inbox", "wrote", "mailbox"}),
    "~document": frozenset(
        {"document", "doc", "file", "bill", "invoice", "notice", "letter", "txt", "pdf"}
    )
    | frozenset({"contract", "attachment"}),
    "~web": frozenset({"webpage", "website", "site", "page", "web", "url", "link", "homepage"}),
    "~payments": frozenset({"transaction", "transactions", "payment", "statement"}),
    "~chat": frozenset({"dm", "dms", "direct", "chat", "slack"}),
    "~money": frozenset({"pay", "settle", "refund", "return", "transfer", "wire", "money"})
    | frozenset({"reimburse"}),
    "~reply": frozenset({"reply", "answer", "respond", "write", "forward", "send", "tell"}),
    "~access": frozenset({"give", "grant", "invite", "add", "access"}),
    "~schedule": frozenset({"schedule", "book", "meeting", "meet", "event", "invite"}),
    "~update": frozenset({"update", "change", "adjust", "raise", "increase", "standing"}),
}
#: Verbs of tools that destroy what they target: a target only untrusted text named is
#: suspect there even when trusted data lists it too (a listing shows it exists, not
#: that the user wants it gone).
DESTRUCTIVE = frozenset(
    {"delete", "remove", "drop", "revoke", "purge", "erase", "wipe", "cancel", "deactivate"}
)


STOPWORDS = frozenset(
    {
        *("please", "what", "about", "with", "that", "this", "them", "they", "their", "your"),
        *("have", "need", "want", "could", "would", "should", "also", "then", "there", "here"),
        *("after", "before", "according", "everyone", "people", "someone", "thing", "things"),
        *("me", "can", "you", "for", "and", "the", "who", "was", "were", "are", "into", "from"),
        *("latest", "recent", "last", "first", "next", "today", "tomorrow", "some", "any"),
    }
)


@lru_cache(maxsize=256)
def _describing(request: str, source_tool: str, sink_tool: str) -> frozenset[str]:
    """The request's own words for what it is about (not the tools' words, not synonyms,
    not filler): a delegated source must hold one of them."""
    tools = name_words(source_tool) | name_words(sink_tool)
    names = {m.lower() for m in _NAME.findall(request)}  # "Mia", "Bob": short but precise
    return frozenset(
        w
        for w in request_words(request)
        if (len(w) >= 4 or w in names)
        and w not in STOPWORDS
        and w not in GENERIC
        and not any(_like(w, t) for t in tools)
        and not _expand(frozenset({w})) - {w}  # "reply", "bill": how, not which
    )


@lru_cache(maxsize=1024)
def name_words(name: str) -> frozenset[str]:
    """Distinctive words of a tool's name: `send_money` -> {send, money}."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name).lower()
    return frozenset(w for w in _WORDS.findall(spaced) if w not in GENERIC and len(w) >= 2)


@lru_cache(maxsize=256)
def request_words(text: str) -> frozenset[str]:
    """The request's words, without filler ("for" is no prefix of "forward")."""
    return frozenset(
        w for w in _WORDS.findall(text.lower()) if w not in STOPWORDS and w not in GENERIC
    )


def _like(a: str, b: str) -> bool:
    if a == b:
        return True
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return len(short) >= MIN_PREFIX and long_.startswith(short)


@lru_cache(maxsize=4096)
def _expand(words: frozenset[str]) -> frozenset[str]:
    """The words and the synonym groups they belong to."""
    out = set(words)
    for group, members in SYNONYMS.items():
        if any(_like(w, m) for w in words for m in members):
            out.add(group)
    return frozenset(out)


def _says(said: frozenset[str], meant: frozenset[str]) -> bool:
    if said & meant:
        return True
    plain = [w for w in said if not w.startswith("~")]
    return any(_like(s, m) for m in meant if not m.startswith("~") for s in plain)


def delegated(request: str, source_tool: str, sink_tool: str, referenced: bool = False) -> bool:
    """Whether the user's request asked to act, with this sink tool, on what this source
    tool returned (see the module docstring). `referenced`: the request itself named that
    call's input (its URL, its file name), which names the source exactly."""
    said = _expand(request_words(request))
    source = name_words(source_tool)
    action = name_words(sink_tool) - source
    if not action or not (referenced or (source and _says(said, _expand(source)))):
        return False
    return _says(said, _expand(action))


@dataclass(frozen=True, slots=True)
class CallProvenance:
    """Provenance of one call's arguments, and what default policy v2 makes of its sinks."""

    sources: dict[str, Source] = field(default_factory=dict)  # argument -> worst leaf's
    values: dict[str, Any] = field(default_factory=dict)  # argument -> that leaf's value
    sinks: dict[str, str] = field(default_factory=dict)
    suspect: tuple[str, ...] = ()
    delegated: tuple[str, ...] = ()

    @property
    def origins(self) -> dict[str, str]:
        return {name: str(s.origin) for name, s in self.sources.items()}

    def named(self, origin: str) -> tuple[str, ...]:
        return tuple(n for n, s in self.sources.items() if s.origin == origin)

    def record(self) -> dict[str, Any] | None:
        """What is journaled with the decision: sinks, and arguments not from the user or
        the instructions (None when that is nothing)."""
        out: dict[str, Any] = {}
        for name, source in self.sources.items():
            if name in self.sinks or source.origin == Origin.UNTRUSTED:
                entry = source.record()
                if name in self.sinks:
                    entry["sink"] = self.sinks[name]
                if name in self.suspect:
                    entry["suspect"] = True
                elif name in self.delegated:
                    entry["delegated"] = True
                out[name] = entry
        return out or None

    def explain(self, sensitive: tuple[str, ...] = ()) -> str:
        """ "`to` = mark@evil.example, first seen in `read_email` call 3 (c3), not in the
        user's request", one clause per suspect argument (sensitive values masked)."""
        parts = []
        for name in self.suspect:
            value = "[redacted]" if name in sensitive else _short(self.values.get(name))
            parts.append(
                f"`{name}` = {value}, {self.sources[name].says()}, not in the user's request"
            )
        return "; ".join(parts)


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def call_provenance(
    index: ProvenanceIndex,
    args: Mapping[str, Any],
    sinks: Mapping[str, str],
    *,
    request: str,
    tool: str,
    effect: str = "write",
) -> CallProvenance:
    """Every argument's origin, and the suspect and delegated sinks (module docstring)."""
    index.catch_up()
    sources: dict[str, Source] = {}
    values: dict[str, Any] = {}
    for name, value in args.items():
        kind = sinks.get(name)
        worst: Source | None = None
        many = isinstance(value, Mapping | list | tuple)
        for leaf in (leaf for _, leaf in leaves(value)) if many else (value,):
            found = index.source_of(leaf, amount=kind == "amount")
            if (
                kind == "target"
                and found is not None
                and found.origin == Origin.TRUSTED
                and (effect == "irreversible" or name_words(tool) & DESTRUCTIVE)
            ):
                found = index.untrusted_sighting(leaf) or found
            if found is not None and (worst is None or RANK[found.origin] > RANK[worst.origin]):
                worst, values[name] = found, leaf
        if worst is not None:
            sources[name] = worst
    suspect, passed = [], []
    for name, kind in sinks.items():
        source = sources.get(name)
        if source is None or (effect == "read" and kind != "egress"):
            continue  # what a read reads, or counts, moves nothing; where it fetches from does
        held = source.origin == Origin.UNTRUSTED or (
            source.origin == Origin.NONE and kind != "amount"
        )
        if not held:
            continue
        if _delegates(
            index, request, tool, kind, source, values.get(name), effect
        ) and _first_taken(index, tool, name, args[name]):
            passed.append(name)
        else:
            suspect.append(name)
    if effect != "read":  # an address or a link written into a message is an egress too
        for name, value in args.items():
            if name in sinks or name not in sources:
                continue
            many = isinstance(value, Mapping | list | tuple)
            for leaf in (leaf for _, leaf in leaves(value)) if many else (value,):
                found = index.embedded(leaf)
                if found is not None and found.origin == Origin.UNTRUSTED:
                    # Never delegated: "post a digest" asks for a summary, not its links.
                    sources[name], values[name] = found, leaf
                    suspect.append(name)
                    break
    present = {n: k for n, k in sinks.items() if n in args}
    return CallProvenance(sources, values, present, tuple(suspect), tuple(passed))


def _names_party(request: str, value: Any) -> bool:
    """Whether the request names the party an address belongs to by its domain's name:
    "answer Greenleaf Catering" and `orders@greenleaf-catering.example` (every word of the
    label before the top-level domain, at least two letters each, is a word of the
    request). An attacker's address elsewhere (`x@evil.example`, `greenleaf@evil.example`)
    is not named so."""
    if not isinstance(value, str) or "@" not in value:
        return False
    labels = value.strip().lower().rpartition("@")[2].split(".")
    if len(labels) < 2:
        return False
    words = _WORDS.findall(labels[-2])
    said = set(_WORDS.findall(request.lower()))
    return bool(words) and all(len(w) >= 2 and w in said for w in words)


def _verb(tool: str) -> str | None:
    """The first word of a tool's name, its verb by convention (`book_hotel` -> book)."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", tool).lower()
    words = _WORDS.findall(spaced)
    return words[0] if words else None


def _first_taken(index: ProvenanceIndex, tool: str, name: str, value: Any) -> bool:
    """One delegated value per (sink tool, argument) per run: the values the first
    delegated call used (a reply goes to the one sender, a bill has one payee). A second,
    different untrusted value is what an injection adds, so it is suspect; the same value
    again passes. Values an approver let through count as taken too."""
    mine: set[str] = set()
    for _, leaf in leaves(value):
        found = index.source_of(leaf)
        if found is not None and found.origin == Origin.UNTRUSTED:
            mine.add(str(leaf).strip().lower())
    taken = index.taken(tool, name)
    if taken and not mine <= taken:
        return False
    index.delegations.setdefault((tool, name), set()).update(mine)
    return True


def _delegates(
    index: ProvenanceIndex,
    request: str,
    tool: str,
    kind: str,
    source: Source,
    value: Any,
    effect: str = "write",
) -> bool:
    """Delegation, with its refusals: never a made-up value, never a target unless the
    user named the very call it came from (its URL or file name: "book the hotel this page
    recommends") and the tool does not destroy it, never a kind of value the request itself
    gives (an IBAN in the request means the payee is the user's)."""
    if source.origin != Origin.UNTRUSTED:
        return False
    call = source.call_id or ""
    referenced = call in index.referenced or (kind == "egress" and _names_party(request, value))
    if kind == "target":
        # "Book the hotel this page recommends": the user named the page (its URL, its file
        # name), said the tool's verb (`book` of `book_hotel`), and the thing is one the
        # user's own (trusted) data lists; never for a tool that destroys.
        verb = _verb(tool)
        if not referenced or not verb or verb in DESTRUCTIVE:
            return False
        if not index.listed(value) or not delegated(request, source.tool or "", verb, True):
            return False
    if value is not None and index.user_gave(value):
        return False
    if not delegated(request, source.tool or "", tool, referenced):
        return False
    held = index.keys_of_call(call)
    kind = index.kind_of(value)
    words = _describing(request, source.tool or "", tool)
    if kind is not None and sum(1 for k in held if k.startswith(kind)) > 1:
        # Several addresses (accounts, links) in it: the user's words must pick the record
        # (line) that holds this one ("refund Mia" -> the transaction naming Mia; "the
        # caterer's e-mail about Friday" -> that inbox line, not the newsletter's); an
        # account's record must hold no other account. With no describing words an
        # account is never picked (which one is unclear), an address or link is.
        account = kind in ("i:", "d:")
        if not words:
            return not account
        return any(
            (not account or sum(1 for k in row if k.startswith(kind)) == 1)
            and any(_like(w, k[2:]) for w in words for k in row if k.startswith("w:"))
            for row in index.records_of_call(call, value)
        )
    if referenced:
        return True
    # Which e-mail (page, file) the user meant: it holds a word the request describes it by
    # (a request with no such word, "pay the bill in my latest email", points at any).
    return not words or any("w:" + w in held for w in words)


__all__ = ["NOWHERE", "CallProvenance", "call_provenance", "delegated", "name_words"]
