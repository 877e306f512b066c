"""The one setting every property test of a parser of untrusted input shares (issue 10):
the spec loader, the PEM bundle parser, the journal and lock readers, every parser of
what a host prints. Each runs at least ``PARSER_EXAMPLES`` examples under every profile
(tests/conftest.py): a test's own ``@settings`` overrides its profile, so these tests take
theirs from here rather than writing a smaller number."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

PARSER_EXAMPLES = 2000

PARSER = settings(max_examples=PARSER_EXAMPLES, deadline=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                         HealthCheck.data_too_large])
