#!/bin/sh
# `make demo`: bring a local lab up and run wlbplan's main job on it.
set -eu
WLBPLAN=$1
LAB_DIR=$2

"$WLBPLAN" lab down --dir "$LAB_DIR" >/dev/null 2>&1 || true
SPEC=$("$WLBPLAN" lab up --dir "$LAB_DIR" | tail -n 1)
echo "== lab is up; its spec is $SPEC"
"$WLBPLAN" lab status --dir "$LAB_DIR"
XE="$LAB_DIR/pool1/bin/xe"
UUID=$("$XE" pool-list --minimal)
echo "== what the pool says (xe is the lab's emulator)"
echo "\$ xe pool-param-get uuid=$UUID param-name=wlb-url"
"$XE" pool-param-get uuid="$UUID" param-name=wlb-url
echo "\$ xe pool-param-get uuid=$UUID param-name=wlb-verify-cert"
"$XE" pool-param-get uuid="$UUID" param-name=wlb-verify-cert
echo "\$ xe pool-certificate-list"
"$XE" pool-certificate-list
echo "== stop the lab with: $WLBPLAN lab down --dir $LAB_DIR"
