"""The names of the lab's faults, apart from their code (``lab.faults``, which needs
cryptography): the CLI lists them at start-up, and every wlbplan command builds the CLI.
tests/lab/test_faults.py checks that they are exactly ``faults.FAULTS``' keys."""

NAMES = ("restart-fails", "desync-host", "expire", "key-mismatch", "cn-mismatch", "by-ip",
         "stale-backups", "wlb-unresolvable", "wlb-resolves-elsewhere",
         "xenapi-wrong-password", "xenapi-read-only")
