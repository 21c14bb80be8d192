"""Property-based fuzzing of every reader: any input either loads into a valid program (rule set)
or raises the toolkit's own error -- never another exception, never a hang.

Inputs are grown from valid documents by hypothesis: characters replaced, inserted or deleted in
the .mofn and Prolog texts; values swapped for hostile ones (wrong types, huge and non-finite
numbers, deep nesting, negative counts) anywhere in the JSON documents.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mofn2logic import exporters
from mofn2logic.errors import Mofn2LogicError
from mofn2logic.ir import Program
from mofn2logic.program import check_program, compile_program
from mofn2logic.search import rules_file

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def programs(default_rules, default_acts) -> dict[str, Program]:
    from mofn2logic.search.decision_list import fit_decision_list

    net, acts = default_acts
    full = compile_program(default_rules, cut="node_linear", beta=0.2, complete=True)
    listed = fit_decision_list(full, np.asarray(acts[full.input.tensor]), np.argmax(acts[net.output], axis=1), 25)
    dense = compile_program(default_rules, cut="node_linear_1", beta=0.2)
    hostile = ["it's", "a\nb", ":-", "label", "x\\y", "Ω ≥ 1", "%c", "0'a"]
    names = (("", tuple((i, f"{hostile[k % len(hostile)]} {k}") for k, (i, _) in enumerate(dense.input.tests))),
             (dense.output.name, tuple((k, hostile[k % len(hostile)] + str(k)) for k in range(dense.output.shape[0]))))
    return {"dense": dense, "conv": compile_program(default_rules, cut=default_rules.layers[0].name, beta=1.0),
            "list": listed, "named": Program(dense.name, dense.input, dense.blocks, dense.decision, names)}


def _loads_or_refuses(parse, text: str) -> None:
    try:
        program = parse(text)
    except Mofn2LogicError:
        return
    check_program(program, "fuzzed")  # what loads is a valid program


HOSTILE_TEXT = st.sampled_from([
    "'", "\\", "\\xzz", "1e999", "-1e999", "nan", "inf", "99999999999999999999", "-1", "0", "[", "]", "(", ")",
    ",", ":-", "of", "~", "@", "\n", "\x00", "é", "%", " ", "100000", "1.5", "'a\\'b'", "[1, 2, 3]",
])


def _mutate(data: st.DataObject, text: str) -> str:
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(text)))
        j = min(len(text), i + data.draw(st.integers(0, 6)))
        text = text[:i] + data.draw(HOSTILE_TEXT | st.text(max_size=4)) + text[j:]
    return text


@pytest.mark.parametrize("case", ["dense", "conv", "list", "named"])
@FUZZ
@given(data=st.data())
def test_mofn_reader(programs, case, data):
    text = exporters.to_text(programs[case], "mofn")
    _loads_or_refuses(lambda t: exporters.parse(t, "mofn"), _mutate(data, text))


@pytest.mark.parametrize("case", ["dense", "conv", "list", "named"])
@FUZZ
@given(data=st.data())
def test_prolog_reader(programs, case, data):
    text = exporters.to_text(programs[case], "prolog")
    _loads_or_refuses(lambda t: exporters.parse(t, "prolog"), _mutate(data, text))


HOSTILE_VALUES = st.one_of(
    st.sampled_from([None, True, False, -1, 0, 2**63, -(2**63), 1e308, -1e308, 0.5, "", "x", "\x00", [], {},
                     [None], [1, "a"], {"a": 1}, [1.5, 2.5]]),
    st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8),
)


def _paths(doc, prefix=()):
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc[:6]):  # the first few entries of long lists are enough
            yield from _paths(v, (*prefix, i))


def _replace(doc, path, value):
    if not path:
        return value
    doc = json.loads(json.dumps(doc))
    node = doc
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    return doc


def _mutate_json(data: st.DataObject, doc) -> str:
    paths = list(_paths(doc))
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths))
        try:
            doc = _replace(doc, path, data.draw(HOSTILE_VALUES))
        except (KeyError, IndexError, TypeError):
            pass  # the path went away with an earlier replacement
    return json.dumps(doc)


@pytest.mark.parametrize("case", ["dense", "conv", "list", "named"])
@FUZZ
@given(data=st.data())
def test_program_json_reader(programs, case, data):
    doc = json.loads(exporters.to_text(programs[case], "json"))
    _loads_or_refuses(lambda t: exporters.parse(t, "json"), _mutate_json(data, doc))


@pytest.mark.parametrize("version", [1, 2])
@FUZZ
@given(data=st.data())
def test_rules_json_reader(default_rules, version, data):
    doc = json.loads(rules_file.dumps(default_rules) if version == 2 else rules_file.dumps_v1(default_rules))
    doc["layers"] = doc["layers"][-2:]  # the two dense layers keep each example fast
    text = _mutate_json(data, doc)
    try:
        rs = rules_file.from_dict(json.loads(text), "fuzzed")
    except Mofn2LogicError:
        return
    try:  # a rule set that loads either compiles into a valid program or is refused
        check_program(compile_program(rs, cut=rs.layers[0].name), "compiled")
    except Mofn2LogicError:
        pass


@pytest.mark.parametrize("text", [
    "[" * 100_000 + "]" * 100_000,
    '{"format": "mofn2logic-program", "version": 2, "name": NaN}',
    '{"format": "mofn2logic-program", "version": 2, "name": Infinity}',
    "[]", "null", "3", '"text"',
])
def test_json_documents_that_are_not_programs(text):
    with pytest.raises(Mofn2LogicError):
        exporters.parse(text, "json")
    with pytest.raises(Mofn2LogicError):
        from mofn2logic.errors import ProgramError
        from mofn2logic.files import parse_json_text

        rules_file.from_dict(parse_json_text(text, "rules", ProgramError), "rules")


def test_float_edge_values_round_trip(programs):
    """Thresholds at the ends of float64 survive every readable format bit for bit."""
    p = programs["dense"]
    inp = p.input
    edge = (np.nextafter(0.0, 1.0), -np.finfo(np.float64).max, 1e-300, math.pi)
    tests = tuple((i, float(edge[k % len(edge)])) for k, (i, _) in enumerate(inp.tests))
    q = Program(p.name, type(inp)(inp.tensor, inp.shape, inp.per_channel, tests), p.blocks, p.decision)
    for fmt in ("mofn", "json", "prolog"):
        assert exporters.parse(exporters.to_text(q, fmt), fmt) == q
