"""The lab's ``xe``: the CLI of a pool coordinator, emulated over ``state.json``.

Behaviour and texts follow xen-api (xapi-project/xen-api); where a text is quoted from
its source, the file is named. ``/work/shared/reference/xapi-facts.md`` lists the facts.
Stdlib only at import time: benchmarks run this thousands of times, so ``ssl``,
``socket`` and ``cryptography`` are imported only by the commands that need them.

The modules, each a seam of xapi: :mod:`.errors` (how failures print), :mod:`.cli`
(the command line, the printer, a call's context), :mod:`.records` (the generic
``<class>-list`` / ``-param-*`` commands), :mod:`.trust` (CA certificates and CRLs),
:mod:`.wlb` (the WLB calls), :mod:`.verify` (stunnel's checks of WLB's certificate) and
:mod:`.main` (the command table; ``bin/xe`` runs its ``main``).
"""
