"""Projections of the journal for people and tools: timelines, traces, metrics, costs."""
