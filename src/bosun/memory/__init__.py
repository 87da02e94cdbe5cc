"""Memory and context: sessions (a conversation rebuilt from the journal of its runs),
context assembly within a model's window, long-term facts with provenance, and their
retrieval. See docs/memory.md."""
