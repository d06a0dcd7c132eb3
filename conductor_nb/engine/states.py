"""Lifecycle states of runs and node runs: they live in :mod:`conductor_nb.model.states`
(the SVG picture reads them too); re-exported here for the engine's modules."""

from conductor_nb.model.states import NodeState, RunState, move_node, move_run

__all__ = ["NodeState", "RunState", "move_node", "move_run"]
