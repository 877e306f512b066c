"""wlbplan: plan/apply for the TLS trust between a XenServer pool and its WLB appliance.

Kept import-free: the lab's xe emulator and the CLI's start-up import this package.
"""

__version__ = "0.1.0"
