"""The M-of-N search (docs/method.md, sections 2-4), from the inside out:

- `splits`: information-gain splits (sort and sweep); `complexity`: the rule complexity;
- `kernels`, `backends`: the prefix-count histograms on numpy, numba or torch;
- `unit`: candidates, Pareto front and choice per beta for one unit;
- `exact`: the threshold-aware exact search for small rules and the local improvement;
- `layer`: every unit of one layer (orderings, small-N exact search, a process pool);
- `network`: every layer of a network (examples, chain and paper modes) -> a `RuleSet`;
- `optimality`: each ordering against the exhaustive optimum on small layers;
- `rules_file`: the rule set as ``rules.json``.
"""

from mofn2logic.search.backends import DEVICES, Backend, make_backend
from mofn2logic.search.layer import ORDERS, LayerProblem, search_layer, search_unit
from mofn2logic.search.network import (
    CONV_POSITIONS,
    DEFAULT_BETAS,
    FIT_ON,
    MODES,
    check_betas,
    extract,
    optimality_report,
    predicted_class,
    propagate_thresholds,
    summarize,
)
from mofn2logic.search.rules_file import dumps as dumps_rules
from mofn2logic.search.rules_file import read_rules, write_rules

__all__ = [
    "extract", "optimality_report", "summarize", "predicted_class", "propagate_thresholds", "check_betas",
    "DEFAULT_BETAS", "MODES", "ORDERS", "DEVICES", "CONV_POSITIONS", "FIT_ON",
    "LayerProblem", "search_layer", "search_unit", "Backend", "make_backend",
    "read_rules", "write_rules", "dumps_rules",
]
