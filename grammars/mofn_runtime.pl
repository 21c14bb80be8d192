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
%   margins(S, Margins)        the margin of every class, in class order
%   explain(S, Class, Proof)   the predicted class and the proof of its rule (below)
%   classify_file(File, Mode)  every sample of a data file; one line per sample
%
% The proof term of explain/3: the class rule, and recursively the literals that held in it.
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
% nothing here. Block predicates are tabled: classify_file/2 abolishes the tables between
% samples.

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
    block(O, _, dense, P, _, [K]),
    \+ ( block(O2, _, _, _, _, _), O2 > O ), !.

predict(S, Class) :-
    (   var(S) -> sample(S) ; true ),
    margins(S, [M0|Ms]),
    best(Ms, 1, M0, 0, Class).

margins(S, Margins) :-
    class_block(P, K),
    K1 is K - 1,
    findall(Margin, ( between(0, K1, C), margin(P, S, C, Margin) ), Margins).

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
    Head =.. [P, S, Class],
    rule_proof(Head, Proof).

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
% classify_file(File, Mode) loads the x/N facts of File and prints one line per sample, in
% file order: "Sample Class" (Mode class), followed by every rule block's atoms as a string of
% 0/1 in the block's flat order, one string per rule block in block order (Mode atoms).

classify_file(File, Mode) :-
    load_files(File, [silent(true)]),
    forall(sample(S), classify_sample(Mode, S)).

sample(S) :-
    input(_, Shape, _, _),
    first_value(Shape, Args),
    X =.. [x, S | Args],
    call(X).

first_value([], [_]).
first_value([_|Ds], [0|As]) :-
    first_value(Ds, As).

classify_sample(Mode, S) :-
    abolish_all_tables,
    (   predict(S, Class) -> true
    ;   throw(error(mofn2logic(no_class(S)), _))
    ),
    format("~w ~w", [S, Class]),
    (   Mode == atoms
    ->  forall(( block(_, _, Kind, P, _, Shape), ( Kind == dense ; Kind == conv ) ),
               ( put_char(' '), write_atoms(P, S, Shape) ))
    ;   true
    ),
    nl.

write_atoms(P, S, Shape) :-
    forall(coordinates(Shape, Cs),
           ( A =.. [P, S | Cs],
             (   call(A) -> put_char('1') ; put_char('0') ) )).

coordinates([], []).
coordinates([D|Ds], [I|Is]) :-
    D1 is D - 1,
    between(0, D1, I),
    coordinates(Ds, Is).
