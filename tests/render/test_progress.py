"""Progress over a fleet: plain lines off a terminal, a rich bar on one; stderr only."""

from __future__ import annotations

import io
import threading
import time

import pytest
from rich.console import Console

from wlbplan.model.events import target_done, target_start
from wlbplan.render.progress import BarProgress, PlainProgress, on_a_terminal, progress


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_one_per_finished_target_and_a_closing_line() -> None:
    out = io.StringIO()
    with PlainProgress(out, "audit", 3) as shown:
        for name in ("a", "b", "c"):
            shown(target_start(name))
        shown(target_done("b", True, 0.5))
        shown(target_done("a", False, 2.25))
        shown(target_done("c", True, 1))
    lines = out.getvalue().splitlines()
    assert lines[:3] == ["b: ok (0.50s) [1/3, 0 failed]",
                         "a: FAILED (2.25s) [2/3, 1 failed]",
                         "c: ok (1.00s) [3/3, 1 failed]"]
    assert lines[3].startswith("audit: 3 targets, 2 ok, 1 failed (a) in ")
    assert len(lines) == 4


def test_a_plain_line_shows_a_hostile_name_escaped_on_its_one_line() -> None:
    out = io.StringIO()
    with PlainProgress(out, "plan", 1) as shown:
        shown(target_start("x\n::error::forged\x1b[2J"))
        shown(target_done("x\n::error::forged\x1b[2J", False, 1))
    text = out.getvalue()
    assert "\x1b" not in text
    assert not any(line.startswith("::") for line in text.splitlines())
    assert "x\\n::error::forged\\x1b[2J: FAILED" in text


def test_no_closing_line_when_the_work_raised() -> None:
    out = io.StringIO()
    with pytest.raises(KeyboardInterrupt), PlainProgress(out, "plan", 2):
        raise KeyboardInterrupt
    assert out.getvalue() == ""


def test_the_bar_counts_and_names_the_slowest_target_still_running(
        capsys: pytest.CaptureFixture[str]) -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=120, color_system=None)
    with BarProgress(screen, "plan", 3, console=console) as shown:
        shown(target_start("fast"))
        shown(target_start("[bold]hung[/bold]"))  # a name is text, never markup
        time.sleep(0.05)
        shown(target_start("late"))
        shown(target_done("fast", True, 0.1))
        shown(target_done("late", False, 0.1))
        shown.stream.write("a step line above the bar\n")
        slowest = shown.tally.slowest()
        assert slowest is not None
        assert slowest[0] == "[bold]hung[/bold]"
        shown._bar.refresh()
        drawn = screen.getvalue()
        shown(target_done("[bold]hung[/bold]", True, 3))
    assert "slowest: [bold]hung[/bold]" in drawn
    assert "2/3" in drawn
    assert "1 failed" in drawn
    assert "a step line above the bar" in screen.getvalue()
    assert "3/3" in screen.getvalue()
    assert "plan: 3 targets, 2 ok, 1 failed (late)" in screen.getvalue()
    assert capsys.readouterr().out == ""  # stdout is the requested format's alone


def test_the_bar_while_stdout_is_written_leaves_stdout_alone(
        capsys: pytest.CaptureFixture[str]) -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=100, color_system=None)
    with BarProgress(screen, "audit", 1, console=console) as shown:
        print('{"format": "json"}')
        shown(target_start("a"))
        shown(target_done("a", True, 0.1))
    assert capsys.readouterr().out == '{"format": "json"}\n'
    assert '"format"' not in screen.getvalue()


def test_progress_picks_the_bar_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TERM", raising=False)
    assert isinstance(progress("plan", 1, io.StringIO()), PlainProgress)
    assert isinstance(progress("plan", 1, _Tty()), BarProgress)
    monkeypatch.setenv("TERM", "dumb")
    assert not on_a_terminal(_Tty())


def test_the_tally_is_safe_across_threads() -> None:
    out = io.StringIO()
    names = [f"t{i}" for i in range(200)]

    def work(name: str) -> None:
        shown(target_start(name))
        shown(target_done(name, not name.endswith("7"), 0.01))

    with PlainProgress(out, "apply", len(names)) as shown:
        threads = [threading.Thread(target=work, args=(n,)) for n in names]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert shown.tally.done == 200
    assert len(shown.tally.failed) == 20
    assert len(out.getvalue().splitlines()) == 201


def test_nothing_to_count_says_nothing() -> None:
    """apply when every target failed its inspection: no bar, no "0 targets" line."""
    out = io.StringIO()
    with PlainProgress(out, "apply", 0):
        pass
    screen = _Tty()
    console = Console(file=screen, force_terminal=True, width=80, color_system=None)
    with BarProgress(screen, "apply", 0, console=console):
        pass
    assert out.getvalue() == screen.getvalue() == ""
