"""Planning: from a forma and the current state to a changeset, and the DAG that runs it.

Imports nothing from formae but ``formae.model``.
"""

from formae.plan.changeset import Changeset, ManagedResource, PlannedUpdate, TypeSchema
from formae.plan.dag import CycleError, Dag, DagError, DependencyFailure, NodeState
from formae.plan.planner import PlanError, plan, plan_destroy

__all__ = [
    "Changeset",
    "CycleError",
    "Dag",
    "DagError",
    "DependencyFailure",
    "ManagedResource",
    "NodeState",
    "PlanError",
    "PlannedUpdate",
    "TypeSchema",
    "plan",
    "plan_destroy",
]
