"""The fast path for `attr eq "value"` (and co, sw, ew) parses exactly as scim2-models does."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scim2_models import ScimFilter
from scim2_models.exceptions import SCIMException

from provisor.scim.errors import InvalidFilterError
from provisor.storage.filters import parse_filter
from provisor.text import unstorable

names = st.from_regex(r"[A-Za-z][A-Za-z0-9_$-]{0,8}", fullmatch=True)
paths = st.one_of(
    names,
    st.tuples(names, names).map(".".join),
    st.tuples(
        st.sampled_from(["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "urn:x:y"]),
        names,
    ).map(":".join),
)


@given(
    path=paths,
    value=st.text(max_size=20),
    op=st.sampled_from(["eq", "EQ", "Eq", "co", "CO", "sw", "sW", "ew", "Ew"]),
    space=st.sampled_from([" ", "  ", "\t"]),
)
def test_fast_path_agrees_with_the_grammar(path: str, value: str, op: str, space: str) -> None:
    text = f"{space}{path}{space}{op}{space}{json.dumps(value)}"
    if unstorable(value):  # NUL, lone surrogates: refused whatever the grammar says
        with pytest.raises(InvalidFilterError, match="filter value contains"):
            parse_filter(text)
        return
    try:
        expected = ScimFilter(text).ast
    except SCIMException:
        try:
            parse_filter(text)
        except InvalidFilterError:
            return
        raise AssertionError(f"accepted {text!r}") from None
    assert parse_filter(text) == expected
