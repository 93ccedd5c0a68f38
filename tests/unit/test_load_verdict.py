"""The load run's verdict: a wrong answer fails it, lateness only with --strict."""

from __future__ import annotations

import argparse

import pytest

from bench import load
from bench.load_client import INBOUND, NOT_SENT, TIMED_OUT, Sample


def _args(strict: bool = False, no_check: bool = False) -> argparse.Namespace:
    return argparse.Namespace(strict=strict, no_check=no_check)


def test_lateness_is_told_apart_from_wrong_answers() -> None:
    samples = [
        Sample(INBOUND, 200, 12.0, None, 0.1),
        Sample(INBOUND, 0, 10_000.0, TIMED_OUT, 0.2),
        Sample(INBOUND, -1, 0.0, NOT_SENT, 0.3),
        Sample(INBOUND, 500, 8.0, "HTTP 500", 0.4),
        Sample(INBOUND, 0, 3.0, "pas de réponse (ServerDisconnectedError)", 0.5),
    ]
    (line,) = load.lines(samples, 1.0)
    assert (line.errors, line.too_slow) == (4, 2)


@pytest.mark.parametrize(
    ("wrong", "slow", "strict", "no_check", "code"),
    [
        ([], [], False, False, 0),
        ([], ["p99 308 ms"], False, False, 0),  # reported, not asserted
        ([], ["p99 308 ms"], True, False, 1),
        (["HTTP 500"], [], False, False, 1),
        (["HTTP 500"], ["p99 308 ms"], True, True, 0),
    ],
)
def test_exit_code(
    wrong: list[str], slow: list[str], strict: bool, no_check: bool, code: int, capsys
) -> None:
    assert load.verdict(wrong, slow, _args(strict, no_check)) == code
    out = capsys.readouterr().out
    assert ("COMPORTEMENT NON CONFORME" in out) == bool(wrong)
    assert ("OBJECTIF DE LATENCE NON ATTEINT" in out) == bool(slow)
