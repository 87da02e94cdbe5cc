"""Workflows: CNCF Serverless Workflow DSL 1.0 documents run as Bosun runs (docs/workflows.md).

This layer sits beside `engine/`: it imports `spec/`, `models/` and `tools/`, and the
engine knows nothing of it (a workflow is an agent whose model is the interpreter).
"""

from bosun.workflow.document import Workflow, build, load_workflow, parse
from bosun.workflow.emits import emitted, on_emit

__all__ = ["Workflow", "build", "emitted", "load_workflow", "on_emit", "parse"]
