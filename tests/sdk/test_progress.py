"""The progress bar: quiet off a terminal, figures exact under threads, closed once."""

from __future__ import annotations

import io
import threading

from depot._progress import Progress


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_quiet_when_the_stream_is_not_a_terminal() -> None:
    out = io.StringIO()
    with Progress(total_objects=3, label="download", stream=out) as p:
        p.advance(1, 10)
        p.advance(2, 20)
    assert out.getvalue() == ""
    assert (p.objects, p.bytes) == (3, 30)


def test_draws_objects_and_bytes_on_a_terminal_and_ends_the_line_once() -> None:
    out = Tty()
    p = Progress(total_objects=4, total_bytes=4 << 20, label="download", stream=out)
    p.advance(4, 4 << 20)
    p.close()
    p.close()
    text = out.getvalue()
    assert text.endswith("\n") and text.count("\n") == 1
    last = text.rsplit("\r", 1)[-1]
    assert last.startswith("download: 4/4 objects, 4.0 MiB/4.0 MiB")


def test_enabled_overrides_the_terminal_check() -> None:
    out = io.StringIO()
    with Progress(label="listing", stream=out, enabled=True) as p:
        p.advance(7)
    assert "listing: 7 objects, 0 B" in out.getvalue()
    quiet = Tty()
    with Progress(stream=quiet, enabled=False) as p:
        p.advance(1)
    assert quiet.getvalue() == ""


def test_counts_from_many_threads_add_up() -> None:
    p = Progress(stream=Tty())

    def work() -> None:
        for _ in range(10_000):
            p.advance(1, 3)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    p.close()
    assert (p.objects, p.bytes) == (40_000, 120_000)


def test_a_broken_stream_never_fails_the_work() -> None:
    out = Tty()
    out.close()
    with Progress(stream=out, enabled=True) as p:
        p.advance(1, 1)
    assert p.objects == 1 and not p.enabled
