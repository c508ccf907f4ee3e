"""The chunk reader's lines: read in blocks, the same lines (newline included) as iterating the file."""

import io

from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.ingest import extract


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(st.binary(max_size=300).map(lambda b: b.replace(b"\n", b"x")), max_size=20),
       newline_at_end=st.booleans(), block=st.sampled_from([1, 2, 7, 64, 1000]))
def test_lines_of_blocks_are_the_lines_of_the_file(lines, newline_at_end, block):
    data = b"\n".join(lines) + (b"\n" if newline_at_end else b"")
    was, extract.READ_BLOCK = extract.READ_BLOCK, block
    try:
        assert list(extract._lines_of_blocks(io.BytesIO(data), len(data))) == list(io.BytesIO(data))
    finally:
        extract.READ_BLOCK = was


def test_lines_of_blocks_stop_at_the_chunk_end():
    data = b"one\ntwo\nthree\n"
    assert list(extract._lines_of_blocks(io.BytesIO(data), 8)) == [b"one\n", b"two\n"]
