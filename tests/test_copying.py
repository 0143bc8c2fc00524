"""The line-copying warm-up task: every target line is a line of its file, in the file's order."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from editlm.data.transforms.copying import code_lines, copy_rows

PROGRAMS = [
    "def f(x):\n    return x + 1\n",
    "def g(a, b):\n    if a:\n        return b\n    return a  \n\n\n",
    "class C:\n    pass\n" + "    " + "y" * 200 + "\n",
]


def test_code_lines_are_distinct_non_blank_and_short():
    lines = code_lines(PROGRAMS * 2)
    assert lines == ["def f(x):", "    return x + 1", "def g(a, b):", "    if a:", "        return b",
                     "    return a", "class C:", "    pass"]  # fmt: skip


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 10**6), count=st.integers(1, 20))
def test_each_target_line_is_a_line_of_its_file_in_order(seed, count):
    lines = [f"line_{i} = {i * 7}" for i in range(40)]
    rows = copy_rows(lines, count, seed=seed)
    assert len(rows) == count
    for row in rows:
        assert row["text"] == row["prompt"] + row["completion"]
        assert row["loss_start"] == len(row["prompt"])
        assert row["prompt"].startswith("<BEF> ") and row["prompt"].endswith("\n<DFF>")
        file = row["prompt"][len("<BEF> ") : -len("\n<DFF>")].split("\n")
        assert 6 <= len(file) <= 16 and len(set(file)) == len(file)
        assert row["completion"].startswith("\n-") and row["completion"].endswith("\n")
        picked = [line[1:] for line in row["completion"].strip("\n").split("\n")]
        assert all(line.startswith("-") for line in row["completion"].strip("\n").split("\n"))
        assert 1 <= len(picked) <= 4
        positions = [file.index(line) for line in picked]
        assert positions == sorted(set(positions))
    assert copy_rows(lines, count, seed=seed) == rows


def test_too_few_lines_is_an_error():
    with pytest.raises(ValueError, match="distinct lines"):
        copy_rows(["a = 1"] * 30, 1)
