"""Inspection: each host's facts in one remote round trip, parsed by pure functions."""
