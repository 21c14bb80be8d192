"""The format registry (`mofn2logic.exporters`): one table drives `export --to`, `load_program`
by suffix and the pipeline; a new format is one `register` call."""

from __future__ import annotations

import json

import pytest
from conftest import require_tool
from hypothesis import given, settings
from hypothesis import strategies as st
from program_gen import HOSTILE, conv_list_program, conv_program, dense_program, list_program

from mofn2logic import exporters
from mofn2logic.cli import main
from mofn2logic.errors import ExportError, ProgramError
from mofn2logic.exporters import Format, format_for_suffix, formats, load_program, parse, to_text, write
from mofn2logic.ir.program import Program

READABLE = ("mofn", "json")  # the readers this table owns (Prolog's reader is tested in test_exporters)


def test_the_table():
    assert list(formats()) == ["mofn", "json", "prolog", "sympy", "dot", "svg"]
    assert {name: f.suffixes for name, f in formats().items()} == {
        "mofn": (".mofn",), "json": (".json",), "prolog": (".pl",), "sympy": (".py",), "dot": (".dot", ".gv"),
        "svg": (".svg",)}
    assert [name for name, f in formats().items() if f.readable] == ["mofn", "json", "prolog"]
    assert dict(formats()["dot"].options) == {"max_units": 24, "max_literals": 12, "rankdir": "LR", "legend": True,
                                             "classes": ""}
    assert dict(formats()["svg"].options) == dict(formats()["dot"].options)
    assert dict(formats()["json"].options) == {"indent": 1} and dict(formats()["mofn"].options) == {}
    assert dict(formats()["sympy"].options) == {"dnf_limit": 64}


def test_options_come_from_the_printers():
    from mofn2logic.exporters.dot import DotPrinter
    from mofn2logic.exporters.json_program import JsonPrinter
    from mofn2logic.exporters.mofn import MofnPrinter
    from mofn2logic.exporters.sympy_expr import SympyPrinter

    for name, printer in (("mofn", MofnPrinter), ("json", JsonPrinter), ("sympy", SympyPrinter), ("dot", DotPrinter)):
        assert dict(formats()[name].options) == printer.options, name


@pytest.mark.parametrize("path, name", [
    ("p.mofn", "mofn"), ("dir.x/P.MOFN", "mofn"), ("p.json", "json"), ("p.pl", "prolog"), ("p_sympy.py", "sympy"),
    ("g.dot", "dot"), ("g.gv", "dot"), ("g.svg", "svg"),
])
def test_suffix_dispatch(path, name):
    assert format_for_suffix(path).name == name


def test_unknown_suffixes_and_names():
    with pytest.raises(ExportError, match=r"'p\.txt' has suffix '\.txt', which names no program format; "
                                          r"known: \.mofn \(mofn\), \.json \(json\), \.pl \(prolog\)"):
        format_for_suffix("p.txt")
    with pytest.raises(ExportError, match=r"program format 'yaml' is unknown; expected one of mofn, json, prolog"):
        to_text(dense_program(0), "yaml")


@pytest.mark.parametrize("fmt", READABLE)
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), conv=st.booleans(), hostile=st.integers(0, len(HOSTILE) - 4),
       decision_list=st.booleans())
def test_round_trip_through_the_registry(fmt, seed, conv, hostile, decision_list):
    if decision_list:  # the classes as a decision list
        p = conv_list_program(seed, names=HOSTILE[hostile:hostile + 4]) if conv else \
            list_program(seed, names=HOSTILE[hostile:hostile + 2])
    else:
        p = conv_program(seed, names=HOSTILE[hostile:hostile + 4]) if conv else \
            dense_program(seed, names=HOSTILE[hostile:hostile + 2])
    text = to_text(p, fmt)
    assert parse(text, fmt) == p
    assert to_text(parse(text, fmt), fmt) == text


@pytest.mark.parametrize("fmt, suffix", [("mofn", ".mofn"), ("json", ".json")])
def test_write_and_load_program_by_suffix(tmp_path, fmt, suffix):
    p = conv_program(7, names=HOSTILE[:4])
    path = tmp_path / f"p{suffix}"
    write(p, path)
    assert path.read_text(encoding="utf-8") == to_text(p, fmt)
    assert load_program(path) == p


def test_the_json_text():
    p = dense_program(1)
    assert json.loads(to_text(p, "json"))["format"] == "mofn2logic-program"
    assert to_text(p, "json", indent=None).count("\n") == 1


BAD_LISTS = [
    (lambda t: t.replace("  default 1\n", ""), r"syntax error"),
    (lambda t: t.replace("  default 1\n", "  default 7\n"), r"decision list 'out' has default class 7; expected 0 to 2"),
    (lambda t: t.replace("  2 :- 2 of", "  5 :- 2 of"), r"rule 1 of decision list 'out' names class 5; expected 0 to 2"),
    (lambda t: t.replace("  2 :- 2 of", "  2 >= 0.5 :- 2 of"), r"rule 1 of decision list 'out' stands for threshold"),
    (lambda t: t.replace("  2 :- 2 of", "  2 :- 4 of"), r"rule 1 of decision list 'out' asks 4 of 2 literals"),
    (lambda t: t.replace("[0, ~1]", "[0, ~9]"), r"uses atom 9 of 'h', which is not defined \(it has 2\)"),
    (lambda t: t.replace("[0, ~1]", "[0@(0,0), ~1]"), r"dense literals take no offset"),
    (lambda t: t.replace("decision first", "decision margin"), r"ends with decision list 'out' but decides by margin"),
    (lambda t: t.replace("decision first", "decision vote"), r"decision 'vote' is unknown; expected margin or first"),
    (lambda t: t + "dense 'more' from 'out' shape [1]\n", r"decision list 'out' is not the last block"),
]


def list_text() -> str:
    from mofn2logic.ir.program import AtomLiteral, DecisionListBlock, InputTests, MofNRule, RuleBlock

    p = Program("l", InputTests("x", (2,), False, ((0, 0.5), (1, 1.5))), (
        RuleBlock("h", "dense", "", (2,), (MofNRule(0, 1, (AtomLiteral(0),), 0.5), MofNRule(1, 1, (AtomLiteral(1),), 0.5))),
        DecisionListBlock("out", "h", (3,), (MofNRule(2, 2, (AtomLiteral(0), AtomLiteral(1, False))),
                                             MofNRule(0, 1, (AtomLiteral(1),))), 1)), "first")
    return to_text(p, "mofn")


def test_decision_list_text():
    assert list_text().endswith("list 'out' from 'h' shape [3]\n  2 :- 2 of [0, ~1]\n  0 :- 1 of [1]\n  default 1\n")
    assert to_text(parse(list_text(), "mofn"), "mofn") == list_text()


@pytest.mark.parametrize("edit, match", BAD_LISTS)
def test_malformed_decision_lists_are_one_line_errors(edit, match):
    """Hostile .mofn decision lists: refused with one line naming what was expected (a syntax error
    adds the line it found, under a caret); the JSON form of the same program is refused alike."""
    from mofn2logic.errors import RuleSyntaxError

    with pytest.raises((ProgramError, RuleSyntaxError), match=match) as e:
        parse(edit(list_text()), "mofn", source="l.mofn")
    assert str(e.value).startswith("l.mofn:")
    if "syntax error" not in match:
        assert "\n" not in str(e.value)
        with pytest.raises(ProgramError, match=match):
            parse(to_text(_unchecked(edit), "json"), "json")


def _unchecked(edit) -> Program:
    """The program a .mofn edit describes, built unchecked (the .mofn transformer, no check_program)."""
    from mofn2logic.exporters.mofn import _parser, _ToIR

    return _ToIR().transform(_parser().parse(edit(list_text())))


def test_readers_check_what_they_read(tmp_path):
    d = json.loads(to_text(dense_program(2), "json"))
    d["blocks"][1]["rules"][0]["lits"] = [{"src": 99, "positive": True, "offset": None}]
    (tmp_path / "bad.json").write_text(json.dumps(d))
    with pytest.raises(ProgramError, match=r"uses atom 99 of 'h1', which is not defined"):
        load_program(tmp_path / "bad.json")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ProgramError, match=r"broken\.json is not JSON"):
        load_program(tmp_path / "broken.json")


def test_write_only_and_unknown_files_are_refused(tmp_path):
    (tmp_path / "g.svg").write_text("<svg/>")
    with pytest.raises(ProgramError, match=r"'.*g\.svg' is a svg file, which mofn2logic only writes; "
                                           r"readable: \.mofn \(mofn\), \.json \(json\), \.pl \(prolog\)"):
        load_program(tmp_path / "g.svg")
    with pytest.raises(ProgramError, match=r"cannot tell the format of program '.*p\.txt' from its suffix"):
        load_program(tmp_path / "p.txt")
    with pytest.raises(ProgramError, match=r"<text>: the dot format is write-only"):
        parse("digraph {}", "dot")


@pytest.mark.parametrize("fmt", ["mofn", "json", "prolog", "sympy", "dot", "svg"])
def test_unknown_options_are_type_errors(fmt):
    with pytest.raises(TypeError, match=r"unknown option\(s\) colour"):
        to_text(dense_program(3), fmt, colour="red")


@pytest.mark.parametrize("fmt", ["mofn", "json", "sympy", "dot", "svg"])
def test_declared_options_are_taken(fmt):
    if fmt == "svg":
        require_tool("dot")
    f = formats()[fmt]
    assert to_text(dense_program(3), fmt, **dict(f.options)) == to_text(dense_program(3), fmt)


def test_printers_dispatch_per_class_and_name_themselves():
    from mofn2logic.exporters.mofn import MofnPrinter

    assert {"_print_Program", "_print_InputTests", "_print_RuleBlock", "_print_PoolBlock", "_print_IndexBlock",
            "_print_MofNRule", "_print_AtomLiteral"} <= set(vars(MofnPrinter))
    with pytest.raises(ExportError, match=r"the \.mofn exporter cannot write object"):
        MofnPrinter().doprint(object())


def _summary(program: Program, *, upper: bool = False) -> str:
    text = f"{program.name}: {len(program.blocks)} blocks, {len(program.rule_blocks())} with rules\n"
    return text.upper() if upper else text


def test_a_new_format_is_one_register_call(tmp_path, capsys):
    """Registered through the public function, the format is an `export --to` choice, written by
    suffix, refused as input (write-only), and gone again once unregistered."""
    p = dense_program(5)
    write(p, tmp_path / "p.mofn")
    fmt = exporters.register(Format("summary", (".summary",), _summary, None, {"upper": False}, "one line"))
    try:
        out = tmp_path / "p.summary"
        assert main(["export", str(tmp_path / "p.mofn"), "--to", "summary", "-o", str(out)]) == 0
        assert out.read_text() == "h1 program: 2 blocks, 2 with rules\n"
        assert main(["export", str(tmp_path / "p.mofn"), "--to", "summary", "--option", "upper=yes",
                     "-o", str(out)]) == 0
        assert out.read_text() == "H1 PROGRAM: 2 BLOCKS, 2 WITH RULES\n"
        capsys.readouterr()
        assert main(["export", str(tmp_path / "p.mofn"), "--to", "summary", "--option", "upper=maybe",
                     "-o", str(out)]) == 2
        assert "option upper of the summary format takes a bool (default False); got 'maybe'" in capsys.readouterr().err
        assert main(["export", str(tmp_path / "p.mofn"), "--to", "summary", "--max-units", "3", "-o", str(out)]) == 2
        assert "the summary format has no option 'max_units'; it takes upper" in capsys.readouterr().err
        write(p, tmp_path / "q.summary")
        assert (tmp_path / "q.summary").read_text() == out.read_text().lower()
        with pytest.raises(ProgramError, match="only writes"):
            load_program(out)
        with pytest.raises(ValueError, match="already registered"):
            exporters.register(fmt)
        with pytest.raises(ValueError, match=r"suffix '\.mofn' of format 'mofn2' already belongs to 'mofn'"):
            exporters.register(Format("mofn2", (".mofn",), _summary))
    finally:
        exporters.unregister("summary")
    assert "summary" not in formats()
    with pytest.raises(SystemExit):
        main(["export", str(tmp_path / "p.mofn"), "--to", "summary", "-o", str(tmp_path / "x")])
    assert "invalid choice: 'summary'" in capsys.readouterr().err
