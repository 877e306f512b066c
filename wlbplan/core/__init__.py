"""The pure core: desired state, diff, gate, plan, plan files, audit rules and the step
catalogue. Tested on data; imports no connector, renderer or CLI."""
