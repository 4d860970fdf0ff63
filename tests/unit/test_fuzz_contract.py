"""A small budget of the `make fuzz` run on every `make test`: hostile bodies through each parser's real
ingress (body parser, parser, publish, dead letter), zero escapes from the bad-input contract.
Timing is measured and reported by `make fuzz` only, never asserted here."""

from __future__ import annotations

import pytest

from tests.fuzz.runner import PARSERS, fuzz

BUDGET = 150


@pytest.mark.parametrize("parser", PARSERS)
def test_no_input_escapes_the_bad_input_contract(parser: str) -> None:
    figures = fuzz(parser, BUDGET, slow_ms=float("inf"))
    assert figures.inputs == BUDGET
    assert figures.escapes == 0, figures.examples
    assert figures.outcomes["dead_lettered"] > 0  # the generators do reach the dead-letter step
    assert figures.outcomes["published"] > 0  # and, with sound records, the publish step
