"""nvinformers.labels: the grammar, errors, canonical strings and matching of
k8s.io/apimachinery/pkg/labels."""

from __future__ import annotations

import copy
import pickle

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nvinformers import labels
from nvinformers.api.device.v1alpha1 import GPU
from nvinformers.labels import Operator, Requirement, Selector, SelectorParseError

FUZZ = settings(
    max_examples=400,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def reqs(text: str) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(r.key, r.operator.value, r.values) for r in labels.parse(text).requirements]


class TestGrammar:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("a=b", [("a", "=", ("b",))]),
            ("a==b", [("a", "==", ("b",))]),
            ("a!=b", [("a", "!=", ("b",))]),
            ("a in (b,c)", [("a", "in", ("b", "c"))]),
            ("a notin (c,b)", [("a", "notin", ("b", "c"))]),
            ("a", [("a", "exists", ())]),
            ("!a", [("a", "!", ())]),
            ("a>1", [("a", "gt", ("1",))]),
            ("a<10", [("a", "lt", ("10",))]),
            ("a=", [("a", "=", ("",))]),
            ("a in ()", [("a", "in", ("",))]),
            ("a in (,b)", [("a", "in", ("", "b"))]),
            ("a in (b,)", [("a", "in", ("", "b"))]),
            ("a in (b,,c)", [("a", "in", ("", "b", "c"))]),
            ("a in (b,b)", [("a", "in", ("b",))]),
            ("example.com/name-1=v.1_x", [("example.com/name-1", "=", ("v.1_x",))]),
        ],
    )
    def test_every_operator(
        self, text: str, expected: list[tuple[str, str, tuple[str, ...]]]
    ) -> None:
        assert reqs(text) == expected

    def test_comma_is_and_and_requirements_are_sorted_by_key(self) -> None:
        assert reqs("z=1,a!=2,m") == [("a", "!=", ("2",)), ("m", "exists", ()), ("z", "=", ("1",))]

    @pytest.mark.parametrize(
        "text",
        ["a=b,c in (d,e)", " a = b , c in ( d , e ) ", "\ta=b,\nc\rin(d,e)", "a=b ,c in(d ,e)"],
    )
    def test_whitespace_between_tokens_is_ignored(self, text: str) -> None:
        assert labels.parse(text) == labels.parse("a=b,c in (d,e)")

    @pytest.mark.parametrize("text", ["", " ", "\t\n"])
    def test_empty_selects_everything(self, text: str) -> None:
        sel = labels.parse(text)
        assert sel.empty()
        assert sel == labels.everything()
        assert sel.matches({"x": "y"})

    def test_keywords_are_identifiers_where_a_key_or_value_is_expected(self) -> None:
        assert reqs("in in (in,notin)") == [("in", "in", ("in", "notin"))]
        assert reqs("notin=in") == [("notin", "=", ("in",))]
        assert reqs("!in") == [("in", "!", ())]

    def test_bang_may_be_separated_from_its_key(self) -> None:
        assert reqs("! a") == [("a", "!", ())]

    def test_parse_results_are_cached_and_shared(self) -> None:
        assert labels.parse("rack=a") is labels.parse("rack=a")

    def test_non_string_is_a_type_error(self) -> None:
        with pytest.raises(TypeError, match="must be a str"):
            labels.parse(42)


class TestErrors:
    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("a in (b", 'invalid label selector "a in (b": expected ")" at position 7'),
            ("a in (b,c", 'invalid label selector "a in (b,c": expected ")" at position 9'),
            (
                "a in (b c)",
                'invalid label selector "a in (b c)": expected "," or ")", found "c" at position 8',
            ),
            ("a in", 'invalid label selector "a in": expected "(" at position 4'),
            (
                "a in b",
                'invalid label selector "a in b": expected "(", found "b" at position 5',
            ),
            ("a,", 'invalid label selector "a,": expected "!" or a label key at position 2'),
            (
                ",a",
                'invalid label selector ",a": expected "!" or a label key, found "," at position 0',
            ),
            (
                "a=b=c",
                'invalid label selector "a=b=c": expected "," or end of string, found "=" '
                "at position 3",
            ),
            (
                "!a=b",
                'invalid label selector "!a=b": expected "," or end of string, found "=" '
                "at position 2",
            ),
            (
                "a >= 1",
                'invalid label selector "a >= 1": expected a value, found "=" at position 3',
            ),
            (
                "a b",
                'invalid label selector "a b": expected an operator ("=", "==", "!=", "in", '
                '"notin", ">" or "<"), found "b" at position 2',
            ),
            ("!", 'invalid label selector "!": expected a label key at position 1'),
            (
                "a in (=)",
                'invalid label selector "a in (=)": expected a value, "," or ")", found "=" '
                "at position 6",
            ),
        ],
    )
    def test_syntax_errors_name_selector_position_and_expectation(
        self, text: str, message: str
    ) -> None:
        with pytest.raises(SelectorParseError) as info:
            labels.parse(text)
        assert str(info.value) == message
        assert info.value.selector == text
        assert isinstance(info.value, ValueError)

    def test_error_attributes(self) -> None:
        with pytest.raises(SelectorParseError) as info:
            labels.parse("a in (b c)")
        err = info.value
        assert (err.position, err.expected, err.found) == (8, '"," or ")"', "c")

    @pytest.mark.parametrize(
        ("text", "position", "fragment"),
        [
            ("Bad Key=1", 4, "expected an operator"),
            ("a/b/c=1", 0, 'invalid label key "a/b/c"'),
            ("/b=1", 0, "prefix part must be non-empty"),
            ("Example.com/b=1", 0, "prefix part must be a lowercase RFC 1123 subdomain"),
            ("a/=1", 0, "name part must be non-empty"),
            ("-a=1", 0, "name part must consist of alphanumeric characters"),
            ("x" * 64 + "=1", 0, "name part must be no more than 63 characters"),
            ("a=" + "v" * 64, 2, "must be no more than 63 characters"),
            ("a=-v", 2, 'invalid label value "-v"'),
            ("k,a in (b,-c)", 10, 'invalid label value "-c"'),
            ("a>x", 2, 'operator ">" needs an int64 value, got "x"'),
            ("a<9223372036854775808", 2, "needs an int64 value"),
            ("a>-1", 2, 'invalid label value "-1"'),
            ("ä=1", 0, 'invalid label key "ä"'),
        ],
    )
    def test_validation_errors_point_at_the_offending_token(
        self, text: str, position: int, fragment: str
    ) -> None:
        with pytest.raises(SelectorParseError) as info:
            labels.parse(text)
        assert info.value.position == position
        assert fragment in str(info.value)
        assert str(info.value).startswith(f'invalid label selector "{text}": ')

    def test_long_but_valid_prefix_and_name(self) -> None:
        key = ("a" * 63 + ".") * 3 + "b" * 61 + "/" + "n" * 63
        assert len(key.split("/", maxsplit=1)[0]) == 253
        assert reqs(f"{key}=v") == [(key, "=", ("v",))]
        with pytest.raises(SelectorParseError, match="no more than 253"):
            labels.parse("c" + key + "=v")


class TestCanonicalString:
    @pytest.mark.parametrize(
        ("text", "canonical"),
        [
            ("b=1,a=2", "a=2,b=1"),
            ("a==b", "a==b"),
            ("x notin ( c , a,b)", "x notin (a,b,c)"),
            (" ! a , b ", "!a,b"),
            ("a in (,b)", "a in (,b)"),
            ("a in ()", "a in ()"),
            ("a>5,a<9", "a>5,a<9"),
            ("a=", "a="),
        ],
    )
    def test_str_is_the_kubernetes_form(self, text: str, canonical: str) -> None:
        sel = labels.parse(text)
        assert str(sel) == canonical
        assert labels.parse(canonical) == sel

    def test_same_key_keeps_its_order(self) -> None:
        assert str(labels.parse("a<9,a>5")) == "a<9,a>5"

    def test_requirement_str_and_repr(self) -> None:
        req = Requirement("k", "notin", ["b", "a"])
        assert str(req) == "k notin (a,b)"
        assert repr(req) == "Requirement('k', 'notin', ('a', 'b'))"
        assert repr(labels.parse("a=b")) == "Selector('a=b')"


class TestMatching:
    @pytest.mark.parametrize(
        ("text", "present", "other_value", "missing"),
        [
            ("k=v", True, False, False),
            ("k==v", True, False, False),
            ("k!=v", False, True, True),
            ("k in (v,w)", True, False, False),
            ("k notin (v,w)", False, True, True),
            ("k", True, True, False),
            ("!k", False, False, True),
        ],
    )
    def test_operators_including_missing_keys(
        self, text: str, present: bool, other_value: bool, missing: bool
    ) -> None:
        sel = labels.parse(text)
        assert sel.matches({"k": "v", "z": "1"}) is present
        assert sel.matches({"k": "x"}) is other_value
        assert sel.matches({"z": "1"}) is missing
        assert sel.matches(None) is missing
        assert sel.matches({}) is missing

    @pytest.mark.parametrize(
        ("text", "value", "expected"),
        [
            ("k>5", "6", True),
            ("k>5", "5", False),
            ("k<5", "4", True),
            ("k<5", "5", False),
            ("k>5", "06", True),
            ("k>5", "x", False),
            ("k<5", "", False),
            ("k<5", "1_0", False),
            ("k>5", "99999999999999999999", False),
        ],
    )
    def test_integer_comparisons(self, text: str, value: str, expected: bool) -> None:
        assert labels.parse(text).matches({"k": value}) is expected

    def test_integer_comparison_never_matches_a_missing_key(self) -> None:
        assert not labels.parse("k>1").matches({})
        assert not labels.parse("k<1").matches({})

    def test_conjunction(self) -> None:
        sel = labels.parse("rack=a,gpu in (h100,a100),!drained")
        assert sel.matches({"rack": "a", "gpu": "h100"})
        assert not sel.matches({"rack": "a", "gpu": "h100", "drained": ""})
        assert not sel.matches({"rack": "b", "gpu": "h100"})
        assert not sel.matches({"rack": "a", "gpu": "t4"})

    def test_empty_value(self) -> None:
        assert labels.parse("k=").matches({"k": ""})
        assert not labels.parse("k=").matches({})
        assert labels.parse("k in ()").matches({"k": ""})

    def test_matches_the_read_only_labels_of_a_gpu(self) -> None:
        gpu = GPU.new("gpu-0", labels={"rack": "a", "nvidia.com/gpu.index": "3"})
        assert labels.parse("rack=a,nvidia.com/gpu.index>2").matches(gpu.metadata.labels)
        assert not labels.parse("rack notin (a)").matches(gpu.metadata.labels)

    def test_requirement_matches_on_its_own(self) -> None:
        assert Requirement("k", Operator.IN, ["a"]).matches({"k": "a"})
        assert Requirement("k", Operator.DOES_NOT_EXIST).matches(None)


class TestSelectorObjects:
    def test_everything_and_nothing(self) -> None:
        assert labels.everything().empty()
        assert labels.everything().matches({})
        assert not labels.nothing().empty()
        assert not labels.nothing().matches({})
        assert not labels.nothing().matches({"a": "b"})
        assert labels.nothing() != labels.everything()
        assert str(labels.nothing()) == ""
        assert labels.nothing().add(Requirement("a", "exists")) is labels.nothing()

    def test_add_returns_a_new_sorted_selector(self) -> None:
        base = labels.parse("m=1")
        more = base.add(Requirement("a", "=", ["2"]), Requirement("z", "exists"))
        assert str(base) == "m=1"
        assert str(more) == "a=2,m=1,z"
        assert labels.everything().add(Requirement("a", "exists")) == labels.parse("a")

    def test_immutable_hashable_and_equal_by_requirements(self) -> None:
        a, b = labels.parse("x=1,y=2"), labels.parse("y=2, x=1")
        assert a == b
        assert hash(a) == hash(b)
        assert len({a, b, labels.parse("x=1")}) == 2
        with pytest.raises(AttributeError):
            a._str = "z"
        req = a.requirements[0]
        with pytest.raises(AttributeError):
            req.key = "other"
        assert labels.parse("a=b") != labels.parse("a==b")

    def test_copies_and_pickles(self) -> None:
        sel = labels.parse("a in (x,y),!b")
        assert pickle.loads(pickle.dumps(sel)) == sel
        assert copy.deepcopy(sel) == sel
        assert pickle.loads(pickle.dumps(labels.nothing())) is labels.nothing()
        req = sel.requirements[0]
        assert pickle.loads(pickle.dumps(req)) == req

    def test_pickles_name_the_public_package_not_a_private_module(self) -> None:
        # A stored pickle must survive the private modules being split or renamed.
        for obj in (labels.parse("a=1"), labels.nothing(), Requirement("a", "exists")):
            data = pickle.dumps(obj)
            assert b"nvinformers.labels" in data
            assert b"nvinformers.labels._" not in data

    def test_selector_from_set_validates(self) -> None:
        sel = labels.selector_from_set({"rack": "a", "example.com/pool": "x"})
        assert str(sel) == "example.com/pool=x,rack=a"
        assert sel.matches({"rack": "a", "example.com/pool": "x"})
        assert labels.selector_from_set({}) == labels.everything()
        assert labels.selector_from_set(None).empty()
        with pytest.raises(ValueError, match='invalid label key "bad key"'):
            labels.selector_from_set({"bad key": "a"})
        with pytest.raises(ValueError, match='invalid label value "-x"'):
            labels.selector_from_set({"k": "-x"})

    def test_selector_from_validated_set_skips_validation(self) -> None:
        sel = labels.selector_from_validated_set({"b": "1", "a": "2"})
        assert str(sel) == "a=2,b=1"
        assert labels.selector_from_validated_set({"bad key": "x"}).matches({"bad key": "x"})

    def test_requires_exact_match(self) -> None:
        sel = labels.parse("a=1,b in (2),c in (3,4),d!=5")
        assert sel.requires_exact_match("a") == "1"
        assert sel.requires_exact_match("b") == "2"
        assert sel.requires_exact_match("c") is None
        assert sel.requires_exact_match("d") is None
        assert sel.requires_exact_match("zz") is None

    @pytest.mark.parametrize(
        ("key", "op", "values", "fragment"),
        [
            ("bad key", "=", ["a"], "invalid label key"),
            ("k", "~", ["a"], "unknown operator"),
            ("k", "=", [], "exactly one value"),
            ("k", "=", ["a", "b"], "exactly one value"),
            ("k", "in", [], "at least one value"),
            ("k", "exists", ["a"], "takes no values"),
            ("k", "gt", ["x"], "integer"),
            ("k", "=", ["-bad"], "invalid label value"),
        ],
    )
    def test_requirement_validation(
        self, key: str, op: str, values: list[str], fragment: str
    ) -> None:
        with pytest.raises(ValueError, match=fragment):
            Requirement(key, op, values)

    def test_requirement_rejects_a_bare_string_of_values(self) -> None:
        with pytest.raises(TypeError):
            Requirement("k", "in", "ab")

    def test_selector_rejects_non_requirements(self) -> None:
        with pytest.raises(TypeError):
            Selector(["a=b"])  # type: ignore[list-item]

    def test_key_and_value_validators(self) -> None:
        labels.validate_label_key("nvidia.com/gpu.index")
        labels.validate_label_value("")
        with pytest.raises(ValueError, match="name part"):
            labels.validate_label_key("a/")
        with pytest.raises(ValueError, match="63"):
            labels.validate_label_value("v" * 64)


# --- fuzzing -------------------------------------------------------------------------------

_FUZZ_ALPHABET = st.sampled_from([*"ab/.-_=!(),<>   \t09Zé\x00", "in", "notin", "a.b/c"])
_fuzz_text = st.lists(_FUZZ_ALPHABET, max_size=24).map("".join)


@FUZZ
@given(_fuzz_text)
def test_fuzz_parse_raises_only_selector_parse_error_and_round_trips(text: str) -> None:
    err: SelectorParseError | None = None
    try:
        sel = labels.parse(text)
    except SelectorParseError as exc:
        err = exc
    if err is not None:
        assert 0 <= err.position <= len(text)
        assert err.selector == text
        return
    canonical = str(sel)
    again = labels.parse(canonical)
    assert again == sel
    assert str(again) == canonical


_names = st.text(alphabet="abcxyz019", min_size=1, max_size=4)
_values = st.text(alphabet="abcxyz019", max_size=3)


@st.composite
def _requirement(draw: st.DrawFn) -> Requirement:
    key = draw(st.sampled_from(["a", "b", "ex.com/c"]))
    op = draw(st.sampled_from(list(Operator)))
    if op in (Operator.IN, Operator.NOT_IN):
        values = draw(st.lists(_values, min_size=1, max_size=3))
    elif op in (Operator.GREATER_THAN, Operator.LESS_THAN):
        values = [str(draw(st.integers(0, 20)))]
    elif op in (Operator.EXISTS, Operator.DOES_NOT_EXIST):
        values = []
    else:
        values = [draw(_values)]
    return Requirement(key, op, values)


def _reference_match(req: Requirement, lbls: dict[str, str]) -> bool:
    """The semantics of Requirement.Matches in apimachinery, written out plainly."""
    has = req.key in lbls
    value = lbls.get(req.key, "")
    op = req.operator
    if op in (Operator.EQUALS, Operator.DOUBLE_EQUALS, Operator.IN):
        return has and value in req.values
    if op in (Operator.NOT_EQUALS, Operator.NOT_IN):
        return not has or value not in req.values
    if op is Operator.EXISTS:
        return has
    if op is Operator.DOES_NOT_EXIST:
        return not has
    if not has or not value.isdigit():
        return False
    bound = int(req.values[0])
    return int(value) > bound if op is Operator.GREATER_THAN else int(value) < bound


@settings(FUZZ, max_examples=150)
@given(
    st.lists(_requirement(), max_size=4),
    st.dictionaries(
        st.sampled_from(["a", "b", "ex.com/c", "d"]), _values | st.integers(0, 20).map(str)
    ),
)
def test_fuzz_matching_agrees_with_the_reference_and_survives_str(
    requirements: list[Requirement], lbls: dict[str, str]
) -> None:
    sel = Selector(requirements)
    expected = all(_reference_match(r, lbls) for r in requirements)
    assert sel.matches(lbls) is expected
    reparsed = labels.parse(str(sel))
    assert reparsed == sel
    assert reparsed.matches(lbls) is expected
