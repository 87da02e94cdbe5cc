"""Bosun's own prompt-injection corpus and its replay harness (issue 14).

Four domains (workspace: mail, calendar, files; banking; messaging; travel), each with
realistic tools (`tools.py`), scenarios and attacker goals; `generate.corpus()` yields
the attacks with their benign twins, and `replay.Replayer` runs them through the real
Runtime with the `scripted` provider playing a hijacked model.

It is a package under tests/injection/ so the tests import it (pytest puts that folder
on the path) and bench/injection.py imports it the same way (it adds the folder to
`sys.path`): the tools are then known by the same reference (`injection_corpus.tools:...`)
from both, which a run's pinned tool definitions need.
"""

from .case import Call, Case
from .generate import DOMAINS, corpus

__all__ = ["DOMAINS", "Call", "Case", "corpus"]
