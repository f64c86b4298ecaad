"""Hypothesis strategies of hostile file content, shared by the parser tests (run files, pytest-benchmark files,
suite files): a valid document with one value anywhere replaced by any JSON value."""

import copy

from hypothesis import strategies as st

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(10**30), max_value=10**30) | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6)


def paths(doc, prefix=()):
    """Every path to a value in a document (lists: their first two items)."""
    out = [prefix] if prefix else []
    if isinstance(doc, dict):
        for key, value in doc.items():
            out += paths(value, prefix + (key,))
    elif isinstance(doc, list):
        for i, value in enumerate(doc[:2]):
            out += paths(value, prefix + (i,))
    return out


def one_value_replaced(doc):
    """A strategy: ``doc`` with the value at one of its paths replaced by any JSON value."""
    return st.tuples(st.sampled_from(paths(doc)), JSON).map(lambda pv: replaced(doc, *pv))


def replaced(doc, path, value):
    """A copy of ``doc`` with the value at ``path`` replaced."""
    doc = copy.deepcopy(doc)
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return doc
