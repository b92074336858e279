"""A hypothesis strategy that writes random programs of avcompile's subset as Python source."""

import dataclasses
import hashlib
import importlib.util
import re
import sys

from hypothesis import strategies as st

# Every construct the generator can write, each switchable. ``programs(features)`` writes only
# the enabled ones; tests/test_generated_programs.py says which of them CI enables, and why not.
FEATURES = {
    "second_arg": True,  # f(x, y): a second per-example vector of the same length
    "aug_assign": True,  # s += e, s -= e
    "elem_write": True,  # x[i] = e
    "elem_aug": True,  # x[i] += e
    "swap": True,  # x[i], x[j] = x[j], x[i]
    "tuple_assign": True,  # s, t = e1, e2 (often plain numbers)
    "local_swap": True,  # s, t = t, s
    "relaxed_if": True,  # if on comparisons of per-example values
    "elif": True,  # elif / else chains of relaxed ifs
    "bool_ops": True,  # and / or / not on relaxed comparisons
    "eq_ops": True,  # == and != between per-example values
    "relaxed_chain": True,  # a < b < c on per-example values
    "hard_if": True,  # if on hard values: i > 0, n > 2, i % 2 == 0
    "hard_chain": True,  # 0 < i < n - 1 on hard values
    "for_range": True,  # for i in range(n) / range(1, n) / range(n - 1)
    "for_each": True,  # for v in x
    "counter_after_for": True,  # a for loop's counter read after the loop
    "counter_after_for_in_branch": True,  # ... when the loop is inside a relaxed if
    "hard_while": True,  # k = 0; while k < n: ...; k += 1
    "int_loop_in_branch": True,  # hard_while / relaxed_int / relaxed_scan inside a relaxed if
    "relaxed_while": True,  # halving / counting loops on per-example values
    "counter_in_relaxed_while": True,  # an int counted in a relaxed while and read after it
    "relaxed_scan": True,  # j = 0; while j < n - 1 and x[j] < a: j += 1; s = s + j
    "ifexp": True,  # a if c else b, one branch an element of x or y
    "ifexp_numbers": True,  # a if c else b, both branches any value (plain numbers too)
    "product": True,  # a * b of two values (not only by a literal)
    "guarded_div": True,  # a / (b * b + 1.0)
    "div_in_branch": True,  # if b != 0.0: s = 1.0 / b (if b > 0.0: math.sqrt(b), math.log(b))
    "minmax": True,  # min(a, b), max(a, b)
    "abs": True,  # abs(a)
    "math_fn": True,  # math.sqrt, math.log, math.exp of safe arguments
    "int_arith": True,  # a + n, a + i: hard integers in float arithmetic
    "neg_index": True,  # x[-1]
    "inf_sentinel": True,  # best = math.inf; if x[i] < best: best = x[i]
    "relaxed_int": True,  # m = 0; ... if x[i] > s: m = i; s = s + m
    # Relaxed integers (SEMANTICS 10): each ``relaxed_int*`` statement below defines one or two,
    # then reads them (as a number, an index, compared, ...) and may run statements that do.
    "relaxed_int_index": True,  # a relaxed integer as an index: x[m], x[m] = e, x[i], x[m] = ...
    "relaxed_int_compare": True,  # a relaxed integer compared: if m > 1, m == i, m1 == m2
    "relaxed_int_shift": True,  # a shifted relaxed index: x[m + 1] under if m < n - 1, x[m - 1]
    "relaxed_int_arith": True,  # m // 2, m % 2, x[m % n], x[(m1 + m2) // 2], m1 + m2
    "relaxed_int_count": True,  # c = 0; for ...: if cond: c += 1 (a count, then compared, // ...)
    "relaxed_int_pair": True,  # two positions picked in one loop (argmin and argmax)
    "relaxed_int_insertion": True,  # while j >= 0 and x[j] > key: ...; j -= 1, then x[j + 1] = key
    "relaxed_int_bisect": True,  # while lo < hi: mid = (lo + hi) // 2; if ...: lo = mid + 1 ...
    "relaxed_int_move": True,  # m = m - 1, or if cond: m = m + 1 (kept in range)
    "relaxed_int_move_after_while": True,  # j = j - 1 unconditionally after a relaxed while
    "relaxed_int_sift": True,  # while m > 0 and x[m - 1] > x[m]: swap; m = m - 1 (m relaxed)
    "relaxed_int_certain": True,  # an argmin loop that may run zero times: m = 1 in every example
    "relaxed_int_helper": True,  # helper_at(x, m), c = helper_count(x, t): through a helper
    "relaxed_int_table": True,  # d = torch.zeros(n, n, ...) filled from x; d[i, m], d[m, i] = e
    "input_table": True,  # the table: torch.as_tensor(x, dtype=...).reshape(n, 1) - ... (n, n)
    "tensor_of_input": True,  # the table from torch.tensor(x, dtype=...) instead of as_tensor
    "relaxed_int_wrap_write": True,  # a write at x[c - 1], 0 <= c <= n: at -1 or n - 1 in Python
    "constant_table_write": True,  # the table's first write at a relaxed position, not filled
    "sentinel_under_branch_counter": True,  # if k % 2 == 0: if x[k] < best: ..., k a counter
    # of a hard while inside a relaxed if
    "write_at_certain_int": True,  # x[k] = e, k a relaxed integer by kind, the same in every
    # example: a hard while's counter in a relaxed if, an argmin of zero iterations, a relaxed
    # while's counter in its body when it is also moved under a relaxed if after the loop
    "helper_call": True,  # helper(a, b): a module-level function of floats
    "helper_branch": True,  # a module-level function with a relaxed if
    "helper_array": True,  # a module-level function that takes the array
    "alias": True,  # z = x; z[i] = e (z and x are the same list)
    "copy": True,  # z = list(x); z[i] = e; s = s + z[j]
    "hard_exit": True,  # break / continue / return under a hard if
    "relaxed_exit": True,  # break / continue / return under a relaxed if (SEMANTICS 11)
    "listcomp": True,  # ys = [x[i] * 2.0 for i in range(n) if i % 2 == 0]; s = s + ys[0] (sum(ys))
    "genexp": True,  # sum(v for v in x if v > a), max(x[i] + x[j] for ... for ...), if any(...):
    "comprehension_reuse": True,  # a comprehension's variable named as a local outside it (i, s0)
    "listcomp_table": True,  # t = [[0.0] * (n + 1) for _ in range(n + 1)]; t[i][j] = e; t[n][n]
    "table_from_inf": True,  # t = [[math.inf] * (n + 1) ...]; t[i][j] = c + min(t[i - 1][j], ...)
    "minmax_of_mixed_list": True,  # min(t[k]), min(ys) after ys[i] = e: numbers among x's values
    "table_at_relaxed_int": True,  # t[m][j]: a table of lists read at a relaxed row m
}

HELPERS = {
    "helper": "def helper(v, w):\n    return v * 2.0 + w\n",
    "helper_pick": (
        "def helper_pick(v, w):\n    r = w\n    if v > w:\n        r = v\n    return r\n"
    ),
    "helper_at": "def helper_at(a, k):\n    return a[k] * 2.0 + a[0]\n",
    "helper_count": (
        "def helper_count(a, t):\n    c = 0\n    for i in range(len(a)):\n"
        "        if a[i] > t:\n            c += 1\n    return c\n"
    ),
    "helper_sum": (
        "def helper_sum(a):\n    t = 0.0\n    for i in range(len(a)):\n"
        "        t = t + a[i]\n    return t\n"
    ),
}

SENTINEL = "best"  # the name of the math.inf sentinel
INF_TABLE = "cost"  # the prefix of the names of tables started at math.inf (table_from_inf)
MAX_N = 5  # inputs have n in [program.n_min, MAX_N]
LITERALS = ("0.0", "1.0", "0.5", "-2.0", "3.0")
SCALES = ("0.5", "2.0", "-1.0")
FOR_RANGES = (("range(n)", 0, 1), ("range(1, n)", 1, 1), ("range(n - 1)", 0, 2))


def shifted(name, offset):
    """``name``, ``name + offset`` or ``name - -offset``."""
    if offset == 0:
        return name
    return f"{name} + {offset}" if offset > 0 else f"{name} - {-offset}"


@dataclasses.dataclass(frozen=True)
class Program:
    """A generated program: its source, the least n its indices need, whether f takes y, the
    features it uses and the names it returns."""

    source: str
    n_min: int
    has_y: bool
    features: frozenset
    results: tuple = ()

    def __str__(self):
        return self.source


@dataclasses.dataclass(frozen=True)
class _Comprehension:
    """The ``for`` clauses of a comprehension (``text``), the scope of its value (``inner``), the
    values worth reading there (``x[i]``, ``v``), its hard integer variables, the least number of
    values it gives, whether it gives exactly n, the outer names its variables reuse and whether
    it has a relaxed ``if``."""

    text: str
    inner: "_Scope"
    focus: tuple
    ints: tuple
    least: int
    full: bool
    reused: tuple
    relaxed: bool


@dataclasses.dataclass(frozen=True)
class _Scope:
    """What a statement may use: float locals, hard counters (name -> (lo, d): lo <= c <= n - d),
    relaxed integers (the same, lo or d None where Python's value has no such bound), per-element
    loop values, nesting depth, whether this is inside a relaxed ``if`` (``branch``) or a relaxed
    ``if`` or ``while`` (``relaxed``), and the innermost loop ("for" or "while")."""

    floats: tuple
    counters: tuple = ()
    elements: tuple = ()
    depth: int = 0
    branch: bool = False
    relaxed: bool = False
    loop: str = None
    ints: tuple = ()
    guarded: bool = False  # under a hard if on a counter of a hard while in a relaxed branch
    comprehension: int = 0  # how many comprehensions this is inside

    def with_counter(self, name, lo, d):
        return dataclasses.replace(self, counters=(*self.counters, (name, lo, d)))

    def with_int(self, name, lo, d):
        return dataclasses.replace(self, ints=(*self.ints, (name, lo, d)))

    def deeper(self, branch=False, relaxed=False, loop=None):
        return dataclasses.replace(
            self,
            depth=self.depth + 1,
            branch=self.branch or branch,
            relaxed=self.relaxed or relaxed or branch,
            loop=loop or self.loop,
        )


class _Writer:
    """Draws one program, statement by statement, with hypothesis' ``draw``."""

    MAX_DEPTH = 3

    def __init__(self, draw, features):
        self.draw = draw
        self.on = {name for name, enabled in features.items() if enabled}
        self.used = set()
        self.helpers = set()
        self.count = 0
        self.n_min = draw(st.integers(2, MAX_N), label="n_min")
        self.has_y = self.maybe("second_arg")
        self.arrays = ("x", "y") if self.has_y else ("x",)
        self.sentinel = None
        self.results = ()
        self.branch_counters = set()  # counters of hard whiles inside relaxed branches
        self.loop_ints = set()  # relaxed integers that are a relaxed while's hard counter
        self.maybe_certain = set()  # relaxed integers that may be the same in every example

    # -- helpers --------------------------------------------------------------------------

    def maybe(self, feature):
        """If ``feature`` is enabled, whether to use it here (recorded as used if so)."""
        if feature in self.on and self.draw(st.booleans(), label=feature):
            self.used.add(feature)
            return True
        return False

    def fresh(self, prefix):
        self.count += 1
        return f"{prefix}{self.count}"

    def pick(self, options, label=None):
        return self.draw(st.sampled_from(options), label=label)

    def choose(self, options):
        """One of ``options`` (name, features) whose features (None, a name or a tuple of names)
        are all enabled, recorded as used; the first option is the simplest."""

        def needs(features):
            return (
                () if features is None else (features,) if isinstance(features, str) else features
            )

        allowed = [name for name, f in options if set(needs(f)) <= self.on]
        name = self.pick(allowed)
        self.used.update(needs(dict(options)[name]))
        return name

    # -- indices --------------------------------------------------------------------------

    def index(self, scope, write=False):
        """An index in range for every n >= n_min; ``write``: the index of an element written."""
        options = [("literal", None)]
        counters = scope.counters
        if write and "write_at_certain_int" not in self.on:
            counters = [c for c in counters if c[0] not in self.branch_counters]
        if counters:
            options.append(("counter", None))
        options.append(("negative", "neg_index"))
        if self.positions(scope, write):
            options.append(("relaxed", "relaxed_int_index"))
        if any(self.writable(k[0], write) for k in scope.ints):
            options.append(("relaxed_arith", ("relaxed_int_index", "relaxed_int_arith")))
        kind = self.choose(options)
        if kind == "literal":
            return str(self.draw(st.integers(0, self.n_min - 1)))
        if kind == "negative":
            return "-1"
        if kind == "relaxed":
            return self.position(scope, write)
        if kind == "relaxed_arith":
            return self.position_arith(scope, write)
        name, lo, d = self.pick(counters)
        return shifted(name, self.draw(st.integers(-lo, d - 1)))

    # -- relaxed integers as indices: always in range in Python ---------------------------

    def wraps(self, lo, d, write):
        """Whether this is a write at a relaxed index lo <= k <= n - d that may be negative (-1,
        the last element) with ``relaxed_int_wrap_write`` off."""
        return write and lo < 0 and "relaxed_int_wrap_write" not in self.on

    def offsets(self, lo, d, write=False):
        """The offsets c for which ``k + c`` is a valid index (-1, that is the last element,
        included) when lo <= k <= n - d; only 0 without ``relaxed_int_shift``."""
        if lo is None or d is None or -1 - lo > d - 1:
            return []
        valid = [c for c in range(-1 - lo, d) if not self.wraps(lo + c, d - c, write)]
        if "relaxed_int_shift" not in self.on:
            return [0] if 0 in valid else []
        return valid

    def writable(self, name, write):
        """Whether a write may be at the relaxed integer ``name`` (see write_at_certain_int)."""
        certain = name in self.maybe_certain and "write_at_certain_int" not in self.on
        return not (write and certain)

    def positions(self, scope, write=False):
        return [
            (name, lo, d)
            for name, lo, d in scope.ints
            if self.offsets(lo, d, write) and self.writable(name, write)
        ]

    def position(self, scope, write=False, name=None):
        """A relaxed integer of ``scope`` (``name`` if given) as an index, shifted by a hard
        offset at times."""
        name, lo, d = self.pick([k for k in self.positions(scope, write) if name in (None, k[0])])
        offsets = self.offsets(lo, d, write)
        offset = 0 if 0 in offsets and self.draw(st.booleans()) else self.pick(offsets)
        if offset:
            self.used.add("relaxed_int_shift")
        return shifted(name, offset)

    def position_arith(self, scope, write=False):
        """``k % n`` (any relaxed integer), ``k // 2`` or ``(k1 + k2) // 2`` as an index."""
        ints = [k for k in scope.ints if self.writable(k[0], write)]
        halved = [
            k
            for k in ints
            if k[1] is not None
            and k[1] >= -2
            and k[2] is not None
            and not self.wraps(k[1] // 2, k[2], write)
        ]
        pairs = [
            (a, b)
            for a in halved
            for b in halved
            if a[0] < b[0]
            and a[1] >= -1
            and b[1] >= -1
            and a[2] + b[2] >= 1
            and not self.wraps((a[1] + b[1]) // 2, (a[2] + b[2] + 1) // 2, write)
        ]
        forms = ["mod"] + ["half"] * bool(halved) + ["mid"] * bool(pairs)
        form = self.pick(forms)
        if form == "half":
            return f"{self.pick(halved)[0]} // 2"
        if form == "mid":
            a, b = self.pick(pairs)
            return f"({a[0]} + {b[0]}) // 2"
        return f"{self.pick(ints)[0]} % n"

    def element(self, scope, write=False):
        return f"{self.pick(self.arrays)}[{self.index(scope, write)}]"

    # -- expressions ----------------------------------------------------------------------

    def atom(self, scope):
        options = [("local", None), ("element", None), ("literal", None)]
        if scope.elements:
            options.append(("loop_value", None))
        kind = self.choose(options)
        if kind == "local":
            return self.pick(scope.floats)
        if kind == "element":
            return self.element(scope)
        if kind == "loop_value":
            return self.pick(scope.elements)
        return self.pick(LITERALS)

    def expr(self, scope, depth=0):
        if depth >= 2:
            return self.atom(scope)
        kind = self.choose(
            [
                ("atom", None),
                ("add", None),
                ("sub", None),
                ("scale", None),
                ("product", "product"),
                ("guarded_div", "guarded_div"),
                ("min", "minmax"),
                ("max", "minmax"),
                ("abs", "abs"),
                ("math_fn", "math_fn"),
                ("ifexp", "ifexp"),
                ("ifexp_numbers", "ifexp_numbers"),
                ("int_arith", "int_arith"),
                ("helper", "helper_call"),
                ("helper_pick", "helper_branch"),
                ("helper_sum", "helper_array"),
            ]
        )
        if kind == "atom":
            return self.atom(scope)
        a = self.expr(scope, depth + 1)
        if kind == "scale":
            return f"{a} * {self.pick(SCALES)}"
        if kind == "abs":
            return f"abs({a})"
        if kind == "math_fn":
            # Arguments away from the points of infinite slope: there the gradient is not finite
            # in plain torch either. Inside a relaxed branch, s_div_in_branch tests those points.
            return self.pick(
                (
                    f"math.sqrt(({a}) * ({a}) + 1.0)",
                    f"math.sqrt(abs({a}) + 1.0)",
                    f"math.log(({a}) * ({a}) + 1.0)",
                    f"math.exp(-abs({a}))",
                )
            )
        if kind == "int_arith":
            ints = ["n", "len(x)", *(name for name, _, _ in scope.counters)]
            if scope.ints and self.draw(st.booleans()):  # a relaxed integer as a number
                return f"({a} + {self.int_number(scope)})"
            return f"({a} + {self.pick(ints)})"
        if kind == "helper_sum":
            self.helpers.add("helper_sum")
            return f"helper_sum({self.pick(self.arrays)})"
        if kind == "ifexp":
            a, b = self.element(scope), a
            if self.draw(st.booleans()):
                a, b = b, a
        else:
            b = self.expr(scope, depth + 1)
        if kind in ("ifexp", "ifexp_numbers"):
            return f"({a} if {self.relaxed_cond(scope)} else {b})"
        if kind in ("helper", "helper_pick"):
            self.helpers.add(kind)
            return f"{kind}({a}, {b})"
        if kind in ("min", "max"):
            return f"{kind}({a}, {b})"
        if kind == "guarded_div":
            c = self.atom(scope)
            return f"({a}) / ({c} * {c} + 1.0)"
        op = {"add": "+", "sub": "-", "product": "*"}[kind]
        return f"({a} {op} {b})"

    # -- conditions -----------------------------------------------------------------------

    def comparison(self, scope):
        a, b = self.element(scope), self.expr(scope, 1)
        if self.draw(st.booleans()):
            a, b = b, a
        op = self.choose(
            [
                (">", None),
                ("<", None),
                (">=", None),
                ("<=", None),
                ("==", "eq_ops"),
                ("!=", "eq_ops"),
            ]
        )
        return f"{a} {op} {b}"

    def relaxed_cond(self, scope, depth=0):
        options = [("compare", None)]
        if scope.ints:
            options.append(("int_compare", "relaxed_int_compare"))
        if depth == 0:
            options += [("and", "bool_ops"), ("or", "bool_ops"), ("not", "bool_ops")]
            options.append(("chain", "relaxed_chain"))
        if scope.comprehension < 2:  # any(...) / all(...), in one comprehension at most
            options.append(("reduction", "genexp"))
        kind = self.choose(options)
        if kind == "compare":
            return self.comparison(scope)
        if kind == "reduction":
            return self.truth_reduction(scope)[0]
        if kind == "int_compare":
            return self.int_comparison(scope, chain=depth == 0)
        if kind == "not":
            return f"not {self.comparison(scope)}"
        if kind == "chain":
            return f"{self.atom(scope)} < {self.element(scope)} < {self.atom(scope)}"
        return f"{self.comparison(scope)} {kind} {self.relaxed_cond(scope, depth + 1)}"

    def int_comparison(self, scope, chain=False, name=None):
        """A comparison of a relaxed integer (``name`` if given) with a hard value, a counter,
        another relaxed integer or a per-example value; read off the distributions (SEMANTICS
        10)."""
        name = name or self.pick(scope.ints)[0]
        k = self.draw(st.integers(0, 2))
        op = self.pick(("<", "<=", ">", ">=", "==", "!="))
        forms = [f"{name} {op} {k}", f"{name} {op} n - 1"]
        if scope.counters:
            forms.append(f"{name} {op} {self.pick(scope.counters)[0]}")
        others = [i for i, _, _ in scope.ints if i != name]
        if others:
            forms += [f"{name} {op} {self.pick(others)}"] * 2
        if "relaxed_int_arith" in self.on:
            forms.append(f"{name} % 2 == {k % 2}")
            forms.append(f"{name} // 2 {op} {k // 2}")
        if chain and "relaxed_chain" in self.on:
            forms.append(f"0 < {name} < n - 1")
        forms.append(f"{name} {op} {self.element(scope)}")  # as a number
        form = self.pick(forms)
        if "%" in form or "//" in form:
            self.used.add("relaxed_int_arith")
        if form.startswith("0 <"):
            self.used.add("relaxed_chain")
        return form

    def int_number(self, scope):
        """A relaxed integer as a number (its expectation): ``m``, ``m1 + m2``, ``m // 2``..."""
        name = self.pick(scope.ints)[0]
        forms = [name, f"{name} * 0.5"]
        if "relaxed_int_arith" in self.on:
            forms += [f"{name} // 2", f"{name} % 2"]
            others = [i for i, _, _ in scope.ints if i != name]
            if others:
                other = self.pick(others)
                forms += [f"({name} + {other})", f"({name} + {other}) // 2", f"({name} - {other})"]
        form = self.pick(forms)
        if "%" in form or "//" in form or "(" in form:
            self.used.add("relaxed_int_arith")
        return form

    def hard_cond(self, scope):
        options = [("n", None)]
        if scope.counters:
            options += [("counter", None), ("parity", None), ("chain", "hard_chain")]
        kind = self.choose(options)
        if kind == "n":
            return self.pick(("n > 2", "n == 3", "n < 4"))
        name = self.pick([c for c, _, _ in scope.counters])
        if kind == "counter":
            return self.pick((f"{name} > 0", f"{name} < n - 1", f"{name} == 1"))
        if kind == "parity":
            return f"{name} % 2 == 0"
        return f"0 < {name} < n - 1"

    # -- statements -----------------------------------------------------------------------

    def block(self, scope, indent, most=3):
        size = self.draw(st.integers(1, most))
        lines = []
        for _ in range(size):
            lines += self.stmt(scope, indent)
        return lines

    def stmt(self, scope, indent):
        simple = [
            ("assign", None),
            ("aug_assign", "aug_assign"),
            ("elem_write", "elem_write"),
            ("elem_aug", "elem_aug"),
            ("swap", "swap"),
            ("tuple_assign", "tuple_assign"),
            ("local_swap", "local_swap"),
            ("div_in_branch", "div_in_branch"),
            ("alias", "alias"),
            ("copy", "copy"),
            ("relaxed_exit", "relaxed_exit"),
            ("listcomp", "listcomp"),
            ("genexp", "genexp"),
        ]
        if not scope.relaxed:  # under relaxed control an exit is relaxed_exit's
            simple.append(("hard_exit", "hard_exit"))
        if self.sentinel and (not scope.guarded or "sentinel_under_branch_counter" in self.on):
            simple.append(("sentinel", None))
        compound = [
            ("relaxed_if", "relaxed_if"),
            ("hard_if", "hard_if"),
            ("for_range", "for_range"),
            ("for_each", "for_each"),
            ("hard_while", "hard_while"),
            ("relaxed_while", "relaxed_while"),
            ("relaxed_scan", "relaxed_scan"),
            ("relaxed_int", "relaxed_int"),
            ("relaxed_int_insertion", ("relaxed_int_insertion", "relaxed_int_index")),
            (
                "relaxed_int_bisect",
                ("relaxed_int_bisect", "relaxed_int_index", "relaxed_int_arith"),
            ),
            ("relaxed_int_table", ("relaxed_int_table", "relaxed_int_index")),
            ("listcomp_table", "listcomp_table"),
        ]
        if scope.branch:  # an int assigned in a relaxed branch: SEMANTICS 2 and 10
            ints = (
                "hard_while",
                "relaxed_int",
                "relaxed_scan",
                "relaxed_int_insertion",
                "relaxed_int_bisect",
                "relaxed_int_table",
            )
            compound = [(k, (f, "int_loop_in_branch") if k in ints else f) for k, f in compound]
        options = simple + (compound if scope.depth < self.MAX_DEPTH else [])
        kind = self.choose(options)
        return [" " * indent + line for line in getattr(self, "s_" + kind)(scope)]

    def nested(self, scope, branch=False, most=3, relaxed=False, loop=None):
        """The lines of a nested block, indented by four."""
        return self.block(scope.deeper(branch, relaxed, loop), 4, most)

    def s_assign(self, scope):
        return [f"{self.pick(scope.floats)} = {self.expr(scope)}"]

    def s_aug_assign(self, scope):
        op = self.pick(("+=", "-="))
        return [f"{self.pick(scope.floats)} {op} {self.expr(scope)}"]

    def s_elem_write(self, scope):
        return [f"{self.element(scope, write=True)} = {self.expr(scope)}"]

    def s_elem_aug(self, scope):
        return [f"{self.element(scope, write=True)} {self.pick(('+=', '-='))} {self.expr(scope)}"]

    def s_local_swap(self, scope):
        a, b = self.pick(scope.floats), self.pick(scope.floats)
        return [f"{a}, {b} = {b}, {a}"]

    def s_copy(self, scope):
        copy, array = self.fresh("z"), self.pick(self.arrays)
        target = self.pick(scope.floats)
        return [
            f"{copy} = list({array})",
            f"{copy}[{self.index(scope, write=True)}] = {self.expr(scope)}",
            f"{target} = {target} + {copy}[{self.index(scope)}]",
        ]

    def exit(self, scope):
        """``break``, ``continue`` (in a for loop: a while would not advance) or ``return``."""
        exits = [f"return {', '.join(self.results)}"]
        if scope.loop:
            exits.append("break")
        if scope.loop == "for":
            exits.append("continue")
        return self.pick(exits)

    def s_hard_exit(self, scope):
        return [f"if {self.hard_cond(scope)}:", f"    {self.exit(scope)}"]

    def s_relaxed_exit(self, scope):
        return [f"if {self.relaxed_cond(scope)}:", f"    {self.exit(scope)}"]

    def s_swap(self, scope):
        array = self.pick(self.arrays)
        i, j = self.index(scope, write=True), self.index(scope, write=True)
        return [f"{array}[{i}], {array}[{j}] = {array}[{j}], {array}[{i}]"]

    def s_tuple_assign(self, scope):
        a, b = self.pick(scope.floats), self.pick(scope.floats)
        if a == b:
            return [f"{a} = {self.expr(scope)}"]
        return [f"{a}, {b} = {self.expr(scope)}, {self.expr(scope)}"]

    def s_div_in_branch(self, scope):
        """A division, square root or logarithm under the relaxed test that makes it safe: in the
        branch not taken its value is not finite, which avcompile must not let through."""
        target, value = self.pick(scope.floats), self.atom(scope)
        safe = [(f"{value} != 0.0", f"1.0 / {value}")]
        if "math_fn" in self.on:
            safe += [
                (f"{value} > 0.0", f"math.sqrt({value})"),
                (f"{value} > 0.0", f"math.log({value})"),
            ]
        test, result = self.pick(safe)
        lines = [f"if {test}:", f"    {target} = {result}"]
        if self.draw(st.booleans()):
            lines += ["else:", f"    {target} = 0.0"]
        return lines

    def s_alias(self, scope):
        alias = self.fresh("z")
        array = self.pick(self.arrays)
        index = self.index(scope, write=True)
        return [f"{alias} = {array}", f"{alias}[{index}] = {self.expr(scope)}"]

    def s_sentinel(self, scope):
        value = self.element(scope)
        return [f"if {value} < {self.sentinel}:", f"    {self.sentinel} = {value}"]

    def s_relaxed_if(self, scope):
        lines = [f"if {self.relaxed_cond(scope)}:", *self.nested(scope, branch=True)]
        if self.maybe("elif"):
            lines += [f"elif {self.relaxed_cond(scope)}:", *self.nested(scope, branch=True)]
        if self.draw(st.booleans()):
            lines += ["else:", *self.nested(scope, branch=True)]
        return lines

    def s_hard_if(self, scope):
        cond = self.hard_cond(scope)
        if set(re.findall(r"\w+", cond)) & self.branch_counters:
            scope = dataclasses.replace(scope, guarded=True)
        lines = [f"if {cond}:", *self.nested(scope)]
        if self.draw(st.booleans()):
            lines += ["else:", *self.nested(scope)]
        return lines

    def s_for_range(self, scope):
        name = self.fresh("i")
        bounds, lo, d = self.pick(FOR_RANGES)
        body = self.nested(scope.with_counter(name, lo, d), loop="for")
        lines = [f"for {name} in {bounds}:", *body]
        after = "counter_after_for_in_branch" if scope.branch else "counter_after_for"
        if self.maybe(after):
            target = self.pick(scope.floats)
            lines.append(f"{target} = {target} + {name}")
        return lines

    def s_for_each(self, scope):
        name = self.fresh("v")
        inner = dataclasses.replace(scope, elements=(*scope.elements, name))
        return [f"for {name} in {self.pick(self.arrays)}:", *self.nested(inner, loop="for")]

    def s_hard_while(self, scope):
        name = self.fresh("k")
        if scope.branch:
            self.branch_counters.add(name)
        body = self.nested(scope.with_counter(name, 0, 1), loop="while")
        return [f"{name} = 0", f"while {name} < n:", *body, f"    {name} += 1"]

    def s_relaxed_while(self, scope):
        w, c = self.fresh("w"), self.fresh("c")
        value = self.atom(scope)
        if self.pick(("halving", "counting")) == "halving":
            lines = [f"{w} = {value} * {value} + 1.0", f"{c} = 0.0", f"while {w} > 1.0:"]
            step = [f"    {w} = {w} / 2.0", f"    {c} = {c} + 1.0"]
        else:
            # At most 4 iterations, so that soft mode (which also runs the loop where Python
            # does not) cannot make a local grow without bound.
            lines = [f"{w} = {value} * {value}", f"{c} = 0.0", f"while {c} < {w} and {c} < 4.0:"]
            step = [f"    {c} = {c} + 1.0"]
        counted = self.maybe("counter_in_relaxed_while")
        if counted:
            j = self.fresh("j")
            lines.insert(0, f"{j} = 0")
            step.append(self.pick((f"    {j} = {j} + 1", f"    {j} += 1")))
        if self.draw(st.booleans()):
            step += self.nested(scope, most=2, relaxed=True, loop="while")
        target = self.pick(scope.floats)
        after = [f"{target} = {target} + {c}"]
        if counted:  # 0 <= j, with no bound in n
            self.loop_ints.add(j)
            after += self.use_int(scope.with_int(j, 0, None))
        return lines + step + after

    # -- comprehensions -------------------------------------------------------------------

    def loop_variable(self, scope, taken, prefix):
        """A comprehension's loop variable: a fresh name or, with ``comprehension_reuse``, at
        times a name the function also uses outside it (a counter, a relaxed integer, a loop
        value, a float local), which Python 3 keeps apart from the comprehension's own; not one
        of ``taken``. Returns the name and whether it is reused."""
        outside = [
            *(name for name, _, _ in scope.counters),
            *(name for name, _, _ in scope.ints),
            *scope.elements,
            *scope.floats,
        ]
        outside = [name for name in dict.fromkeys(outside) if name not in taken]
        if outside and self.draw(st.integers(0, 2)) == 0 and self.maybe("comprehension_reuse"):
            return self.pick(outside), True
        return self.fresh(prefix), False

    @staticmethod
    def bind(scope, name, counter=None):
        """``scope`` inside a comprehension whose variable ``name`` is a hard integer (``counter``
        its bounds (lo, d)) or, with ``counter`` None, a value: the name's outer meaning, if it
        has one, is hidden there (a float local keeps being a number)."""
        counters = tuple(c for c in scope.counters if c[0] != name)
        elements = tuple(e for e in scope.elements if e != name)
        if counter is None:
            elements += (name,)
        elif counter[0] >= 0 and counter[1] >= 1:  # an index of x, as every counter is
            counters += ((name, *counter),)
        ints = tuple(k for k in scope.ints if k[0] != name)
        return dataclasses.replace(scope, counters=counters, elements=elements, ints=ints)

    def generators(self, scope, need=0, relaxed_filter=False):
        """One or two ``for`` clauses over a hard range, an array or ``enumerate`` of one, each at
        times with a hard ``if`` (with ``relaxed_filter`` a relaxed one too), giving at least
        ``need`` values for every n >= n_min: the count at n_min is the least, as every range and
        hard filter only gains values as n grows."""
        inner = dataclasses.replace(scope, comprehension=scope.comprehension + 1)
        clauses, counted, taken, reused, focus, ints = [], [], [], [], [], []
        relaxed = False
        for number in range(1 + (self.draw(st.integers(0, 2)) == 0)):
            # a name read in an earlier clause or filter is not rebound by a later clause: in
            # Python it is the comprehension's own there, read before it is bound
            taken += re.findall(r"[A-Za-z_]\w*", " ".join(clauses))
            kind = self.pick(("range", "array", "enumerate"))
            if kind in ("array", "enumerate"):
                array = self.pick(self.arrays)
                value, again = self.loop_variable(inner, taken, "v")
                taken.append(value)
                reused += [value] * again
                name = value
                if kind == "enumerate":
                    index, again = self.loop_variable(inner, taken, "k")
                    taken.append(index)
                    reused += [index] * again
                    inner = self.bind(inner, index, (0, 1))
                    ints.append((index, 0, 1))
                    name = f"{index}, {value}"
                inner = self.bind(inner, value)
                focus.append(value)
                source = f"{array}" if kind == "array" else f"enumerate({array})"
                clauses.append(f"for {name} in {source}")
                counted.append(f"for {name} in {source.replace(array, 'range(n)')}")
            else:
                if ints and number:
                    outer, lo, d = self.pick(ints)
                    bounds = (
                        ("range(n)", 0, 1),
                        (f"range({outer})", 0, d + 1),
                        (f"range({outer} + 1, n)", lo + 1, 1),
                    )
                else:
                    bounds = FOR_RANGES
                source, lo, d = self.pick(bounds)
                name, again = self.loop_variable(inner, taken, "i")
                taken.append(name)
                reused += [name] * again
                inner = self.bind(inner, name, (lo, d))
                ints.append((name, lo, d))
                focus.append(f"{self.pick(self.arrays)}[{shifted(name, self.pick(range(-lo, d)))}]")
                clauses.append(f"for {name} in {source}")
                counted.append(clauses[-1])
            if self.draw(st.integers(0, 2)) == 0:  # an if after this clause
                if relaxed_filter and self.draw(st.booleans()):
                    relaxed = True
                    value = self.pick(focus)
                    op = self.pick(("<", ">", "<=", ">="))
                    if self.draw(st.booleans()):
                        test = f"{value} {op} {self.atom(inner)}"
                    else:
                        test = self.relaxed_cond(inner, 1)
                    clauses.append(f"if {test}")
                elif ints:
                    k, _, _ = self.pick(ints)
                    tests = [f"{k} % 2 == 0", f"{k} > 0", f"{k} < n - 1", f"{k} != 1"]
                    if len(ints) > 1:
                        a, b = ints[0][0], ints[-1][0]
                        tests += [f"{a} != {b}", f"{b} < {a}"]
                    clauses.append(f"if {self.pick(tests)}")
                    counted.append(clauses[-1])
        least = eval(f"len([0 {' '.join(counted)}])", {"n": self.n_min})  # noqa: S307
        if least < need:  # min / max of nothing raises in Python
            array = self.pick(self.arrays)
            name = self.fresh("v")
            inner = self.bind(dataclasses.replace(scope, comprehension=inner.comprehension), name)
            return _Comprehension(
                f"for {name} in {array}", inner, (name,), (), self.n_min, True, (), False
            )
        full = len(clauses) == 1 and (kind != "range" or source == "range(n)")
        return _Comprehension(
            " ".join(clauses),
            inner,
            tuple(focus),
            tuple(ints),
            least,
            full,
            tuple(dict.fromkeys(reused)),
            relaxed,
        )

    def comp_value(self, comp):
        """The value of a comprehension: one of its values (``x[i]``, ``v``, ``x[i] * x[j]``, a
        hard integer), at times scaled and added to an expression, or a conditional expression
        on a relaxed comparison of it (``v if v > 0.0 else 0.0``)."""
        inner = comp.inner
        values = list(comp.focus) or [self.atom(inner)]
        if comp.ints and self.draw(st.integers(0, 4)) == 0:
            name = self.pick(comp.ints)[0]
            values = [name, f"{name} * 0.5", f"({name} + 1) * {self.pick(comp.focus or ('1.0',))}"]
        value = self.pick(values)
        if len(comp.focus) >= 2 and self.draw(st.booleans()):
            a, b = self.pick(comp.focus), self.pick(comp.focus)
            value = f"{a} {self.pick(('+', '-', '*'))} {b}"
        kinds = ["value", "combined", "expr", "ifexp"] + ["hard_ifexp"] * bool(comp.ints)
        kind = self.pick(kinds)
        if kind == "hard_ifexp":  # x[i] if i > 0 else 0.0: numbers among per-example values
            name = self.pick(comp.ints)[0]
            test = self.pick((f"{name} > 0", f"{name} % 2 == 0", f"{name} < n - 1"))
            return f"{value} if {test} else {self.pick(LITERALS)}"
        if kind == "combined":
            return f"({value}) * {self.pick(SCALES)} + {self.expr(inner, 1)}"
        if kind == "expr":
            return self.expr(inner)
        if kind == "ifexp":
            if self.draw(st.booleans()):
                test = f"{value} {self.pick(('<', '>', '<=', '>='))} {self.atom(inner)}"
            else:
                test = self.relaxed_cond(inner)
            other = self.pick(LITERALS) if self.draw(st.booleans()) else self.expr(inner, 1)
            if self.draw(st.booleans()):
                return f"{value} if {test} else {other}"
            return f"{other} if {test} else {value}"
        return value

    def reread(self, scope, reused):
        """Reads of the outer names a comprehension's variables reused: still their values."""
        lines = []
        for name in reused:
            target = self.pick(scope.floats)
            lines.append(f"{target} = {target} + {name}")
        return lines

    def s_listcomp(self, scope):
        """``ys = [... for ...]``, then read: an element, ``sum``, ``min``/``max``, a loop over
        it; at times the input changes before (``ys`` keeps its values)."""
        ys = self.fresh("ys")
        comp = self.generators(scope)
        lines = [f"{ys} = [{self.comp_value(comp)} {comp.text}]", *self.reread(scope, comp.reused)]
        if self.draw(st.integers(0, 3)) == 0:
            lines += self.block(scope, 0, most=1)
        target = self.pick(scope.floats)
        options = ["sum", "loop"]
        if comp.least >= 1:
            options += ["index", "index", "minmax"]
        if comp.full:
            options.append("write")
        kind = self.pick(options)
        if kind == "sum":
            return lines + [f"{target} = {target} + sum({ys})"]
        if kind == "minmax":
            return lines + [f"{target} = {target} + {self.pick(('min', 'max'))}({ys})"]
        if kind == "index":
            if comp.full and self.draw(st.booleans()):
                k = self.index(scope)
            else:
                k = self.pick([*map(str, range(min(comp.least, 6))), "-1"])
            return lines + [f"{target} = {target} + {ys}[{k}]"]
        if kind == "write":
            read = f"{ys}[{self.index(scope)}]"
            if "minmax_of_mixed_list" in self.on and self.draw(st.booleans()):
                self.used.add("minmax_of_mixed_list")
                read = f"{self.pick(('min', 'max'))}({ys})"
            return lines + [
                f"{ys}[{self.index(scope, write=True)}] = {self.expr(scope)}",
                f"{target} = {target} + {read}",
            ]
        v = self.fresh("v")
        if scope.depth < self.MAX_DEPTH and self.draw(st.booleans()):
            inner = dataclasses.replace(scope, elements=(*scope.elements, v))
            body = self.nested(inner, loop="for")
        else:
            body = [f"    {target} = {target} * 0.5 + {v}"]
        return lines + [f"for {v} in {ys}:", *body]

    def truth_reduction(self, scope):
        """``any(...)`` or ``all(...)`` of relaxed comparisons over a comprehension (``not`` at
        times); returns it and the outer names its variables reused."""
        comp = self.generators(scope)
        inner = comp.inner
        value = self.pick(comp.focus) if comp.focus else self.atom(inner)
        if self.draw(st.integers(0, 2)) == 0:
            test = self.relaxed_cond(inner, 1)
        else:
            test = f"{value} {self.pick(('<', '>', '<=', '>='))} {self.expr(inner, 1)}"
        call = f"{self.pick(('any', 'all'))}({test} {comp.text})"
        if self.draw(st.integers(0, 3)) == 0:
            call = f"not {call}"
        return call, comp.reused

    def s_genexp(self, scope):
        """``s = s + sum(... for ...)`` (a relaxed ``if`` allowed), ``min``/``max`` of a generator
        that never gives nothing, ``any``/``all`` as a relaxed condition or as a number."""
        target = self.pick(scope.floats)
        fn = self.pick(("sum", "min", "max", "any", "all"))
        if fn in ("any", "all"):
            test, reused = self.truth_reduction(scope)
            if scope.depth < self.MAX_DEPTH and self.draw(st.booleans()):
                lines = [f"if {test}:", *self.nested(scope, branch=True)]
                if self.draw(st.booleans()):
                    lines += ["else:", *self.nested(scope, branch=True)]
            else:
                lines = [f"{target} = {target} + 1.0 * ({test})"]
            return lines + self.reread(scope, reused)
        comp = self.generators(scope, need=int(fn != "sum"), relaxed_filter=fn == "sum")
        if comp.relaxed and self.draw(st.integers(0, 2)) == 0:
            value = self.pick(("1", "1.0"))  # a count
        else:
            value = self.comp_value(comp)
        call = f"{fn}({value} {comp.text})"
        if fn == "sum" and self.draw(st.integers(0, 3)) == 0:
            call = f"sum(({value} {comp.text}), {self.pick(LITERALS)})"
        line = self.pick((f"{target} = {target} + {call}", f"{target} += {call}"))
        return [line, *self.reread(scope, comp.reused)]

    # -- tables of lists ------------------------------------------------------------------

    def table_rows(self, scope, rows, cols):
        """A comprehension making a table of ``rows`` lists of ``cols`` numbers each: of one
        literal (``[[0.0] * (n + 1) for _ in range(n + 1)]``, or by a comprehension in the
        comprehension), or of values from the input when a row has n of them. Returns it and
        the outer names its variables reused."""
        lit = self.pick(LITERALS)
        width = cols if cols == "n" else f"({cols})"
        er = rows != "n"
        forms = ["literal", "nested"] + ["array", "copy"] * (cols == "n")
        if rows == cols == "n":
            forms.append("values")
        form = self.pick(forms)
        if form == "values":  # [[... x[i] ... x[j] ... for j in range(n)] for i in range(n)]
            i, again_i = self.loop_variable(scope, [], "i")
            j, again_j = self.loop_variable(scope, [i], "j")
            inner = dataclasses.replace(scope, comprehension=scope.comprehension + 2)
            inner = self.bind(self.bind(inner, i, (0, 1)), j, (0, 1))
            focus = tuple(f"{self.pick(self.arrays)}[{k}]" for k in (i, j))
            comp = _Comprehension("", inner, focus, ((i, 0, 1), (j, 0, 1)), 0, False, (), False)
            value = self.comp_value(comp)
            reused = (i,) * again_i + (j,) * again_j
            return f"[[{value} for {j} in range(n)] for {i} in range({rows})]", reused
        if self.draw(st.booleans()):
            u, reused = "_", ()
        else:
            u, again = self.loop_variable(scope, [], "u")
            reused = (u,) * again
        if form == "literal":
            return f"[[{lit}] * {width} for {u} in range({rows})]", reused
        if form == "nested":
            w = "_" if self.draw(st.booleans()) else self.fresh("w")
            return f"[[{lit} for {w} in range({cols})] for {u} in range({rows})]", reused
        array = self.pick(self.arrays)
        if form == "copy":
            return f"[list({array}) for {u} in range({rows})]", reused
        v = self.fresh("v")
        inner = dataclasses.replace(scope, comprehension=scope.comprehension + 2)
        inner = self.bind(self.bind(inner, u, (0, 1 - er)), v)
        comp = _Comprehension("", inner, (v,), (), 0, False, (), False)
        return f"[[{self.comp_value(comp)} for {v} in {array}] for {u} in range({rows})]", reused

    def table_cell(self, deep, t, i, j, focus):
        """The statements that fill the cell ``t[i][j]`` of a table from its neighbours above
        and to the left (as a DP does) or from an expression, with the input's values of the
        cell's row and column (``focus``: ``x[i - 1]``, ``y[j - 1]``); at times under a hard if."""
        cell = f"{t}[{i}][{j}]"

        def term():  # a number from the cell's row or column, or any expression
            if self.draw(st.booleans()):
                return self.expr(deep, 1)
            return f"{self.pick(focus)} * {self.pick(SCALES)}"

        def test():  # a relaxed test, of the cell's row against its column at times
            if self.draw(st.booleans()):
                return self.relaxed_cond(deep)
            return f"{focus[0]} {self.pick(('<', '>', '<=', '>='))} {focus[1]}"

        up, left, diag = f"{t}[{i} - 1][{j}]", f"{t}[{i}][{j} - 1]", f"{t}[{i} - 1][{j} - 1]"
        kind = self.choose(
            [
                ("value", None),
                ("neighbours", None),
                ("aug", "aug_assign"),
                ("lcs", "relaxed_if"),
                ("edit", "ifexp_numbers"),
            ]
        )
        if kind == "value":
            value = self.expr(deep) if self.draw(st.booleans()) else f"{term()} + {self.atom(deep)}"
            lines = [f"{cell} = {value}"]
        elif kind == "neighbours":
            combined = self.pick(
                (
                    f"max({up}, {left})",
                    f"min({up}, {left}, {diag})",
                    f"0.5 * ({up} + {left})",
                    f"{diag} * 0.5",
                    up,
                )
            )
            lines = [f"{cell} = {combined} + {term()}"]
        elif kind == "aug":
            value = left if self.draw(st.booleans()) else self.expr(deep)
            lines = [f"{cell} {self.pick(('+=', '-='))} {value}"]
        elif kind == "lcs":
            lines = [
                f"if {test()}:",
                f"    {cell} = {diag} + {'1.0' if self.draw(st.booleans()) else term()}",
                "else:",
                f"    {cell} = max({up}, {left})",
            ]
        else:
            cost = f"({self.pick(LITERALS)} if {test()} else 1.0)"
            lines = [f"{cell} = min({up} + 1.0, {left} + 1.0, {diag} + {cost})"]
        if self.draw(st.integers(0, 3)) == 0:
            lines = [f"if {self.hard_cond(deep)}:", *(f"    {line}" for line in lines)]
        if self.draw(st.integers(0, 3)) == 0:
            lines += self.block(deep, 0, most=1)
        return lines

    def row(self, scope, row):
        """A row of a table at least n long: a hard counter, or with ``table_at_relaxed_int`` a
        relaxed integer (shifted at times); ``row`` if there is neither."""
        relaxed = {"table_at_relaxed_int", "relaxed_int_index"} <= self.on
        if relaxed and self.positions(scope) and self.draw(st.booleans()):
            self.used.update(("table_at_relaxed_int", "relaxed_int_index"))
            return self.position(scope)
        if scope.counters:
            return self.pick(scope.counters)[0]
        return row

    def table_reads(self, scope, t, rows, cols, first=0):
        """Reads of the table's cells into a float local: at hard positions (from ``first`` on),
        a row's ``sum`` (``min``/``max`` with ``minmax_of_mixed_list``), a column in a loop."""
        target = self.pick(scope.floats)
        minmax = "minmax_of_mixed_list" in self.on

        def positions(size):
            found = [*map(str, range(first, self.n_min)), "n - 1", "-1"]
            return found + ["n"] * (size != "n")

        lines = []
        for _ in range(self.draw(st.integers(1, 2))):
            a, b = self.pick(positions(rows)), self.pick(positions(cols))
            kind = self.pick(("cell", "cell", "column") + ("row",) * (minmax or not first))
            if kind == "cell":
                if not first and self.draw(st.integers(0, 2)) == 0:
                    a = self.row(scope, a)
                lines.append(f"{target} = {target} + {t}[{a}][{b}]")
            elif kind == "row":  # from the first row on, or the row's least: DTW's t[a][0] is inf
                fn = self.pick((("sum",) if not first else ()) + ("min", "max") * minmax)
                if fn != "sum":  # the cells written may mix numbers and per-example values
                    self.used.add("minmax_of_mixed_list")
                    fn = "min" if first else fn
                lines.append(f"{target} = {target} + {fn}({t}[{a}])")
            else:
                k = self.fresh("k")
                start = f"range({first}, n)" if first else "range(n)"
                lines += [f"for {k} in {start}:", f"    {target} = {target} + {t}[{k}][{b}]"]
        return lines

    def s_listcomp_table(self, scope):
        """A table of lists made by a comprehension, filled at hard positions in two loops (a
        border or the diagonal first at times) and read back; with ``table_from_inf`` at times
        started at ``math.inf``, filled so that no cell read is infinite."""
        if self.maybe("table_from_inf"):
            return self.inf_table(scope)
        t = self.fresh("t")
        rows, cols = self.pick(("n", "n + 1")), self.pick(("n", "n + 1"))
        er, ec = int(rows != "n"), int(cols != "n")
        made, reused = self.table_rows(scope, rows, cols)
        lines = [f"{t} = {made}", *self.reread(scope, reused)]
        if self.draw(st.booleans()):  # a border or the diagonal
            k = self.fresh("k")
            border = self.pick(("column", "row", "diagonal"))
            if border == "diagonal":
                value = self.expr(scope.with_counter(k, 0, 1).deeper(loop="for"))
                lines += [f"for {k} in range(n):", f"    {t}[{k}][{k}] = {value}"]
            else:
                size, e = (rows, er) if border == "column" else (cols, ec)
                value = f"{k} * {self.pick(SCALES)}"
                if not e and self.draw(st.booleans()):
                    value = self.expr(scope.with_counter(k, 0, 1).deeper(loop="for"))
                cell = f"{t}[{k}][0]" if border == "column" else f"{t}[0][{k}]"
                lines += [f"for {k} in range({size}):", f"    {cell} = {value}"]
        i, j = self.fresh("i"), self.fresh("j")
        cells = scope
        for name, e in ((i, er), (j, ec)):
            if not e:  # 1 <= i <= n - 1: a counter; up to n it is not an index of x itself
                cells = cells.with_counter(name, 1, 1)
        deep = cells.deeper(loop="for").deeper(loop="for")
        focus = [f"{self.pick(self.arrays)}[{name} - 1]" for name in (i, j)]
        lines += [
            f"for {i} in range(1, {rows}):",
            f"    for {j} in range(1, {cols}):",
            *(f"        {line}" for line in self.table_cell(deep, t, i, j, focus)),
        ]
        return lines + self.table_reads(scope, t, rows, cols)

    def inf_table(self, scope):
        """A table started at ``math.inf`` (named ``INF_TABLE...``: tests/test_generated_programs.py
        lets its cells be infinite), filled with ``min`` as dynamic time warping (``t[0][0] =
        0.0``, cells from 1) or a cheapest path (from ``t[0][0]``) do; every cell read is
        finite."""
        t, i, j = self.fresh(INF_TABLE), self.fresh("i"), self.fresh("j")
        up, left, diag = f"{t}[{i} - 1][{j}]", f"{t}[{i}][{j} - 1]", f"{t}[{i} - 1][{j} - 1]"
        if self.draw(st.booleans()):  # dynamic time warping
            deep = scope.deeper(loop="for").deeper(loop="for")  # i, j up to n: not counters
            array, other = self.pick(self.arrays), self.pick(self.arrays)
            cost = f"abs({array}[{i} - 1] - {other}[{j} - 1])"
            if self.draw(st.booleans()):
                cost = f"{array}[{i} - 1] * {other}[{j} - 1] + {self.expr(deep, 1)}"
            best = self.pick((f"min({up}, {left}, {diag})", f"min({diag}, min({up}, {left}))"))
            lines = [
                f"{t} = [[math.inf] * (n + 1) for _ in range(n + 1)]",
                f"{t}[0][0] = 0.0",
                f"for {i} in range(1, n + 1):",
                f"    for {j} in range(1, n + 1):",
                f"        {t}[{i}][{j}] = {cost} + {best}",
            ]
            return lines + self.table_reads(scope, t, "n + 1", "n + 1", first=1)
        cells = scope.with_counter(i, 0, 1).with_counter(j, 0, 1)
        deep = cells.deeper(loop="for").deeper(loop="for")
        step = self.expr(deep)
        lines = [
            f"{t} = [[math.inf] * n for _ in range(n)]",
            f"{t}[0][0] = {self.expr(scope)}",
            f"for {i} in range(n):",
            f"    for {j} in range(n):",
            f"        if {i} > 0:",
            f"            {t}[{i}][{j}] = min({t}[{i}][{j}], {up} + {step})",
            f"        if {j} > 0:",
            f"            {t}[{i}][{j}] = min({t}[{i}][{j}], {left} + {step})",
        ]
        return lines + self.table_reads(scope, t, "n", "n")

    # -- relaxed integers (SEMANTICS 10) --------------------------------------------------

    def use_int(self, scope):
        """Lines that read the relaxed integer(s) last added to ``scope.ints``: one use made for
        it, then at times statements that may use any relaxed integer of ``scope``."""
        name, lo, d = scope.ints[-1]
        target = self.pick(scope.floats)
        array = self.pick(self.arrays)
        options = [("number", None), ("compare", "relaxed_int_compare")]
        if self.offsets(lo, d):
            options.append(("read", "relaxed_int_index"))
        writable = self.writable(name, write=True)
        if self.offsets(lo, d, write=True) and writable:
            options += [("write", "relaxed_int_index"), ("swap", "relaxed_int_index")]
        if lo is not None and lo >= -2:  # k + 1 for k < n - 1
            options.append(("next", ("relaxed_int_index", "relaxed_int_shift")))
        if d is not None and d >= 0:  # k - 1 for k >= 0 (k - 1 == -1: the last element)
            options.append(("previous", ("relaxed_int_index", "relaxed_int_shift")))
        options += [("arith", "relaxed_int_arith"), ("mod_index", "relaxed_int_arith")]
        if lo is not None and d is not None and (d >= 2 or lo >= 0):
            options.append(("move", "relaxed_int_move"))
        sifts = lo is not None and d is not None and lo >= 0 and d >= 1 and writable
        if sifts and scope.depth < self.MAX_DEPTH:
            options.append(("sift", ("relaxed_int_sift", "relaxed_int_index")))
        if self.offsets(lo, d):
            options.append(("helper", ("relaxed_int_helper", "relaxed_int_index")))
        kind = self.choose(options)
        if kind == "move":
            return self.move_int(scope)
        if kind == "sift":
            return self.sift(scope, array)
        if kind == "number":
            lines = [f"{target} = {target} + {self.int_number(scope)}"]
        elif kind == "compare":
            cond = self.int_comparison(scope, chain=True, name=name)
            if "bool_ops" in self.on and self.draw(st.integers(0, 3)) == 0:
                cond = f"{cond} {self.pick(('and', 'or'))} {self.relaxed_cond(scope, 1)}"
                self.used.add("bool_ops")
            lines = [f"if {cond}:", *self.nested(scope, branch=True, most=2)]
            if self.draw(st.booleans()):
                lines += ["else:", *self.nested(scope, branch=True, most=1)]
        elif kind == "read":
            lines = [f"{target} = {target} + {array}[{self.position(scope, name=name)}]"]
        elif kind == "helper":
            self.helpers.add("helper_at")
            k = self.position(scope, name=name)
            lines = [f"{target} = {target} + helper_at({array}, {k})"]
        elif kind == "write":
            op = self.pick(("=", "=", "+="))
            k = self.position(scope, write=True, name=name)
            lines = [f"{array}[{k}] {op} {self.expr(scope)}"]
        elif kind == "swap":
            i, k = self.index(scope, write=True), self.position(scope, write=True, name=name)
            if self.draw(st.booleans()):
                i, k = k, i
            lines = [f"{array}[{i}], {array}[{k}] = {array}[{k}], {array}[{i}]"]
        elif kind == "next":
            guard = self.pick((f"{name} < n - 1", f"{name} + 1 < n", f"{name} <= n - 2"))
            bodies = [f"{target} = {target} + {array}[{name} + 1]"]
            if not self.wraps(lo + 1, 0, write=True) and writable:
                bodies.append(f"{array}[{name} + 1] = {self.expr(scope)}")
            if not self.wraps(lo, 0, write=True) and writable:
                swap = (
                    f"{array}[{name}], {array}[{name} + 1] = {array}[{name} + 1], {array}[{name}]"
                )
                bodies.append(swap)
            body = self.pick(bodies)
            lines = [f"if {guard}:", f"    {body}"]
            if d is not None and d >= 2:  # always in range: no guard needed
                lines = [body]
        elif kind == "previous":
            bodies = [f"{target} = {target} + {array}[{name} - 1]"]
            if writable:
                bodies.append(f"{array}[{name} - 1] = {self.expr(scope)}")
            body = self.pick(bodies)
            lines = [f"if {name} >= 1:", f"    {body}"]
            unguarded = not self.wraps(-1, 0, write=body.startswith(array))
            if lo is not None and lo >= 0 and unguarded and self.draw(st.booleans()):
                lines = [body]  # in range for k >= 0: k - 1 == -1 is the last element
        elif kind == "arith":
            lines = [
                self.pick(
                    (
                        f"{target} = {target} + {name} // 2",
                        f"{target} = {target} + {name} % 2",
                        f"{target} = {target} + {name} % n",
                        f"{target} = {target} * 0.5 + ({name} + 1) // 2",
                    )
                )
            ]
        else:
            lines = [f"{target} = {target} + {array}[{name} % n]"]
            if writable and self.draw(st.booleans()):
                lines = [f"{array}[{name} % n] = {self.expr(scope)}"]
        if self.draw(st.booleans()):
            lines += self.block(scope, 0, most=2)
        return lines

    def move_int(self, scope):
        """``m = m + 1`` / ``m = m - 1``, at times under a relaxed ``if`` (a blend of m and the
        shifted m), within the bounds; then uses of the moved m."""
        name, lo, d = scope.ints[-1]
        ups = d >= 2 and (lo < 0 or self.draw(st.booleans()))
        step = self.pick((f"{name} = {name} + 1", f"{name} += 1") if ups else (f"{name} -= 1",))
        after_while = name in self.loop_ints and "relaxed_int_move_after_while" not in self.on
        # moved under a relaxed if, a relaxed while's counter is a relaxed integer in the loop's
        # body too, where it is the same in every example (see write_at_certain_int)
        certain = name in self.loop_ints and "write_at_certain_int" not in self.on
        if not certain and (after_while or self.draw(st.booleans())):
            lines = [f"if {self.relaxed_cond(scope)}:", f"    {step}"]
            bounds = (lo, d - 1) if ups else (lo - 1, d)
        else:
            lines = [step]
            bounds = (lo + 1, d - 1) if ups else (lo - 1, d + 1)
        others = tuple(k for k in scope.ints if k[0] != name)
        moved = dataclasses.replace(scope, ints=(*others, (name, *bounds)))
        return lines + self.use_int(moved)

    def sift(self, scope, array):
        """Insertion sort's inner loop from a relaxed position: ``m`` moves down in a relaxed
        while whose condition reads and whose body writes at ``m - 1`` and ``m``."""
        name, lo, d = scope.ints[-1]
        op = self.pick((">", "<"))
        lines = [
            f"while {name} > 0 and {array}[{name} - 1] {op} {array}[{name}]:",
            f"    {array}[{name} - 1], {array}[{name}] = {array}[{name}], {array}[{name} - 1]",
            f"    {name} = {name} - 1",
        ]
        others = tuple(k for k in scope.ints if k[0] != name)
        return lines + self.use_int(dataclasses.replace(scope, ints=(*others, (name, 0, d))))

    def argmin(self, scope, array):
        """``m = lo; for j in range(lo + 1, n - d + 1): if x[j] < x[m]: m = j`` (or from a hard
        counter ``i``: ``m = i; for j in range(i + 1, n)``); returns its lines and (m, lo, d)."""
        m, j = self.fresh("m"), self.fresh("j")
        # without relaxed_int_certain the loop runs at least once: m = lo is never certain
        certain = "relaxed_int_certain" in self.on
        counters = [c for c in scope.counters if certain or c[2] >= 2]
        if counters and self.draw(st.booleans()):
            counter, lo, dc = self.pick(counters)
            d, start, stop = 1, f"{counter} + 1", "n"
            lines = [f"{m} = {counter}"]
            empty = dc <= 1  # counter == n - 1
        else:
            most = self.n_min if certain else self.n_min - 1
            lo, d = self.pick([(a, b) for a in (0, 1) for b in (1, 2) if a + b <= most])
            start, stop = str(lo + 1), "n" if d == 1 else f"n - {d - 1}"
            lines = [f"{m} = {lo}"]
            empty = lo + d >= self.n_min  # n == lo + d
        inner = scope.with_counter(j, lo + 1, d)
        kind = self.choose(
            [("value", None), ("position", "relaxed_int_index"), ("cond", "relaxed_if")]
        )
        op = self.pick(("<", ">", "<=", ">="))
        if kind == "position":
            test = f"{array}[{j}] {op} {array}[{m}]"
        elif kind == "value":
            test = f"{array}[{j}] {op} {self.atom(inner)}"
        else:
            test = self.relaxed_cond(inner)
        if empty:  # the loop may run zero times: m = lo in every example
            self.maybe_certain.add(m)
        lines += [f"for {j} in range({start}, {stop}):", f"    if {test}:", f"        {m} = {j}"]
        if self.draw(st.integers(0, 3)) == 0:  # more in the branch
            branch = inner.deeper(loop="for").deeper(branch=True)
            lines += self.block(branch, 8, most=1)
        return lines, (m, lo, d)

    def s_relaxed_int(self, scope):
        array = self.pick(self.arrays)
        kind = self.choose(
            [
                ("argmin", None),
                ("count", "relaxed_int_count"),
                ("pair", "relaxed_int_pair"),
                ("helper", ("relaxed_int_count", "relaxed_int_helper")),
            ]
        )
        if kind == "argmin":
            lines, m = self.argmin(scope, array)
            return lines + self.use_int(scope.with_int(*m))
        if kind == "helper":  # a count returned by a helper: 0 <= c <= n
            c = self.fresh("c")
            self.helpers.add("helper_count")
            line = f"{c} = helper_count({array}, {self.atom(scope)})"
            return [line, *self.use_int(scope.with_int(c, 0, 0))]
        j = self.fresh("j")
        inner = scope.with_counter(j, 0, 1)
        if kind == "count":  # 0 <= c <= n, or no bound in n with += 2 or -= 1
            c = self.fresh("c")
            step, d = self.pick(((f"{c} = {c} + 1", 0), (f"{c} += 1", 0), (f"{c} += 2", None)))
            lines = [
                f"{c} = 0",
                f"for {j} in range(n):",
                f"    if {self.relaxed_cond(inner)}:",
                f"        {step}",
            ]
            lo = 0
            if self.draw(st.booleans()):
                lines += ["    else:", f"        {c} = {c} - 1"]
                lo = None
            return lines + self.use_int(scope.with_int(c, lo, d))
        # two positions in one loop: the first minimum and the last maximum
        lo, hi = self.fresh("lo"), self.fresh("hi")
        lines = [
            f"{lo} = 0",
            f"{hi} = 0",
            f"for {j} in range(1, n):",
            f"    if {array}[{j}] < {array}[{lo}]:",
            f"        {lo} = {j}",
            f"    if {array}[{j}] >= {array}[{hi}]:",
            f"        {hi} = {j}",
        ]
        return lines + self.use_int(scope.with_int(lo, 0, 1).with_int(hi, 0, 1))

    def s_relaxed_scan(self, scope):
        j, array = self.fresh("j"), self.pick(self.arrays)
        op = self.pick(("<", ">"))
        step = self.pick((f"{j} = {j} + 1", f"{j} += 1"))
        lines = [f"{j} = 0", f"while {j} < n - 1 and {array}[{j}] {op} {self.atom(scope)}:"]
        if self.draw(st.booleans()):
            lines += self.nested(scope.with_counter(j, 0, 2), most=2, relaxed=True, loop="while")
        self.loop_ints.add(j)
        return [*lines, f"    {step}", *self.use_int(scope.with_int(j, 0, 1))]

    def s_relaxed_int_insertion(self, scope):
        """Insertion sort's inner loop: ``j`` is hard in the relaxed while, per example after
        it, where ``x[j + 1] = key`` writes at a relaxed position; -1 <= j <= n - 2."""
        array, key, j = self.pick(self.arrays), self.fresh("key"), self.fresh("j")
        op = self.pick((">", "<", ">=", "<="))
        step = self.pick((f"{j} = {j} - 1", f"{j} -= 1"))
        if self.draw(st.booleans()):
            i = self.fresh("i")
            head = [f"for {i} in range(1, n):", f"    {key} = {array}[{i}]", f"    {j} = {i} - 1"]
            outer = scope.with_counter(i, 1, 1).deeper(loop="for")
            indent = "    "
        else:
            head = [f"{key} = {array}[n - 1]", f"{j} = n - 2"]
            outer, indent = scope, ""
        body = []
        if self.draw(st.integers(0, 3)):
            body.append(f"{array}[{j} + 1] = {array}[{j}]")
        if self.draw(st.integers(0, 2)) == 0:
            inner = outer.with_counter(j, 0, 2).deeper(relaxed=True, loop="while")
            body += self.block(inner, 0, most=1)
        lines = [
            *head,
            f"{indent}while {j} >= 0 and {array}[{j}] {op} {key}:",
            *(f"{indent}    {line}" for line in body),
            f"{indent}    {step}",
        ]
        after = outer.with_int(j, -1, 2)
        self.loop_ints.add(j)
        uses = []
        if self.draw(st.integers(0, 3)):
            uses.append(f"{array}[{j} + 1] = {key}")
            if self.draw(st.booleans()):
                uses += self.use_int(after)
        else:
            uses += self.use_int(after)
        return lines + [indent + line for line in uses]

    def s_relaxed_int_bisect(self, scope):
        """Bisection: ``lo`` and ``hi`` relaxed in a relaxed while, ``mid = (lo + hi) // 2``
        combines two of them; 0 <= lo <= n after the loop."""
        lo, hi, mid = self.fresh("lo"), self.fresh("hi"), self.fresh("mid")
        array, op = self.pick(self.arrays), self.pick(("<", "<=", ">"))
        return [
            f"{lo} = 0",
            f"{hi} = n",
            f"while {lo} < {hi}:",
            f"    {mid} = ({lo} + {hi}) // 2",
            f"    if {array}[{mid}] {op} {self.atom(scope)}:",
            f"        {lo} = {mid} + 1",
            "    else:",
            f"        {hi} = {mid}",
            *self.use_int(scope.with_int(lo, 0, 0)),
        ]

    def s_relaxed_int_table(self, scope):
        """A 2-D table, n by n, filled from the input (or not) and read and written at a
        relaxed row or column: ``t = t + d[i, m]``, ``d[m, i] = e``. In Python's run the table
        is a numpy array (``TABLES`` in tests/test_generated_programs.py), whose elements are
        numbers as SEMANTICS 7 reads them; the table itself is never returned."""
        d, array = self.fresh("d"), self.pick(self.arrays)
        kind = self.choose(
            [("zeros", None), ("input", "input_table"), ("empty", "constant_table_write")]
        )
        if kind == "empty":  # written first at a relaxed position, maybe with a number
            lines = [f"{d} = torch.zeros(n, n, dtype=torch.float64)"]
        elif kind == "zeros":
            i, k = self.fresh("i"), self.fresh("k")
            cells = scope.with_counter(i, 0, 1).with_counter(k, 0, 1)
            value = self.pick(
                (f"{array}[{i}] * ({k} + 1) - {array}[{k}]", f"{array}[{k}] - {array}[{i}]")
            )
            if self.draw(st.booleans()):
                value = self.expr(cells.deeper(loop="for").deeper(loop="for"))
            lines = [
                f"{d} = torch.zeros(n, n, dtype=torch.float64)",
                f"for {i} in range(n):",
                f"    for {k} in range(n):",
                f"        {d}[{i}, {k}] = {value}",
            ]
        else:
            make = self.choose([("as_tensor", None), ("tensor", "tensor_of_input")])
            other = self.pick(self.arrays)
            op = self.pick(("-", "+", "*"))
            lines = [
                f"{d} = torch.{make}({array}, dtype=torch.float64).reshape(n, 1) {op} "
                f"torch.{make}({other}, dtype=torch.float64).reshape(1, n)"
            ]
        tables = [m for m in self.positions(scope) if m[1] >= 0 and m[2] >= 1]
        if tables and self.draw(st.booleans()):
            m, inner = self.pick(tables), scope
        else:
            found, m = self.argmin(scope, self.pick(self.arrays))
            lines += found
            inner = scope.with_int(*m)
        target = self.pick(scope.floats)
        for step in range(self.draw(st.integers(1, 3))):
            write = self.draw(st.booleans())
            if step == 0 and self.writable(m[0], write):
                row = m[0]
            elif self.positions(inner, write):
                row = self.position(inner, write)
            else:
                row = self.index(inner, write)
            col = self.index(inner, write)
            if self.draw(st.booleans()):
                row, col = col, row
            if write:
                lines.append(f"{d}[{row}, {col}] = {self.expr(inner)}")
            else:
                lines.append(f"{target} = {target} + {d}[{row}, {col}]")
        a, b = self.index(inner), self.index(inner)
        lines.append(f"{target} = {target} + {d}[{a}, {b}]")
        return lines

    # -- the whole program ----------------------------------------------------------------

    def program(self):
        floats = tuple(f"s{k}" for k in range(self.draw(st.integers(1, 3), label="locals")))
        body = ["n = len(x)"]
        for name in floats:
            first_value = self.pick((self.element(_Scope(floats=())), self.pick(LITERALS)))
            body.append(f"{name} = {first_value}")
        if self.maybe("inf_sentinel"):
            self.sentinel = SENTINEL
            body.append("best = math.inf")
        results = list(floats) + list(self.arrays) + ([self.sentinel] if self.sentinel else [])
        first = self.pick(results, label="result")
        rest = [r for r in results if r != first]
        returned = [first]
        if rest and self.draw(st.booleans(), label="two results"):
            returned.append(self.pick(rest))
        self.results = tuple(returned)
        body += self.block(_Scope(floats=floats), 0, most=5)
        body.append(f"return {', '.join(returned)}")
        args = ", ".join(self.arrays)
        helpers = "".join(HELPERS[name] + "\n\n" for name in sorted(self.helpers))
        imports = "import math  # noqa: F401\n"
        if "relaxed_int_table" in self.used:
            imports += "\nimport torch\n"
        source = (
            imports
            + "\n\n"
            + helpers
            + f"def f({args}):\n"
            + "".join(f"    {line}\n" for line in body)
        )
        return Program(source, self.n_min, self.has_y, frozenset(self.used), tuple(returned))


@st.composite
def programs(draw, features=None):
    """Random programs ``def f(x)`` or ``def f(x, y)`` using only the enabled ``features``."""
    return _Writer(draw, {**FEATURES, **(features or {})}).program()


def load(program, directory):
    """Write ``program`` to a file of its own under ``directory`` and import it; returns the
    module (avcompile reads the source of ``module.f`` from the file)."""
    name = "generated_" + hashlib.sha1(program.source.encode()).hexdigest()[:16]
    if name in sys.modules:
        return sys.modules[name]
    path = directory / f"{name}.py"
    path.write_text(program.source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
