% ---- mofn2logic runtime (mofn2logic/grammars/mofn_runtime.pl, copied verbatim) ----------
% The helpers every exported program uses; none of them is a rule of the program.
%
%   at_least(M, Literals)      the M-of-N test in the rule bodies
%   position(Y, X, H, W)       (Y, X) is a position of an H x W grid
%   outside(Y, X, H, W)        (Y, X) lies outside an H x W grid: the padding clauses
%   window(Pool, Y, X, Y1, X1) (Y1, X1) is a position of the source that the window of pool
%                              block Pool at (Y, X) covers (padding excluded)
%   predict(S, Class)          the class of sample S (every loaded sample if S is unbound): the highest margin (Count - M) / max(N, 1)
%                              of the class rules, ties to the lowest class; a class without a
%                              rule has margin -1.0
%   margins(S, Margins)        the margin of every class, in class order (a decision list:
%                              1.0 for the class it decides, 0.0 for the others)
%   explain(S, Class, Proof)   the predicted class and the proof of its rule (below)
%   classify_file(File, Mode)  every sample of a data file, evaluated bottom-up on all
%                              samples at once; one line per sample
%
% The proof term of explain/3: the class rule, and recursively the literals that held in it.
%   first(Atom, K, Rule)       a decision list: its K-th rule (from 1) was the first to hold;
%                              Rule is rule(Atom, M, N, Held) as below
%   default(Atom)              a decision list: no rule held, Atom names its default class
%   rule(Atom, M, N, Held)     Atom's rule: "at least M of these N literals"; Held lists the
%                              proofs of the literals that held, in rule order (the class rule
%                              may hold fewer than M: its margin is still the highest)
%   no_rule(Atom)              Atom has no rule (a class without a rule: margin -1.0)
%   test(Atom, Value, Threshold)  an input test that held: Value >= Threshold
%   not(Atom)                  a negated literal that held: Atom does not hold
%   padding(Atom)              Atom lies outside its grid and holds there: the network's zero
%                              padding passes its threshold
%   pool(Atom, Proof)          a pool atom: Proof proves the first position of its window that holds
%   index(Atom, Proof)         an index atom: Proof proves the source atom it copies
% Every Atom is ground: the sample and the coordinates of the atom.
%
% Only built-in predicates are called, so a block named after a library predicate changes
% nothing here. Block predicates are tabled (predict/2 and explain/3 ask the clauses top-down);
% classify_file/2 evaluates the same clauses bottom-up instead, every block once for all samples.

%!  at_least(+M, +Literals) is semidet.
%   At least M of Literals hold. A literal is an atom or \+ Atom (the atom does not hold); the
%   coordinates of an atom may be arithmetic (Y - 1, 2 * X + 1) and are evaluated first.
at_least(M, Literals) :-
    length(Literals, N),
    at_least(Literals, M, N).

at_least(_, M, _) :-
    M =< 0, !.
at_least([L|Ls], M, N) :-
    M =< N,
    (   literal_holds(L) -> M1 is M - 1 ; M1 = M ),
    N1 is N - 1,
    at_least(Ls, M1, N1).

literal_holds(\+ A) :- !,
    evaluated(A, G),
    \+ call(G).
literal_holds(A) :-
    evaluated(A, G),
    call(G).

%   evaluated(+Atom, -Goal): Atom with its position evaluated (a conv literal: Y - 1 -> 3).
evaluated(A, G) :-
    functor(A, P, 4),
    arg(3, A, YE), arg(4, A, XE),
    \+ ( integer(YE), integer(XE) ), !,
    Y is YE, X is XE,
    arg(1, A, S), arg(2, A, C),
    G =.. [P, S, C, Y, X].
evaluated(A, A).

%   position(?Y, ?X, +H, +W): (Y, X) is a position of an H x W grid.
position(Y, X, H, W) :-
    H1 is H - 1, W1 is W - 1,
    between(0, H1, Y),
    between(0, W1, X).

%   outside(+Y, +X, +H, +W): (Y, X) lies outside an H x W grid (where padding is read).
outside(Y, X, H, W) :-
    integer(Y), integer(X),
    \+ position(Y, X, H, W).

%   window(+Pool, ?Y, ?X, -Y1, -X1): (Y1, X1) is a position of the source, inside it, that the
%   window of pool block Pool at (Y, X) covers.
window(P, Y, X, Y1, X1) :-
    maxpool(P, kernel(KH, KW), strides(SH, SW), pads(PT, PL, _, _), dilations(DH, DW), _, _),
    block(_, _, pool, P, Source, [_, OH, OW]),
    (   block(_, _, _, Source, _, [_, H, W]) -> true ; input(_, [_, H, W], _, Source) ),
    position(Y, X, OH, OW),
    KH1 is KH - 1, KW1 is KW - 1,
    between(0, KH1, KY),
    Y1 is Y * SH - PT + KY * DH, Y1 >= 0, Y1 < H,
    between(0, KW1, KX),
    X1 is X * SW - PL + KX * DW, X1 >= 0, X1 < W.

% ---- decision ---------------------------------------------------------------------------

class_block(P, K) :-
    block(O, _, Kind, P, _, [K]),
    ( Kind == dense ; Kind == decision_list ),
    \+ ( block(O2, _, _, _, _, _), O2 > O ), !.

%   A decision list's clauses, in order: P(S, Class) :- at_least(M, Literals), !, Class = C.
%   and the default last, P(_, Default). Its class is the first answer.
list_class(P, S, Class) :-
    Goal =.. [P, S, C],
    once(Goal),
    Class = C.

predict(S, Class) :-
    (   var(S) -> sample(S) ; true ),
    margins(S, [M0|Ms]),
    best(Ms, 1, M0, 0, Class).

margins(S, Margins) :-
    class_block(P, K),
    K1 is K - 1,
    (   block(_, _, decision_list, P, _, _)
    ->  list_class(P, S, D),
        findall(Margin, ( between(0, K1, C), ( C =:= D -> Margin = 1.0 ; Margin = 0.0 ) ), Margins)
    ;   findall(Margin, ( between(0, K1, C), margin(P, S, C, Margin) ), Margins)
    ).

margin(P, S, C, Margin) :-
    Head =.. [P, S, C],
    (   clause(Head, Body), rule_body(Body, Guard, M, Literals)
    ->  call(Guard),
        count_held(Literals, 0, Count),
        length(Literals, N),
        Margin is float(Count - M) / max(N, 1)
    ;   Margin = -1.0
    ).

rule_body((Guard, at_least(M, Literals)), Guard, M, Literals) :- !.
rule_body(at_least(M, Literals), true, M, Literals).

count_held([], C, C).
count_held([L|Ls], C0, C) :-
    (   literal_holds(L) -> C1 is C0 + 1 ; C1 = C0 ),
    count_held(Ls, C1, C).

best([], _, _, C, C).
best([M|Ms], I, Best, C0, C) :-
    I1 is I + 1,
    (   M > Best -> best(Ms, I1, M, I, C) ; best(Ms, I1, Best, C0, C) ).

% ---- explanation --------------------------------------------------------------------------

explain(S, Class, Proof) :-
    predict(S, Class),
    class_block(P, _),
    (   block(_, _, decision_list, P, _, _)
    ->  Head =.. [P, S, _],
        findall(Head-Body, clause(Head, Body), Clauses),
        list_proof(Clauses, 1, Proof)
    ;   Head =.. [P, S, Class],
        rule_proof(Head, Proof)
    ).

%   list_proof(+Clauses, +K, -Proof): the proof of the first clause of a decision list that holds.
list_proof([Head-Body|Cs], K, Proof) :-
    (   Body = (at_least(M, Literals), !, _ = C)
    ->  (   at_least(M, Literals)
        ->  Head =.. [P, S, _],
            A =.. [P, S, C],
            held(Literals, Held),
            length(Literals, N),
            Proof = first(A, K, rule(A, M, N, Held))
        ;   K1 is K + 1,
            list_proof(Cs, K1, Proof)
        )
    ;   Proof = default(Head)
    ).

rule_proof(A, Proof) :-
    (   clause(A, Body), rule_body(Body, Guard, M, Literals), call(Guard)
    ->  held(Literals, Held),
        length(Literals, N),
        Proof = rule(A, M, N, Held)
    ;   Proof = no_rule(A)
    ).

held([], []).
held([L|Ls], Held) :-
    (   literal_proof(L, P) -> Held = [P|Held1] ; Held = Held1 ),
    held(Ls, Held1).

literal_proof(\+ A, not(G)) :- !,
    evaluated(A, G),
    \+ call(G).
literal_proof(A, Proof) :-
    evaluated(A, G),
    call(G),
    atom_proof(G, Proof).

%   atom_proof(+Atom, -Proof): the proof of an atom that holds, by the kind of its predicate.
atom_proof(A, padding(A)) :-
    clause(A, outside(Y, X, H, W)),
    outside(Y, X, H, W), !.
atom_proof(A, Proof) :-
    functor(A, P, _),
    (   block(_, _, Kind, P, _, _) -> true ; Kind = input ),
    atom_proof(Kind, A, Proof).

atom_proof(input, A, test(A, V, T)) :-
    clause(A, (Data, V >= T)),
    call(Data), V >= T, !.
atom_proof(dense, A, Proof) :-
    rule_proof(A, Proof).
atom_proof(conv, A, Proof) :-
    rule_proof(A, Proof).
atom_proof(pool, A, pool(A, Proof)) :-
    clause(A, (Window, Source)),
    call(Window), call(Source), !,
    atom_proof(Source, Proof).
atom_proof(index, A, index(A, Proof)) :-
    clause(A, Source), !,
    atom_proof(Source, Proof).

% ---- batch --------------------------------------------------------------------------------
% classify_file(File, Mode) loads the x/N facts of File, evaluates the program on every sample
% at once (batch_evaluate/3, below) and prints, in file order, one line per sample:
%   Mode class   "Sample Class"
%   Mode atoms   "Sample Class" followed by every rule block's (and a decision list's) atoms as a string of 0/1 in the
%                block's flat order, one string per rule block in block order
%   Mode masks   "Sample Class", then one line per unit (dense) or channel (conv) of every rule
%                block in block order: a hexadecimal integer whose bit P * E + K is the atom
%                at position P = Y * W + X of the channel (P = 0 for a dense unit) for the K-th
%                sample, E samples in all (what the mofn2logic Prolog engine reads)
% The class is predict/2's: the highest margin, ties to the lowest class (a decision list: the
% class of its first rule that holds, else its default).

classify_file(File, Mode) :-
    load_files(File, [silent(true)]),
    findall(S, sample(S), Samples),
    batch_evaluate(Samples, Ctx, Values),
    batch_classes(Samples, Ctx, Values, Classes),
    batch_print(Mode, Classes, 0, Ctx, Values).

sample(S) :-
    input(_, Shape, _, _),
    first_value(Shape, Args),
    X =.. [x, S | Args],
    call(X).

first_value([], [_]).
first_value([_|Ds], [0|As]) :-
    first_value(Ds, As).

% ---- batch evaluation: every block bottom-up, all samples at once ----------------------------
% batch_evaluate(Samples, Ctx, Values) reads the same clauses predict/2 runs -- an input test's
% threshold from its body, a rule's M and literals from its at_least/2 body, a padding clause,
% a pool's window (maxpool/7, as window/5 reads it), an index atom's source from its clause --
% and evaluates them block by block on all samples at once. The truth of an atom over the E
% samples is one integer, bit K for the K-th sample (Ctx = ctx(E, Ones), Ones = 2^E - 1):
%   vec(T)          a block as T = v(I1, ..., In), one integer per atom in flat order
%   grid(H, W, T)   a block of channels on an H x W grid as T = g(I1, ..., Ic), one integer per
%                   channel, bit P * E + K for position P = Y * W + X
% A literal is then a few bitwise operations for every sample (and, in a grid, every position)
% at once, and a rule counts its literals with a bit-sliced binary counter. Values pairs every
% predicate with its block's value.

:- dynamic batch_bit/2.

batch_evaluate(Samples, ctx(E, Ones), Values) :-
    retractall(batch_bit(_, _)),
    batch_number(Samples, 0, E),
    Ones is (1 << E) - 1,
    input(_, Shape, Grain, In),
    batch_input(ctx(E, Ones), Shape, Grain, In, InValue),
    findall(O-b(P, Kind, Src, BShape), block(O, _, Kind, P, Src, BShape), Blocks0),
    keysort(Blocks0, Blocks),
    batch_blocks(Blocks, ctx(E, Ones), [In-InValue], Values).

batch_number([], E, E).
batch_number([S|Ss], K, E) :-
    assertz(batch_bit(S, K)),
    K1 is K + 1,
    batch_number(Ss, K1, E).

batch_blocks([], _, Values, Values).
batch_blocks([_-b(P, Kind, Src, Shape)|Bs], Ctx, Values0, Values) :-
    memberchk(Src-SrcValue, Values0),
    batch_shape(Src, SrcShape),
    batch_block(Kind, P, Src, Shape, SrcShape, SrcValue, Ctx, Value),
    batch_blocks(Bs, Ctx, [P-Value|Values0], Values).

batch_shape(P, Shape) :-
    (   block(_, _, _, P, _, Shape) -> true ; input(_, Shape, _, P) ).

%   batch_input(+Ctx, +Shape, +Grain, +In, -Value): the input tests on every x/N fact.
batch_input(ctx(_, _), Shape, Grain, In, vec(V)) :-
    batch_size(Shape, N),
    batch_zeros(N, V),
    batch_zeros(N, T),
    batch_thresholds(Grain, In, Shape, T),
    length(Shape, D),
    D2 is D + 2,
    functor(Fact, x, D2),
    arg(1, Fact, S),
    arg(D2, Fact, Value),
    forall(( call(Fact), batch_bit(S, K) ),
           (   batch_flat(Fact, 2, Shape, 0, I),
               I1 is I + 1,
               arg(I1, T, Threshold),
               (   Threshold \== none, Value >= Threshold
               ->  arg(I1, V, Old), New is Old \/ (1 << K), nb_setarg(I1, V, New)
               ;   true
               ) )).

%   batch_thresholds(+Grain, +In, +Shape, !T): T holds each input's threshold, or none.
batch_thresholds(Grain, In, Shape, T) :-
    functor(T, _, N),
    forall(between(1, N, I), nb_setarg(I, T, none)),
    length(Shape, D),
    D1 is D + 1,
    functor(Head, In, D1),
    forall(clause(Head, (_, _ >= Threshold)),
           (   Grain == channel
           ->  arg(2, Head, C),
               Shape = [_|Rest],
               batch_size(Rest, Per),
               First is C * Per + 1, Last is (C + 1) * Per,
               forall(between(First, Last, I), nb_setarg(I, T, Threshold))
           ;   batch_flat(Head, 2, Shape, 0, I0),
               I is I0 + 1,
               nb_setarg(I, T, Threshold)
           )).

%   batch_flat(+Term, +Arg, +Shape, +Acc, -I): the flat index of the coordinates in Term's
%   arguments from Arg on.
batch_flat(_, _, [], I, I).
batch_flat(T, A, [D|Ds], I0, I) :-
    arg(A, T, C),
    I1 is I0 * D + C,
    A1 is A + 1,
    batch_flat(T, A1, Ds, I1, I).

batch_size([], 1).
batch_size([D|Ds], N) :-
    batch_size(Ds, N0),
    N is D * N0.

batch_zeros(N, T) :-
    length(L, N),
    batch_fill(L, 0),
    T =.. [v|L].

batch_fill([], _).
batch_fill([X|Xs], X) :-
    batch_fill(Xs, X).

%   batch_block(+Kind, +P, +Src, +Shape, +SrcShape, +SrcValue, +Ctx, -Value)
batch_block(dense, P, _, [U], SrcShape, SrcValue, Ctx, vec(Out)) :-
    batch_vector(SrcValue, SrcShape, Ctx, vec(SV)),
    Ctx = ctx(_, Ones),
    batch_zeros(U, Out),
    functor(Head, P, 2),
    forall(( clause(Head, Body), rule_body(Body, _, M, Literals) ),
           (   arg(2, Head, Unit),
               batch_dense_literals(Literals, SrcShape, SV, Ones, Ints),
               batch_at_least(M, Ints, Ones, A),
               Unit1 is Unit + 1,
               nb_setarg(Unit1, Out, A)
           )).
batch_block(conv, P, Src, [C, OH, OW], SrcShape, SrcValue, Ctx, grid(OH, OW, Out)) :-
    batch_grid(SrcValue, SrcShape, Ctx, grid(H, W, G)),
    Ctx = ctx(E, _),
    CanvasOnes is (1 << (OH * OW * E)) - 1,
    batch_zeros(C, Out),
    functor(G, _, CS),
    batch_rows(G, H, W, E, Rows),
    batch_zeros(CS, Masks),
    functor(Head, P, 4),
    Geometry = geometry(H, W, OH, OW, E),
    forall(( clause(Head, Body), rule_body(Body, _, M, Literals) ),
           (   arg(2, Head, Unit), arg(3, Head, Y), arg(4, Head, X),
               batch_conv_literals(Literals, Y, X, Src, Rows, Masks, Geometry, CanvasOnes, Ints),
               batch_at_least(M, Ints, CanvasOnes, A),
               Unit1 is Unit + 1,
               nb_setarg(Unit1, Out, A)
           )).
batch_block(pool, P, _, [C, OH, OW], SrcShape, SrcValue, Ctx, grid(OH, OW, Out)) :-
    maxpool(P, kernel(KH, KW), strides(SH, SW), pads(PT, PL, _, _), dilations(DH, DW), _, _),
    batch_grid(SrcValue, SrcShape, Ctx, grid(H, W, G)),
    Ctx = ctx(E, _),
    batch_rows(G, H, W, E, Rows),
    batch_zeros(C, Out),
    KH1 is KH - 1, KW1 is KW - 1,
    forall(between(1, C, C1),
           (   arg(C1, Rows, RowsC),
               findall(Mask, ( between(0, KH1, KY), between(0, KW1, KX),
                               DY is KY * DH - PT, DX is KX * DW - PL,
                               batch_mask(RowsC, geometry(H, W, OH, OW, E), SH, SW, DY, DX, false, Mask) ),
                       Masks),
               batch_or(Masks, 0, A),
               nb_setarg(C1, Out, A)
           )).
batch_block(decision_list, P, _, [K], SrcShape, SrcValue, Ctx, vec(Out)) :-
    batch_vector(SrcValue, SrcShape, Ctx, vec(SV)),
    Ctx = ctx(_, Ones),
    batch_zeros(K, Out),
    functor(Head, P, 2),
    findall(Head-Body, clause(Head, Body), Clauses),
    batch_list(Clauses, SrcShape, SV, Ones, Ones, Out).
batch_block(index, P, Src, Shape, SrcShape, SrcValue, Ctx, vec(Out)) :-
    batch_vector(SrcValue, SrcShape, Ctx, vec(SV)),
    batch_size(Shape, N),
    batch_zeros(N, Out),
    length(Shape, D),
    D1 is D + 1,
    functor(Head, P, D1),
    forall(( clause(Head, Body), Body =.. [Src, _|_] ),
           (   batch_flat(Head, 2, Shape, 0, K),
               batch_flat(Body, 2, SrcShape, 0, I),
               I1 is I + 1, K1 is K + 1,
               arg(I1, SV, A),
               nb_setarg(K1, Out, A)
           )).

%   batch_list(+Clauses, +SrcShape, +SV, +Ones, +Left, !Out): a decision list's clauses in order;
%   Left holds the samples no earlier rule took. Each rule takes the samples of Left where it holds,
%   the default the rest.
batch_list([], _, _, _, _, _).
batch_list([Head-Body|Cs], SrcShape, SV, Ones, Left, Out) :-
    (   Body = (at_least(M, Literals), !, _ = C)
    ->  batch_dense_literals(Literals, SrcShape, SV, Ones, Ints),
        batch_at_least(M, Ints, Ones, Fires),
        Take is Fires /\ Left
    ;   arg(2, Head, C),
        Take = Left
    ),
    Left1 is Left xor Take,
    C1 is C + 1,
    arg(C1, Out, Old),
    New is Old \/ Take,
    nb_setarg(C1, Out, New),
    batch_list(Cs, SrcShape, SV, Ones, Left1, Out).

batch_or([], A, A).
batch_or([M|Ms], A0, A) :-
    A1 is A0 \/ M,
    batch_or(Ms, A1, A).

batch_dense_literals([], _, _, _, []).
batch_dense_literals([L|Ls], Shape, SV, Ones, [I|Is]) :-
    (   L = (\+ A) -> Negated = true ; A = L, Negated = false ),
    batch_flat(A, 2, Shape, 0, K),
    K1 is K + 1,
    arg(K1, SV, I0),
    (   Negated == true -> I is Ones xor I0 ; I = I0 ),
    batch_dense_literals(Ls, Shape, SV, Ones, Is).

%   A conv literal reads its source at (SY * Y + DY, SX * X + DX): its mask over the output grid
%   is built once per block (Masks: per source channel, a list of DY-DX-SY-SX-Mask).
batch_conv_literals([], _, _, _, _, _, _, _, []).
batch_conv_literals([L|Ls], Y, X, Src, Rows, Masks, Geometry, CanvasOnes, [I|Is]) :-
    (   L = (\+ A) -> Negated = true ; A = L, Negated = false ),
    arg(2, A, C), arg(3, A, YE), arg(4, A, XE),
    copy_term(t(Y, X, YE, XE), t(0, 0, Y0, X0)),
    copy_term(t(Y, X, YE, XE), t(1, 1, Y1, X1)),
    DY is Y0, DX is X0, SY is Y1 - DY, SX is X1 - DX,
    C1 is C + 1,
    arg(C1, Masks, Known),
    (   Known \== 0, memberchk(DY-DX-SY-SX-I0, Known)
    ->  true
    ;   arg(C1, Rows, RowsC),
        (   batch_padding(Src, C) -> Pad = true ; Pad = false ),
        batch_mask(RowsC, Geometry, SY, SX, DY, DX, Pad, I0),
        (   Known == 0 -> Known1 = [DY-DX-SY-SX-I0] ; Known1 = [DY-DX-SY-SX-I0|Known] ),
        nb_setarg(C1, Masks, Known1)
    ),
    (   Negated == true -> I is CanvasOnes xor I0 ; I = I0 ),
    batch_conv_literals(Ls, Y, X, Src, Rows, Masks, Geometry, CanvasOnes, Is).

batch_padding(Src, C) :-
    functor(Head, Src, 4),
    arg(2, Head, C),
    clause(Head, outside(_, _, _, _)), !.

%   batch_rows(+G, +H, +W, +E, -Rows): per channel, r(R1, ..., RH): the rows of its grid.
batch_rows(G, H, W, E, Rows) :-
    functor(G, _, C),
    batch_zeros(C, Rows),
    RowOnes is (1 << (W * E)) - 1,
    H1 is H - 1,
    forall(between(1, C, C1),
           (   arg(C1, G, Canvas),
               findall(R, ( between(0, H1, Y), R is (Canvas >> (Y * W * E)) /\ RowOnes ), Rs),
               RowsC =.. [r|Rs],
               nb_setarg(C1, Rows, RowsC)
           )).

%   batch_mask(+RowsC, +Geometry, +SY, +SX, +DY, +DX, +Pad, -Mask): bit (OY * OW + OX) * E + K
%   of Mask is the source atom at (SY * OY + DY, SX * OX + DX) of the K-th sample, or Pad
%   (the padding's truth) outside the source's H x W grid.
batch_mask(RowsC, geometry(H, W, OH, OW, E), SY, SX, DY, DX, Pad, Mask) :-
    OH1 is OH - 1,
    batch_mask_rows(OH1, RowsC, geometry(H, W, OH, OW, E), SY, SX, DY, DX, Pad, 0, Mask).

batch_mask_rows(OY, _, _, _, _, _, _, _, Mask, Mask) :-
    OY < 0, !.
batch_mask_rows(OY, RowsC, geometry(H, W, OH, OW, E), SY, SX, DY, DX, Pad, Acc, Mask) :-
    RY is SY * OY + DY,
    (   RY >= 0, RY < H
    ->  RY1 is RY + 1,
        arg(RY1, RowsC, R),
        batch_row(R, W, OW, E, SX, DX, Pad, Row)
    ;   Pad == true
    ->  Row is (1 << (OW * E)) - 1
    ;   Row = 0
    ),
    Acc1 is (Acc << (OW * E)) \/ Row,
    OY1 is OY - 1,
    batch_mask_rows(OY1, RowsC, geometry(H, W, OH, OW, E), SY, SX, DY, DX, Pad, Acc1, Mask).

%   batch_row(+R, +W, +OW, +E, +SX, +DX, +Pad, -Row): one output row read from source row R.
batch_row(R, W, OW, E, 1, DX, Pad, Row) :- !,
    Lo is min(OW, max(0, -DX)),
    Hi is max(Lo, min(OW, W - DX)),
    (   Lo < Hi
    ->  Mid is ((R >> ((Lo + DX) * E)) /\ ((1 << ((Hi - Lo) * E)) - 1)) << (Lo * E)
    ;   Mid = 0
    ),
    (   Pad == true
    ->  Row is Mid \/ ((1 << (Lo * E)) - 1) \/ (((1 << ((OW - Hi) * E)) - 1) << (Hi * E))
    ;   Row = Mid
    ).
batch_row(R, W, OW, E, SX, DX, Pad, Row) :-
    Ones is (1 << E) - 1,
    OW1 is OW - 1,
    batch_cells(OW1, R, W, E, Ones, SX, DX, Pad, 0, Row).

batch_cells(OX, _, _, _, _, _, _, _, Row, Row) :-
    OX < 0, !.
batch_cells(OX, R, W, E, Ones, SX, DX, Pad, Acc, Row) :-
    RX is SX * OX + DX,
    (   RX >= 0, RX < W -> Cell is (R >> (RX * E)) /\ Ones
    ;   Pad == true -> Cell = Ones
    ;   Cell = 0
    ),
    Acc1 is (Acc << E) \/ Cell,
    OX1 is OX - 1,
    batch_cells(OX1, R, W, E, Ones, SX, DX, Pad, Acc1, Row).

%   batch_vector(+Value, +Shape, +Ctx, -Vec) and batch_grid(+Value, +Shape, +Ctx, -Grid):
%   a block's value in the form its reader needs.
batch_vector(vec(V), _, _, vec(V)).
batch_vector(grid(H, W, G), _, ctx(E, Ones), vec(V)) :-
    batch_rows(G, H, W, E, Rows),
    functor(G, _, C),
    N is C * H * W,
    batch_zeros(N, V),
    H1 is H - 1, W1 is W - 1,
    forall(( between(1, C, C1), arg(C1, Rows, RowsC), between(0, H1, Y) ),
           (   Y1 is Y + 1,
               arg(Y1, RowsC, R),
               forall(between(0, W1, X),
                      (   A is (R >> (X * E)) /\ Ones,
                          K is ((C1 - 1) * H + Y) * W + X + 1,
                          nb_setarg(K, V, A) )) )).

batch_grid(grid(H, W, G), _, _, grid(H, W, G)).
batch_grid(vec(V), [C, H, W], ctx(E, _), grid(H, W, G)) :-
    batch_zeros(C, G),
    Per is H * W,
    forall(between(1, C, C1),
           (   First is (C1 - 1) * Per + 1,
               Last is C1 * Per,
               batch_canvas(Last, First, V, E, 0, Canvas),
               nb_setarg(C1, G, Canvas) )).

batch_canvas(K, First, _, _, Canvas, Canvas) :-
    K < First, !.
batch_canvas(K, First, V, E, Acc, Canvas) :-
    arg(K, V, A),
    Acc1 is (Acc << E) \/ A,
    K1 is K - 1,
    batch_canvas(K1, First, V, E, Acc1, Canvas).

%   batch_at_least(+M, +Ints, +Ones, -A): bit by bit, at least M of Ints have the bit set.
batch_at_least(M, Ints, Ones, A) :-
    (   M =< 0 -> A = Ones
    ;   length(Ints, N), M > N -> A = 0
    ;   batch_count(Ints, [], Slices),
        batch_at_least_count(Slices, M, Ones, A)
    ).

%   batch_count(+Ints, +Slices0, -Slices): the count of set bits, bit by bit, as binary digits
%   (Slices: the integer of the 1s, of the 2s, of the 4s, ...).
batch_count([], Slices, Slices).
batch_count([I|Is], Slices0, Slices) :-
    batch_add(Slices0, I, Slices1),
    batch_count(Is, Slices1, Slices).

batch_add([], C, Slices) :-
    (   C =:= 0 -> Slices = [] ; Slices = [C] ).
batch_add([B|Bs], C, Slices) :-
    (   C =:= 0
    ->  Slices = [B|Bs]
    ;   B1 is B xor C,
        C1 is B /\ C,
        Slices = [B1|Slices1],
        batch_add(Bs, C1, Slices1)
    ).

%   The count is at least M: compared digit by digit from the lowest (Ge: the digits so far
%   are at least M's).
batch_at_least_count(Slices, M, Ones, A) :-
    length(Slices, K),
    (   M >= 1 << K -> A = 0
    ;   batch_ge(Slices, M, Ones, A)
    ).

batch_ge([], _, Ge, Ge).
batch_ge([S|Ss], M, Ge0, Ge) :-
    (   M /\ 1 =:= 1 -> Ge1 is S /\ Ge0 ; Ge1 is S \/ Ge0 ),
    M1 is M >> 1,
    batch_ge(Ss, M1, Ge1, Ge).

%   batch_classes(+Samples, +Ctx, +Values, -Classes): Sample-Class for every sample, by the
%   margins of margins/2 computed from the class rules' counts.
batch_classes(Samples, _, Values, Classes) :-
    class_block(P, K),
    block(_, _, decision_list, P, _, _), !,
    memberchk(P-vec(Out), Values),
    K1 is K - 1,
    batch_list_pick(Samples, 0, Out, K1, Classes).
batch_classes(Samples, ctx(_, Ones), Values, Classes) :-
    class_block(P, K),
    block(_, _, dense, P, Src, _),
    memberchk(Src-SrcValue, Values),
    batch_shape(Src, SrcShape),
    batch_vector(SrcValue, SrcShape, ctx(_, Ones), vec(SV)),
    K1 is K - 1,
    findall(Rule, ( between(0, K1, C), batch_class_rule(P, C, SrcShape, SV, Ones, Rule) ), Rules),
    batch_pick(Samples, 0, Rules, Classes).

batch_class_rule(P, C, SrcShape, SV, Ones, Rule) :-
    Head =.. [P, _, C],
    (   clause(Head, Body), rule_body(Body, _, M, Literals)
    ->  length(Literals, N),
        batch_dense_literals(Literals, SrcShape, SV, Ones, Ints),
        batch_count(Ints, [], Slices),
        Rule = rule(M, N, Slices)
    ;   Rule = no_rule
    ).

batch_list_pick([], _, _, _, []).
batch_list_pick([S|Ss], I, Out, K1, [S-Class|Cs]) :-
    once(( between(0, K1, Class), C1 is Class + 1, arg(C1, Out, A), getbit(A, I) =:= 1 )),
    I1 is I + 1,
    batch_list_pick(Ss, I1, Out, K1, Cs).

batch_pick([], _, _, []).
batch_pick([S|Ss], K, Rules, [S-Class|Cs]) :-
    batch_margins(Rules, K, [M0|Ms]),
    best(Ms, 1, M0, 0, Class),
    K1 is K + 1,
    batch_pick(Ss, K1, Rules, Cs).

batch_margins([], _, []).
batch_margins([R|Rs], K, [Margin|Ms]) :-
    (   R = rule(M, N, Slices)
    ->  batch_digits(Slices, K, 0, 0, Count),
        Margin is float(Count - M) / max(N, 1)
    ;   Margin = -1.0
    ),
    batch_margins(Rs, K, Ms).

batch_digits([], _, _, Count, Count).
batch_digits([S|Ss], K, D, Count0, Count) :-
    Count1 is Count0 + (getbit(S, K) << D),
    D1 is D + 1,
    batch_digits(Ss, K, D1, Count1, Count).

batch_print(Mode, Classes, K, Ctx, Values) :-
    (   Mode == atoms
    ->  findall(V, ( block(_, _, Kind, P, _, Shape), ( Kind == dense ; Kind == conv ; Kind == decision_list ),
                     memberchk(P-Value, Values), batch_vector(Value, Shape, Ctx, vec(V)) ), Atoms)
    ;   Atoms = []
    ),
    batch_lines(Classes, K, Atoms),
    (   Mode == masks -> batch_write_masks(Values) ; true ).

batch_lines([], _, _).
batch_lines([S-Class|Cs], K, Atoms) :-
    format("~w ~w", [S, Class]),
    batch_write_atoms(Atoms, K),
    nl,
    K1 is K + 1,
    batch_lines(Cs, K1, Atoms).

batch_write_atoms([], _).
batch_write_atoms([V|Vs], K) :-
    put_char(' '),
    functor(V, _, N),
    forall(between(1, N, I),
           (   arg(I, V, A),
               (   getbit(A, K) =:= 1 -> put_char('1') ; put_char('0') ) )),
    batch_write_atoms(Vs, K).

batch_write_masks(Values) :-
    forall(( block(_, _, Kind, P, _, _), ( Kind == dense ; Kind == conv ; Kind == decision_list ) ),
           (   memberchk(P-Value, Values),
               (   Value = vec(T) -> true ; Value = grid(_, _, T) ),
               functor(T, _, N),
               forall(between(1, N, I), ( arg(I, T, A), format("~16r~n", [A]) ))
           )).
