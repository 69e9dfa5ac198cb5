"""hospops: the fuhosp.ops orchestrator (CLI, policy, store, approvals, runs, reports)."""

__version__ = "0.1.0"
