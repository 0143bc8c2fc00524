"""Text metrics: exact match, edit distance, validity, CodeBLEU, diversity."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from editlm.evaluate.metrics import (
    code_tokens,
    codebleu,
    compare,
    distinct_ngrams,
    diversity,
    edit_distance,
    exact_match,
    is_valid_python,
    syntactic_validity,
)

ADD = "def add(a, b):\n    return a + b\n"


def test_exact_match_ignores_trailing_whitespace_only():
    assert exact_match(ADD, ADD.replace("\n", "  \n") + "\n\n")
    assert not exact_match(ADD, ADD.replace("a + b", "b + a"))
    assert exact_match(ADD, "def add(a,b):\n    return a+b  # sum\n", tokens=True)
    assert not exact_match(ADD, "def add(a,b):\n    return a+b  # sum\n")


def test_edit_distance_levels():
    assert edit_distance(ADD, ADD) == 0.0
    assert edit_distance("abc", "abd", level="char") == pytest.approx(1 / 3)
    assert edit_distance("x = 1", "y = 2") == pytest.approx(2 / 3)
    assert edit_distance("a\nb\n", "a\nc\n", level="line", normalized=False) == 1.0
    with pytest.raises(ValueError):
        edit_distance("a", "b", level="word")


@given(st.text(max_size=30), st.text(max_size=30))
def test_edit_distance_is_a_normalised_symmetric_measure(a, b):
    for level in ("char", "token"):
        d = edit_distance(a, b, level=level)
        assert 0.0 <= d <= 1.0
        assert d == pytest.approx(edit_distance(b, a, level=level))
    assert (edit_distance(a, b, level="char") == 0.0) == (a == b)


def test_validity():
    assert is_valid_python(ADD) and not is_valid_python("def add(:\n")
    assert not is_valid_python("x = 1\x00")
    assert syntactic_validity([ADD, "def (", ADD, "return"]) == 0.5
    assert syntactic_validity([]) == 0.0


def test_codebleu_uses_the_working_grammar():
    same = codebleu([ADD], [ADD])
    assert same["codebleu"] == pytest.approx(1.0)
    renamed = codebleu(["def add(x, y):\n    return x + y\n"], [ADD])
    assert 0.2 < renamed["codebleu"] < 1.0 and renamed["syntax_match_score"] == pytest.approx(1.0)
    with pytest.raises(ValueError):
        codebleu([ADD], [])


def test_diversity():
    same = diversity([ADD, ADD, ADD + "\n"])
    assert same["distinct_programs"] == 1 and same["mean_pairwise_edit_distance"] == 0.0
    varied = diversity([ADD, "def add(a, b):\n    return sum([a, b])\n", "x = 1 # c", "x = 1"])
    assert varied["distinct_programs"] == 4 and varied["distinct_asts"] == 3
    assert 0 < varied["mean_pairwise_edit_distance"] <= 1
    assert distinct_ngrams(["a b a b"], 1) == 0.5
    assert diversity([ADD])["mean_pairwise_edit_distance"] == 0.0
    many = [f"x = {i % 7}" for i in range(100)]  # 4950 pairs: estimated from a seeded sample of them
    estimate = diversity(many, max_pairs=500)["mean_pairwise_edit_distance"]
    exact = diversity(many, max_pairs=10**6)["mean_pairwise_edit_distance"]
    assert estimate == diversity(many, max_pairs=500)["mean_pairwise_edit_distance"]
    assert abs(estimate - exact) < 0.05


def test_compare_and_tokens():
    scores = compare([ADD, "def add(:"], [ADD, ADD])
    assert scores["exact_match"] == 0.5 and scores["syntactic_validity"] == 0.5
    assert 0 < scores["edit_distance"] < 1 and 0 < scores["codebleu"] < 1
    assert code_tokens("x = 1  # note\n") == ["x", "=", "1"]
    assert code_tokens("f(a, \n") == ["f(a,"]  # does not tokenize: whitespace split
    with pytest.raises(ValueError):
        compare([ADD], [])
