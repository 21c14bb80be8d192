"""From a chain-mode rule set to a checked logic program: compile, fold, prune, check."""

from mofn2logic.program.check import check_program
from mofn2logic.program.compile import compile_program
from mofn2logic.program.fold import activation_range, fold_constants
from mofn2logic.program.prune import dependency_graph, prune

__all__ = ["compile_program", "check_program", "fold_constants", "activation_range", "prune", "dependency_graph"]
