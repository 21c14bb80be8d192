"""SWI-Prolog export: the program as facts (one per line, read back by `read_prolog`), and a
small interpreter that evaluates it block by block on a sample, with `predict/2`,
`explain/3` and a batch entry point `classify_file/2`.

Every name is a single-quoted, escaped atom; numbers are plain decimal floats; operators are
spaced: the known traps of generated Prolog.
"""

from __future__ import annotations

import os

import numpy as np
from mofn2logic.exporters.base import Printer

from mofn2logic.ir.program import (
    IndexBlock,
    InputTests,
    PoolBlock,
    Program,
    RuleBlock,
    pad_truth,
)
from mofn2logic.exporters.quoting import Quoting

# Prolog's quoted-atom escapes (ISO + SWI): backslash, quote and control characters.
ATOMS = Quoting({"\\": "\\\\", "'": "\\'", "\n": "\\n", "\t": "\\t", "\r": "\\r", "\a": "\\a", "\b": "\\b",
                 "\f": "\\f", "\v": "\\v", "\0": "\\0\\"}, "\\x{:x}\\", r"\\x([0-9a-fA-F]+)\\")

BEGIN, END = "% ---- program facts (mofn2logic reads these back) ----", "% ---- end of program facts ----"


def quote_atom(name: str) -> str:
    """A Prolog quoted atom for any string."""
    return ATOMS.quote(name)


def number(v: float) -> str:
    """A float in plain Prolog syntax (a digit on both sides of the dot; exponent allowed)."""
    s = repr(float(v))
    if s in ("inf", "-inf", "nan"):
        raise ValueError(f"{s} has no Prolog float syntax")
    mant, _, exp = s.partition("e")
    if "." not in mant:
        mant += ".0"
    return mant + ("e" + exp if exp else "")


def _list(values) -> str:
    return "[" + ", ".join(str(int(v)) for v in values) + "]"


class PrologPrinter(Printer):
    target = "Prolog"
    options = {"comments": True}

    def _print_Program(self, p: Program) -> str:
        self.program = p
        self.number = {b.name: k + 1 for k, b in enumerate(p.blocks)}
        self.number[""] = 0
        lines = [
            f"% {quote_atom(p.name)}: an M-of-N logic program exported by mofn2logic for SWI-Prolog.",
            "% predict(Sample, Class), explain(Sample, Class, Proof), classify_file(File, Mode).",
            ":- encoding(utf8).",
            ":- dynamic x/2.",
            ":- discontiguous mofn/5, block/6, pad/3, index_map/2.",
            BEGIN,
            f"program_name({quote_atom(p.name)}).",
            f"decision({p.decision}).",
        ]
        lines.append(self._print(p.input))
        for b in p.blocks:
            lines.append(self._print(b))
        lines.append(END)
        lines.append(INTERPRETER)
        return "\n".join(line for line in lines if line) + "\n"

    def _print_InputTests(self, inp: InputTests) -> str:
        grain = "channel" if inp.per_channel else "unit"
        lines = [f"input_layer({quote_atom(inp.tensor)}, {_list(inp.shape)}, {grain})."]
        lines += [f"input_test({i}, {number(t)})." for i, t in inp.tests]
        return "\n".join(lines)

    def _src(self, source: str) -> int:
        return self.number[source]

    def _print_RuleBlock(self, b: RuleBlock) -> str:
        k = self.number[b.name]
        extra = f"stride({b.stride[0]}, {b.stride[1]})" if b.kind == "conv" else "none"
        lines = [f"block({k}, {quote_atom(b.name)}, {b.kind}, {self._src(b.source)}, {_list(b.shape)}, {extra})."]
        if b.kind == "conv":
            src_channels = (self.program.input.shape if b.source == "" else self.program.block(b.source).shape)[0]
            lines += [f"pad({self._src(b.source)}, {c}, {int(pad_truth(self.program, b.source, c))})."
                      for c in range(src_channels)]
        for r in b.rules:
            lits = ", ".join(
                (("p" if li.positive else "n") + (f"({li.src})" if li.offset is None else
                                                   f"({li.src}, {li.offset[0]}, {li.offset[1]})"))
                for li in r.lits)
            thr = "none" if r.threshold is None else number(r.threshold)
            lines.append(f"mofn({k}, {r.unit}, {thr}, {r.m}, [{lits}]).")
        return "\n".join(lines)

    def _print_PoolBlock(self, b: PoolBlock) -> str:
        k = self.number[b.name]
        return (f"block({k}, {quote_atom(b.name)}, pool, {self._src(b.source)}, {_list(b.shape)}, "
                f"pool({_list(b.pool.kernel)}, {_list(b.pool.strides)}, {_list(b.pool.pads)}, {_list(b.pool.dilations)})).")

    def _print_IndexBlock(self, b: IndexBlock) -> str:
        k = self.number[b.name]
        return (f"block({k}, {quote_atom(b.name)}, index, {self._src(b.source)}, {_list(b.shape)}, none).\n"
                f"index_map({k}, m({', '.join(str(int(i)) for i in b.index)})).")


INTERPRETER = r"""
% ---- interpreter: evaluates the blocks in order on one sample --------------------------
% A block's atoms are a term v(B1, ..., Bk) of 0/1 over its flat index; block 0 is the input.

eval_sample(S, Env) :-
    x(S, X),
    input_layer(_, Shape, Grain),
    input_atoms(X, Shape, Grain, In),
    findall(K, block(K, _, _, _, _, _), Ks),
    foldl(eval_block, Ks, [0-In], Env).

input_atoms(X, Shape, Grain, In) :-
    foldl([D, A0, A]>>(A is A0 * D), Shape, 1, Size),
    Shape = [_|Rest], foldl([D, A0, A]>>(A is A0 * D), Rest, 1, Plane),
    functor(In, v, Size),
    forall(between(1, Size, I),
           ( I0 is I - 1,
             ( Grain == channel -> Key is I0 // Plane ; Key = I0 ),
             ( input_test(Key, T), arg(I, X, V), V >= T -> B = 1 ; B = 0 ),
             nb_setarg(I, In, B) )).

source_values(Env, K, V) :- memberchk(K-V, Env).

source_shape(0, Shape) :- !, input_layer(_, Shape, _).
source_shape(K, Shape) :- block(K, _, _, _, Shape, _).

eval_block(K, Env0, [K-Out|Env0]) :-
    block(K, _, Kind, Src, Shape, Extra),
    source_values(Env0, Src, SrcV),
    eval(Kind, K, Src, Shape, Extra, SrcV, Out).

eval(dense, K, _, [U], _, SrcV, Out) :-
    functor(Out, v, U),
    forall(between(1, U, I),
           ( U0 is I - 1,
             ( mofn(K, U0, _, M, Lits) -> count(Lits, SrcV, 0, C), ( C >= M -> B = 1 ; B = 0 ) ; B = 0 ),
             nb_setarg(I, Out, B) )).
eval(conv, K, Src, [Co, OH, OW], stride(SY, SX), SrcV, Out) :-
    source_shape(Src, [_, H, W]),
    Size is Co * OH * OW, functor(Out, v, Size),
    forall(between(1, Size, I), nb_setarg(I, Out, 0)),
    forall(mofn(K, Ch, _, M, Lits),
           forall(( OH1 is OH - 1, OW1 is OW - 1, between(0, OH1, OY), between(0, OW1, OX) ),
                  ( Y0 is OY * SY, X0 is OX * SX,
                    count_at(Lits, SrcV, Src, H, W, Y0, X0, 0, C),
                    ( C >= M -> I is Ch * OH * OW + OY * OW + OX + 1, nb_setarg(I, Out, 1) ; true ) ))).
eval(pool, _, Src, [C, OH, OW], pool([KH, KW], [SY, SX], [PT, PL, _, _], [DY, DX]), SrcV, Out) :-
    source_shape(Src, [_, H, W]),
    Size is C * OH * OW, functor(Out, v, Size),
    forall(between(1, Size, I),
           ( I0 is I - 1, Ch is I0 // (OH * OW), R is I0 mod (OH * OW), OY is R // OW, OX is R mod OW,
             ( KH1 is KH - 1, KW1 is KW - 1, between(0, KH1, KY), between(0, KW1, KX),
               Y is OY * SY - PT + KY * DY, X is OX * SX - PL + KX * DX,
               Y >= 0, Y < H, X >= 0, X < W,
               J is Ch * H * W + Y * W + X + 1, arg(J, SrcV, 1)
             -> B = 1 ; B = 0 ),
             nb_setarg(I, Out, B) )).
eval(index, K, _, Shape, _, SrcV, Out) :-
    foldl([D, A0, A]>>(A is A0 * D), Shape, 1, Size),
    index_map(K, Map), functor(Out, v, Size),
    forall(between(1, Size, I), ( arg(I, Map, J0), J is J0 + 1, arg(J, SrcV, B), nb_setarg(I, Out, B) )).

count([], _, C, C).
count([p(I)|T], V, C0, C) :- J is I + 1, arg(J, V, B), C1 is C0 + B, count(T, V, C1, C).
count([n(I)|T], V, C0, C) :- J is I + 1, arg(J, V, B), C1 is C0 + 1 - B, count(T, V, C1, C).

count_at([], _, _, _, _, _, _, C, C).
count_at([L|T], V, Src, H, W, Y0, X0, C0, C) :-
    L =.. [Sign, Ch, DY, DX], Y is Y0 + DY, X is X0 + DX,
    ( Y >= 0, Y < H, X >= 0, X < W -> J is Ch * H * W + Y * W + X + 1, arg(J, V, B) ; pad(Src, Ch, B) ),
    ( Sign == p -> C1 is C0 + B ; C1 is C0 + 1 - B ),
    count_at(T, V, Src, H, W, Y0, X0, C1, C).

% ---- decision: the highest margin (count - M) / max(N, 1), ties to the lowest class -------
decide(Env, Class) :-
    aggregate_all(max(K), block(K, _, _, _, _, _), Last),
    block(Last, _, dense, Src, [U], _),
    source_values(Env, Src, SrcV),
    U1 is U - 1,
    findall(Margin-C, ( between(0, U1, C), margin(Last, C, SrcV, Margin) ), Ms),
    best(Ms, Class).

margin(K, C, SrcV, Margin) :-
    ( mofn(K, C, _, M, Lits) -> count(Lits, SrcV, 0, Cnt), length(Lits, N), Margin is (Cnt - M) / max(N, 1)
    ; Margin = -1 ).

best([M0-C0|T], C) :- best(T, M0, C0, C).
best([], _, C, C).
best([M-C1|T], M0, C0, C) :- ( M > M0 -> best(T, M, C1, C) ; best(T, M0, C0, C) ).

predict(S, Class) :- eval_sample(S, Env), decide(Env, Class).

% explain(S, Class, Proof): Proof lists, layer by layer, the rules that fired:
% fired(Layer, Unit, M, N) for dense units, fired(Layer, c(Channel, Y, X), M, N) for convolutions.
explain(S, Class, Proof) :-
    eval_sample(S, Env), decide(Env, Class),
    findall(Name-Fired,
            ( block(K, Name, Kind, _, Shape, _), memberchk(Kind, [dense, conv]),
              source_values(Env, K, V),
              findall(fired(Name, Atom, M, N),
                      ( arg(I, V, 1), I0 is I - 1, atom_of(Kind, Shape, I0, Unit, Atom),
                        mofn(K, Unit, _, M, Lits), length(Lits, N) ), Fired) ),
            Proof).

atom_of(dense, _, I0, I0, I0).
atom_of(conv, [_, OH, OW], I0, Ch, c(Ch, Y, X)) :- Ch is I0 // (OH * OW), R is I0 mod (OH * OW), Y is R // OW, X is R mod OW.

% ---- batch: classify every sample of a data file (x(Id, v(Values...)) facts) -------------
% Mode class: "Id Class" per line; mode atoms: also each rule layer's atoms as 0/1 digits.
classify_file(File, Mode) :-
    load_files(File, [silent(true)]),
    forall(x(S, _), ( eval_sample(S, Env), decide(Env, C), write_result(Mode, S, C, Env) )).

write_result(class, S, C, _) :- format("~w ~w~n", [S, C]).
write_result(atoms, S, C, Env) :-
    format("~w ~w", [S, C]),
    forall(( block(K, _, Kind, _, _, _), memberchk(Kind, [dense, conv]) ),
           ( source_values(Env, K, V), V =.. [_|Bits], format(" ~w:", [K]), forall(member(B, Bits), write(B)) )),
    nl.
"""


def to_prolog(program: Program, **options) -> str:
    return PrologPrinter(**options).doprint(program)


def write_prolog(program: Program, path: str | os.PathLike[str], **options) -> None:
    from mofn2logic.files import write_text_atomic

    write_text_atomic(path, to_prolog(program, **options))


def data_facts(x: np.ndarray, program: Program) -> str:
    """The samples as x(Id, v(...)) facts over the cut tensor, flattened."""
    flat = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    lines = [":- encoding(utf8)."]
    for i, row in enumerate(flat):
        lines.append(f"x({i}, v({', '.join(number(v) for v in row)})).")
    return "\n".join(lines) + "\n"
