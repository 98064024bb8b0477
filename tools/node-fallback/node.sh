#!/bin/sh
# node_modules/.bin/node: the Node 24 that install.sh fetched (system Node < 22), else the system's own.
here=$(dirname "$(readlink -f "$0")")
[ -x "$here/.runtime/bin/node" ] && exec "$here/.runtime/bin/node" "$@"
PATH=$(printf %s "$PATH" | tr ':' '\n' | grep -v '/node_modules/\.bin$' | paste -sd: -)
exec node "$@"
