"""Agent attributes: the `rack:r1;zone:a` flag and its wire form."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orbiter.attributes import (
    InvalidAttributes,
    format_attributes,
    from_proto,
    parse_attributes,
    to_proto,
)
from orbiter.proto import messages_pb2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", {}),
        ("   ", {}),
        ("rack:r1", {"rack": "r1"}),
        ("rack:r1;zone:a", {"rack": "r1", "zone": "a"}),
        (" rack : r1 ; zone:a ;", {"rack": "r1", "zone": "a"}),
        ("endpoint:10.0.0.1:8080", {"endpoint": "10.0.0.1:8080"}),
        ("label:two words", {"label": "two words"}),
        ("flag:", {"flag": ""}),
        ("k8s.io/arch:amd64", {"k8s.io/arch": "amd64"}),
    ],
)
def test_parse_attributes_accepts_the_flag_syntax(text, expected):
    assert parse_attributes(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rack", "bad attribute 'rack' (item 1): missing ':' between name and value"),
        ("rack:r1;zone", "bad attribute 'zone' (item 2): missing ':'"),
        (":r1", "bad attribute ':r1' (item 1): empty name"),
        ("rack:r1; :a", "bad attribute ':a' (item 2): empty name"),
        (
            "rack:r1;zone:a;rack:r2",
            "bad attribute 'rack:r2' (item 3): 'rack' given twice (also item 1)",
        ),
        ("my rack:r1", "bad attribute 'my rack:r1' (item 1): name 'my rack' must not contain"),
    ],
)
def test_parse_attributes_errors_name_the_bad_item(text, message):
    with pytest.raises(InvalidAttributes, match=re.escape(message)):
        parse_attributes(text)


def test_format_attributes_is_sorted_by_name():
    assert format_attributes({"zone": "a", "rack": "r1"}) == "rack:r1;zone:a"
    assert format_attributes({}) == ""


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        ({"": "x"}, "bad attribute '': empty name"),
        ({"a:b": "x"}, "bad attribute 'a:b': name 'a:b' must not contain"),
        ({"rack": "r1;zone:a"}, "bad attribute 'rack': value 'r1;zone:a' must not contain ';'"),
        ({"rack": " r1"}, "nor start or end with spaces"),
    ],
)
def test_format_attributes_refuses_what_parse_could_not_read_back(attributes, message):
    with pytest.raises(InvalidAttributes, match=re.escape(message)):
        format_attributes(attributes)


def test_proto_round_trip():
    attributes = {"zone": "a", "rack": "r1", "endpoint": "10.0.0.1:8080"}
    msgs = to_proto(attributes)
    assert [m.name for m in msgs] == ["endpoint", "rack", "zone"]
    wire = [messages_pb2.Attribute.FromString(m.SerializeToString()) for m in msgs]
    assert from_proto(wire) == attributes


@pytest.mark.parametrize(
    ("msgs", "message"),
    [
        ([("", "x")], "bad attribute attributes[0] (''): empty name"),
        (
            [("rack", "r1"), ("rack", "r2")],
            "bad attribute attributes[1] ('rack'): 'rack' given twice",
        ),
        ([("ok", "1"), ("r k", "x")], "bad attribute attributes[1] ('r k'): name 'r k' must not"),
        ([("rack", "a\nb")], "must not contain ';' or line breaks"),
    ],
)
def test_from_proto_rejects_bad_input_naming_the_item(msgs, message):
    wire = [messages_pb2.Attribute(name=n, value=v) for n, v in msgs]
    with pytest.raises(InvalidAttributes, match=re.escape(message)):
        from_proto(wire)


_names = st.text(alphabet="abrz09_./-", min_size=1, max_size=8)
_values = st.text(alphabet="abrz09_./-: ", max_size=10).map(str.strip)


@given(st.dictionaries(_names, _values, max_size=5))
def test_property_parse_inverts_format(attributes):
    assert parse_attributes(format_attributes(attributes)) == attributes
    assert from_proto(to_proto(attributes)) == attributes
