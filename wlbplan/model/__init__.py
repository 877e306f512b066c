"""Frozen values every stage shares: the spec's parts, the observed facts, commands,
apply events and locks. Nothing here does I/O or imports another wlbplan layer."""
