#!/bin/sh
# `make demo`: bring a local lab up and run wlbplan's main job on it:
# audit → plan → apply (turn WLB certificate verification on, reversibly) → plan again
# (no changes) → audit again.
set -eu
WLBPLAN=$1
LAB_DIR=$2

step() { printf '\n== %s\n' "$*"; }

"$WLBPLAN" lab down --dir "$LAB_DIR" --purge >/dev/null 2>&1 || true
step "wlbplan lab up --dir $LAB_DIR   (real stunnel + OpenSSL; emulated xe)"
SPEC=$("$WLBPLAN" lab up --dir "$LAB_DIR" | tail -n 1)
"$WLBPLAN" lab status --dir "$LAB_DIR"

step "wlbplan validate $SPEC"
"$WLBPLAN" validate "$SPEC"

step "wlbplan audit $SPEC   (read-only; warnings: verification is off)"
"$WLBPLAN" audit "$SPEC"

step "wlbplan plan $SPEC --out $LAB_DIR/demo.plan.json   (exit 2: there are changes)"
rc=0
"$WLBPLAN" plan "$SPEC" --out "$LAB_DIR/demo.plan.json" --detailed-exitcode || rc=$?
[ "$rc" -eq 2 ] || { echo "expected changes (exit 2), got exit $rc" >&2; exit 1; }

step "wlbplan apply $LAB_DIR/demo.plan.json   (the reviewed plan, as saved)"
"$WLBPLAN" apply "$LAB_DIR/demo.plan.json"

step "wlbplan plan $SPEC --detailed-exitcode   (exit 0: nothing left to do)"
"$WLBPLAN" plan "$SPEC" --detailed-exitcode

step "wlbplan audit $SPEC   (the pool verifies WLB now; modern policy still warns)"
"$WLBPLAN" audit "$SPEC"

XE="$LAB_DIR/pool1/bin/xe"
UUID=$("$XE" pool-list --minimal)
step "what the pool says now (xe is the lab's emulator)"
echo "\$ xe pool-param-get uuid=$UUID param-name=wlb-verify-cert"
"$XE" pool-param-get uuid="$UUID" param-name=wlb-verify-cert
echo "\$ xe pool-certificate-list"
"$XE" pool-certificate-list
echo "\$ xe pool-retrieve-wlb-configuration   (a real TLS handshake, verified as xapi does)"
"$XE" pool-retrieve-wlb-configuration

step "done. Stop the lab with: $WLBPLAN lab down --dir $LAB_DIR"
