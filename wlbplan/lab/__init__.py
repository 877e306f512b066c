"""The local lab: a faithful stand-in for a XenServer pool and its WLB appliance.

Real: stunnel, OpenSSL, TLS handshakes, files and modes, sshd. Emulated: ``xe``.
Kept import-free so that the xe emulator starts fast.
"""
