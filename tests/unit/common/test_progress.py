"""Progress item by item (tasks/common/progress.py), without a terminal: a line every
``every_s`` seconds of a given clock and a last one; nothing when disabled."""

import io

from tasks.common.progress import Progress


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_a_line_every_few_seconds_then_a_last_one():
    clock, out = Clock(), io.StringIO()
    p = Progress(100, already=10, every_s=10, stream=out, clock=clock, terminal=False)
    for _ in range(4):  # 4 items in 4 s: no line yet
        clock.t += 1
        p.advance()
    assert out.getvalue() == ""
    clock.t += 6
    p.advance(failed=1)  # 10 s since the start: a line
    assert out.getvalue() == "replay run: 15/100 chats done, 1 failed, 0.5 chats/s, about 170 s left\n"
    clock.t += 5
    p.advance(3)  # 5 s since the last line: none
    assert out.getvalue().count("\n") == 1
    p.close()
    assert out.getvalue().splitlines()[-1] == "replay run: 18/100 chats done, 1 failed in 15.0 s"


def test_nothing_when_disabled_or_nothing_done():
    out = io.StringIO()
    quiet = Progress(10, every_s=0.0, stream=out, clock=Clock(), terminal=False, enabled=False)
    quiet.advance(5)
    quiet.close()
    idle = Progress(10, already=10, stream=out, clock=Clock(), terminal=False)
    idle.close()
    assert out.getvalue() == ""
    assert idle.line().endswith("time left unknown")
