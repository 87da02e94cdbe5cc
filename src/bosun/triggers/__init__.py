"""Triggers: what starts runs without a person (issue 16): signed webhooks, cron schedules,
queue subscriptions (NATS JetStream) and CloudEvents emitted by other runs.

Every trigger starts its target (an agent file or a workflow file, `target.py`) through one
path, `fire.fire`: the event's id is the run's idempotency key, so a redelivered event never
starts a second run, and the trigger's counters (received, started, deduplicated, rejected,
dead-lettered) live in the shared store, the same for every process serving the file.
"""

from bosun.triggers.spec import TriggersFile, TriggerSpec, load_triggers
from bosun.triggers.target import Target, load_target

__all__ = ["Target", "TriggerSpec", "TriggersFile", "load_target", "load_triggers"]
