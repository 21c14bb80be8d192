"""rules.json: version 2 (a literal table per unit, rules as references into it) round-trips the
IR exactly and deterministically; version 1 files still load; hostile files are refused with one
line that says where, what was expected and what arrived."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from mofn2logic.errors import ProgramError
from mofn2logic.ir.network import ConvAttrs
from mofn2logic.ir.rules import FrontPoint, LayerRules, RuleSet, ScoredRule, ThresholdLiteral, UnitRules
from mofn2logic.ir.steps import Flatten, MaxPool
from mofn2logic.search import rules_file
from mofn2logic.search.rules_file import dumps, dumps_v1, from_dict, loads, read_rules, write_rules

BETAS = (0.0, 0.2, 1.0)


def _unit(rng: np.random.Generator, unit: int, conv: bool, n_inputs: int, thresholds: np.ndarray | None,
          head: bool) -> UnitRules:
    """A unit whose rules are prefixes of one order (method weight) or another order (gain, small)."""
    def literal(i: int) -> ThresholdLiteral:
        t = float(thresholds[i]) if thresholds is not None else float(np.float32(rng.normal()))
        offset = (int(rng.integers(-2, 3)), int(rng.integers(-2, 3))) if conv else None
        return ThresholdLiteral(i, t, bool(rng.random() < 0.6), offset)

    order = [literal(int(i)) for i in rng.permutation(n_inputs)[: int(rng.integers(0, n_inputs + 1))]]
    rules = []
    for beta in BETAS:
        method = str(rng.choice(["weight", "weight", "gain", "small"]))
        if method == "weight" or not order:
            lits = tuple(order[: int(rng.integers(0, len(order) + 1))])
        else:  # another order: some of the table's literals, shuffled, maybe one the others lack
            pick = rng.permutation(len(order))[: int(rng.integers(1, len(order) + 1))]
            lits = tuple(order[int(k)] for k in pick)
            if rng.random() < 0.3:
                lits += (literal(int(rng.integers(n_inputs))),)
        rules.append(ScoredRule(beta=beta, n=len(lits), m=int(rng.integers(0, len(lits) + 2)),
                                error=float(rng.integers(0, 500)) / 500, complexity=float(rng.random()),
                                literals=lits, method=method))
    front = tuple(FrontPoint(int(rng.integers(0, 9)), int(rng.integers(0, 9)), float(rng.random()),
                             float(rng.random())) for _ in range(int(rng.integers(0, 5))))
    return UnitRules(unit=unit, threshold=float(rng.normal()) if head else None, rules=tuple(rules), front=front)


def random_rules(seed: int) -> RuleSet:
    """A conv layer and two dense layers, chain mode (one threshold per input) or paper mode (per rule)."""
    rng = np.random.default_rng(seed)
    mode = str(rng.choice(["chain", "paper"]))
    shared = mode == "chain"
    c_in, c_out = int(rng.integers(1, 4)), int(rng.integers(1, 5))
    hidden, k = int(rng.integers(1, 12)), int(rng.integers(2, 5))
    n_flat = c_out * 9

    def thr(n: int) -> np.ndarray | None:
        return rng.normal(size=n).astype(np.float32).astype(float) if shared else None

    t_conv, t_flat, t_hidden = thr(c_in), thr(n_flat), thr(hidden)

    conv = LayerRules(
        name="conv 'one'", kind="conv", mode=mode, order="weight", activation="relu", fan_in=c_in * 9,
        input_tensor="image", output_tensor="c1", input_shape=(c_in, 6, 6), output_shape=(c_out, 6, 6),
        n_examples=300, units=tuple(_unit(rng, u, True, c_in, t_conv, True) for u in range(c_out)),
        conv=ConvAttrs((3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1), conv_position="all", chained=False)
    steps = (MaxPool(kernel=(2, 2), strides=(2, 2), input="c1", output="p", node="pool_node"),
             Flatten(axis=1, input="p", output="flat"))
    dense = LayerRules(
        name="fc1", kind="dense", mode=mode, order="best", activation="relu", fan_in=n_flat, input_tensor="flat",
        output_tensor="h", input_shape=(n_flat,), output_shape=(hidden,), n_examples=50,
        units=tuple(_unit(rng, u, False, n_flat, t_flat, True) for u in range(hidden) if rng.random() < 0.9)
        or (_unit(rng, 0, False, n_flat, t_flat, True),),
        steps=steps, chained=shared, fit_on="program" if shared else "network")
    out = LayerRules(
        name="ünïcødé out", kind="dense", mode=mode, order="weight", activation="softmax", fan_in=hidden,
        input_tensor="h", output_tensor="y", input_shape=(hidden,), output_shape=(k,), n_examples=50,
        units=tuple(_unit(rng, u, False, hidden, t_hidden, False) for u in range(k)), chained=shared)
    prov = json.dumps({"package": "mofn2logic", "options": {"seed": seed, "betas": list(BETAS)}}, sort_keys=True)
    return RuleSet(betas=BETAS, layers=(conv, dense, out), provenance=prov)


# --------------------------------------------------------------------------- round trips

def test_v2_round_trip_of_the_demo_rule_set(default_rules, tmp_path):
    text = dumps(default_rules)
    doc = json.loads(text)
    assert doc["format"] == "mofn2logic-rules" and doc["version"] == 2
    assert loads(text) == default_rules
    path = tmp_path / "rules.json"
    write_rules(default_rules, path)
    assert path.read_text(encoding="utf-8") == text and read_rules(path) == default_rules
    assert dumps(loads(text)) == text  # deterministic: the same rule set, the same bytes
    assert len(text) * 4 < len(dumps_v1(default_rules))
    dense = next(la for la in doc["layers"] if la["kind"] == "dense")
    assert dense["input_thresholds"] is not None  # chain mode: one threshold per input, stated once
    assert all("literals" not in r for u in dense["units"] for r in u["rules"])  # weight order: prefixes


@pytest.mark.parametrize("seed", range(25))
def test_v2_round_trip_of_random_rule_sets(seed):
    rs = random_rules(seed)
    text = dumps(rs)
    assert loads(text) == rs
    assert dumps(loads(text)) == text
    doc = json.loads(text)
    if rs.layers[1].mode == "chain":
        assert all(la["input_thresholds"] is not None for la in doc["layers"])
        assert all("threshold" not in u["literals"] for la in doc["layers"] for u in la["units"])


def test_older_files_lack_fit_on_and_chained():
    rs = next(r for r in map(random_rules, range(50)) if r.layers[1].fit_on == "program")
    doc = rules_file.to_dict(rs)
    for la in doc["layers"]:
        del la["fit_on"]
    assert {la.fit_on for la in from_dict(doc).layers} == {"network"}
    doc["layers"][1]["fit_on"] = "atoms"
    with pytest.raises(ProgramError, match=r"layer 'fc1' fit_on is \"atoms\"; expected one of network, program"):
        from_dict(doc, "rules.json")


def test_v2_refers_to_a_table():
    rs = random_rules(3)
    doc = rules_file.to_dict(rs)
    for la, layer in zip(doc["layers"], rs.layers):
        for u, unit in zip(la["units"], layer.units):
            table = u["literals"]
            assert len(set(zip(table["input"], table["sign"], *(table[c] for c in ("threshold", "dy", "dx")
                                                                  if c in table)))) == len(table["input"])
            for r, rule in zip(u["rules"], unit.rules):
                refs = r.get("literals", range(r["n"]))
                assert [table["input"][k] for k in refs] == [li.input for li in rule.literals]


def test_v1_files_still_load(default_rules):
    text = dumps_v1(default_rules)
    assert json.loads(text)["version"] == 1
    assert loads(text) == default_rules
    for seed in range(5):
        rs = random_rules(seed)
        assert loads(dumps_v1(rs)) == rs


def test_v1_reader_stays_strict(default_rules):
    doc = rules_file.to_dict_v1(default_rules)
    doc["layers"][0]["units"][0]["rules"][0]["literals"][0]["threshold"] = math.nan
    with pytest.raises(ProgramError, match=r"literal #0 threshold is NaN; expected a finite number"):
        from_dict(doc)


def test_the_strict_json_reader_refuses_nan(default_rules):
    text = dumps(default_rules).replace('"threshold": [', '"threshold": [NaN,', 1)
    with pytest.raises(ProgramError, match="not strict JSON"):
        loads(text)


# --------------------------------------------------------------------------- hostile files

def _doc() -> dict:
    seed = next(s for s in range(50) if random_rules(s).layers[0].mode == "chain")
    return rules_file.to_dict(random_rules(seed))


def _dense(doc: dict) -> dict:
    return doc["layers"][1]


def _set(path: str, value):
    """A v2 document with the value at `path` (keys and indices separated by '/') replaced."""
    def edit(doc: dict) -> dict:
        node = doc
        keys = [int(k) if k.lstrip("-").isdigit() else k for k in path.split("/")]
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value
        return doc
    return edit


def _paper_doc() -> dict:
    docs = (rules_file.to_dict(random_rules(s)) for s in range(50))
    return next(d for d in docs if _dense(d)["input_thresholds"] is None and _dense(d)["units"][0]["literals"]["input"])


HOSTILE = [
    (_set("layers/1/units/0/literals/input/0", 10**6), r"literals input\[0\] is 1000000; expected an integer from 0 to \d+"),
    (_set("layers/1/units/0/literals/input/0", -1), r"literals input\[0\] is -1; expected an integer from 0"),
    (_set("layers/1/units/0/literals/input/0", True), r"literals input\[0\] is true; expected an integer"),
    (_set("layers/1/units/0/literals/input/0", 1.5), r"literals input\[0\] is 1.5; expected an integer"),
    (_set("layers/1/units/0/literals/input", "0,1"), r"literals input is \"0,1\"; expected a list"),
    (_set("layers/1/units/0/literals/sign", "+x"), r"literals sign is \"\+x\"; expected \d+ characters, each \+ or -"),
    (_set("layers/1/units/0/literals/sign", 1), r"literals sign is 1; expected"),
    (_set("layers/1/units/0/literals/thresholds", [1.0]), r"literals has an unknown field 'thresholds'"),
    (_set("layers/1/units/0/literals/dy", [0]), r"literals has an unknown field 'dy'"),
    (_set("layers/1/units/0/rules/0/literals", [10**9]), r"rule #0 literals\[0\] is 1000000000; expected an integer"),
    (_set("layers/1/units/0/rules/0/literals", [0] * 49), r"rule #0 says n = \d+ but lists 49 literals"),
    (_set("layers/1/units/0/rules/0/n", 10**6), r"rule #0 says n = 1000000"),
    (_set("layers/1/units/0/rules/0/n", -3), r"rule #0 n is -3; expected an integer from 0"),
    (_set("layers/1/units/0/rules/0/m", "2"), r"rule #0 m is \"2\"; expected an integer"),
    (_set("layers/1/units/0/rules/0/error", math.nan), r"rule #0 error is NaN; expected a finite number >= 0"),
    (_set("layers/1/units/0/rules/0/complexity", math.inf), r"rule #0 complexity is Infinity; expected a finite"),
    (_set("layers/1/units/0/rules/0/beta", 10**400), r"rule #0 beta is \d+; expected a finite number"),
    (_set("layers/1/units/0/rules/0/literal", [0]), r"rule #0 has an unknown field 'literal'"),
    (_set("layers/1/units/0/front/error", [math.nan]), r"front error( has 1 entries; expected \d+|\[0\] is NaN)"),
    (_set("layers/1/units/0/front", {"n": [1], "m": [1], "error": [math.nan], "complexity": [0.5]}),
     r"front error\[0\] is NaN; expected a finite number >= 0"),
    (_set("layers/1/units/0/front", {"n": [1, 2], "m": [1], "error": [0.5], "complexity": [0.5]}),
     r"front m has 1 entries; expected 2"),
    (_set("layers/1/units/0/front", [{"n": 1, "m": 1, "error": 0.5, "complexity": 0.5}]), r"front is list; expected an object"),
    (_set("layers/1/input_thresholds/threshold/0", math.nan), r"input_thresholds threshold\[0\] is NaN"),
    (_set("layers/1/input_thresholds/threshold", []), r"input_thresholds threshold has 0 entries; expected \d+"),
    (_set("layers/1/input_thresholds/input/1", 0), r"input_thresholds lists input 0 twice"),
    (_set("layers/1/input_thresholds", {"input": [], "threshold": []}), r"reads input \d+, which has no threshold"),
    (_set("layers/1/input_thresholds", None), r"has no threshold column and layer 'fc1' no input_thresholds"),
    (_set("layers/0/units/0/literals/dy/0", 10**5), r"literals dy\[0\] is 100000; expected an integer from -4096"),
    (_set("layers/0/units/0/literals/dx", [0] * 50), r"literals dx has 50 entries; expected \d+"),
    (_set("version", 3), r"has rules format version 3; this mofn2logic reads 1 and 2"),
    (_set("version", "2"), r"has rules format version '2'"),
    (_set("layers/2/units/0/unit", 99), r"unit #0 unit is 99; expected an integer from 0 to \d+"),
    (_set("layers/1/units/0/literals", [{"input": 0}]), r"unit \d+ literals is list; expected an object"),
]


@pytest.mark.parametrize("edit, message", HOSTILE)
def test_hostile_v2_files_are_refused_with_one_line(edit, message):
    doc = _doc()
    assert _dense(doc)["units"][0]["literals"]["input"], "the seed gives the first unit some literals"
    doc = edit(doc)
    with pytest.raises(ProgramError, match=message) as e:
        from_dict(doc, "rules.json")
    assert "\n" not in str(e.value) and str(e.value).startswith("rules.json")


def test_hostile_paper_mode_tables():
    doc = _paper_doc()
    unit = _dense(doc)["units"][0]
    assert "threshold" in unit["literals"] and _dense(doc)["input_thresholds"] is None
    unit["literals"]["threshold"][0] = math.inf
    with pytest.raises(ProgramError, match=r"literals threshold\[0\] is Infinity; expected a finite number"):
        from_dict(doc, "rules.json")
    unit["literals"]["threshold"] = unit["literals"]["threshold"][1:]
    with pytest.raises(ProgramError, match=r"literals threshold has \d+ entries; expected \d+"):
        from_dict(doc, "rules.json")
