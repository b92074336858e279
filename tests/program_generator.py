"""A hypothesis strategy that writes random programs of avcompile's subset as Python source."""

import dataclasses
import hashlib
import importlib.util
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
    "relaxed_int_index": True,  # a relaxed integer as an index: x[m] after m = i under an if
    "relaxed_int_compare": True,  # a relaxed integer compared: if j > 1 after a relaxed while
    "helper_call": True,  # helper(a, b): a module-level function of floats
    "helper_branch": True,  # a module-level function with a relaxed if
    "helper_array": True,  # a module-level function that takes the array
    "alias": True,  # z = x; z[i] = e (z and x are the same list)
    "copy": True,  # z = list(x); z[i] = e; s = s + z[j]
    "hard_exit": True,  # break / continue / return under a hard if
    "relaxed_exit": True,  # break / continue / return under a relaxed if (SEMANTICS 11)
}

HELPERS = {
    "helper": "def helper(v, w):\n    return v * 2.0 + w\n",
    "helper_pick": (
        "def helper_pick(v, w):\n    r = w\n    if v > w:\n        r = v\n    return r\n"
    ),
    "helper_sum": (
        "def helper_sum(a):\n    t = 0.0\n    for i in range(len(a)):\n"
        "        t = t + a[i]\n    return t\n"
    ),
}

SENTINEL = "best"  # the name of the math.inf sentinel
MAX_N = 5  # inputs have n in [program.n_min, MAX_N]
LITERALS = ("0.0", "1.0", "0.5", "-2.0", "3.0")
SCALES = ("0.5", "2.0", "-1.0")
FOR_RANGES = (("range(n)", 0, 1), ("range(1, n)", 1, 1), ("range(n - 1)", 0, 2))


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
class _Scope:
    """What a statement may use: float locals, hard counters (name -> (lo, d): lo <= c <= n - d),
    per-element loop values, nesting depth, whether this is inside a relaxed ``if`` (``branch``)
    or a relaxed ``if`` or ``while`` (``relaxed``), and the innermost loop ("for" or "while")."""

    floats: tuple
    counters: tuple = ()
    elements: tuple = ()
    depth: int = 0
    branch: bool = False
    relaxed: bool = False
    loop: str = None

    def with_counter(self, name, lo, d):
        return dataclasses.replace(self, counters=(*self.counters, (name, lo, d)))

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

    def index(self, scope):
        options = [("literal", None)]
        if scope.counters:
            options.append(("counter", None))
        options.append(("negative", "neg_index"))
        kind = self.choose(options)
        if kind == "literal":
            return str(self.draw(st.integers(0, self.n_min - 1)))
        if kind == "negative":
            return "-1"
        name, lo, d = self.pick(scope.counters)
        offset = self.draw(st.integers(-lo, d - 1))
        if offset == 0:
            return name
        return f"{name} + {offset}" if offset > 0 else f"{name} - {-offset}"

    def element(self, scope):
        return f"{self.pick(self.arrays)}[{self.index(scope)}]"

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
        if depth == 0:
            options += [("and", "bool_ops"), ("or", "bool_ops"), ("not", "bool_ops")]
            options.append(("chain", "relaxed_chain"))
        kind = self.choose(options)
        if kind == "compare":
            return self.comparison(scope)
        if kind == "not":
            return f"not {self.comparison(scope)}"
        if kind == "chain":
            return f"{self.atom(scope)} < {self.element(scope)} < {self.atom(scope)}"
        return f"{self.comparison(scope)} {kind} {self.relaxed_cond(scope, depth + 1)}"

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
        ]
        if not scope.relaxed:  # under relaxed control an exit is relaxed_exit's
            simple.append(("hard_exit", "hard_exit"))
        if self.sentinel:
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
        ]
        if scope.branch:  # an int assigned in a relaxed branch: SEMANTICS 2 and 10
            ints = ("hard_while", "relaxed_int", "relaxed_scan")
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
        return [f"{self.element(scope)} = {self.expr(scope)}"]

    def s_elem_aug(self, scope):
        return [f"{self.element(scope)} {self.pick(('+=', '-='))} {self.expr(scope)}"]

    def s_local_swap(self, scope):
        a, b = self.pick(scope.floats), self.pick(scope.floats)
        return [f"{a}, {b} = {b}, {a}"]

    def s_copy(self, scope):
        copy, array = self.fresh("z"), self.pick(self.arrays)
        target = self.pick(scope.floats)
        return [
            f"{copy} = list({array})",
            f"{copy}[{self.index(scope)}] = {self.expr(scope)}",
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
        i, j = self.index(scope), self.index(scope)
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
        return [f"{alias} = {array}", f"{alias}[{self.index(scope)}] = {self.expr(scope)}"]

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
        lines = [f"if {self.hard_cond(scope)}:", *self.nested(scope)]
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
        if counted:
            after += self.read_relaxed_int(j, target, scope, index=False)
        return lines + step + after

    def read_relaxed_int(self, name, target, scope, index=True):
        """Lines that read the relaxed integer ``name``: as a number, an index or compared."""
        options = [("number", None), ("compare", "relaxed_int_compare")]
        if index:
            options.append(("index", "relaxed_int_index"))
        kind = self.choose(options)
        if kind == "number":
            return [f"{target} = {target} + {name}"]
        if kind == "index":
            return [f"{target} = {target} + {self.pick(self.arrays)}[{name}]"]
        return [f"if {name} > 1:", f"    {target} = {target} + 1.0"]

    def s_relaxed_scan(self, scope):
        j, array = self.fresh("j"), self.pick(self.arrays)
        op = self.pick(("<", ">"))
        step = self.pick((f"{j} = {j} + 1", f"{j} += 1"))
        lines = [f"{j} = 0", f"while {j} < n - 1 and {array}[{j}] {op} {self.atom(scope)}:"]
        if self.draw(st.booleans()):
            lines += self.nested(scope.with_counter(j, 0, 2), most=2, relaxed=True, loop="while")
        target = self.pick(scope.floats)
        return [*lines, f"    {step}", *self.read_relaxed_int(j, target, scope)]

    def s_relaxed_int(self, scope):
        m, i = self.fresh("m"), self.fresh("i")
        array = self.pick(self.arrays)
        op = self.pick((">", "<"))
        if self.maybe("relaxed_int_index"):
            compared = f"{array}[{m}]"
        else:
            compared = self.atom(scope)
        return [
            f"{m} = 0",
            f"for {i} in range(1, n):",
            f"    if {array}[{i}] {op} {compared}:",
            f"        {m} = {i}",
            *self.read_relaxed_int(m, self.pick(scope.floats), scope),
        ]

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
        source = (
            "import math  # noqa: F401\n\n\n"
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
