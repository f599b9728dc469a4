#!/bin/sh
# Chromium for the tests: at a user's priority, and below the server it tests.
#
# Run as root (CI, this project's test machines), Chromium raises its own threads'
# priority: renderers and the GPU/IO threads to nice -8, audio threads to real time.
# An ordinary user's browser cannot. Dropping CAP_SYS_NICE from the bounding set
# (root's exec keeps nothing outside it) makes those calls fail, as for a user.
#
# In production the server has its own machine; here three pages that encode and
# decode video share two cores with it, its Redis and the other test process. At an
# equal share the server's loop fell behind: a Redis SET answered in 1 ms to another
# client took the server 1.3 s to see, a recording's consent took 4 s to show. At
# nice 10 the browsers get whatever the server leaves, as if it had its own CPU.
# The real browser: $SEOULBRIDGE_CHROMIUM, else /usr/bin/chromium.
browser="${SEOULBRIDGE_CHROMIUM:-/usr/bin/chromium}"
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null 2>&1; then
  exec setpriv --bounding-set -sys_nice --inh-caps -sys_nice -- nice -n 10 "$browser" "$@"
fi
exec nice -n 10 "$browser" "$@"
