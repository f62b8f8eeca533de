"""Property-based fuzzing of what a client sends: type sniffing, metadata probing, the upload's
tus headers, file names, model headers (tests/fuzz_targets.py). bench/fuzz.py runs the
same targets for minutes; here each gets a few hundred inputs per run."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from tests.fuzz_targets import TARGETS, TRIED

EXAMPLES = {"identify": 150, "gguf": 150}  # each input is a file through real parsers


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_client_input_is_accepted_or_refused_never_an_error(name):
    function, strategies = TARGETS[name]
    run = settings(
        max_examples=EXAMPLES.get(name, 400), deadline=None, database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )(given(*strategies)(function))  # fmt: skip
    before = TRIED[name]
    run()
    assert TRIED[name] - before >= 100  # it did try that many inputs
