#!/bin/sh
# Chromium as it runs on a user's machine: without CAP_SYS_NICE.
#
# Run as root (CI, this project's test machines), Chromium raises its own threads'
# priority: renderers and the GPU/IO threads to nice -8, audio threads to real time.
# An ordinary user's browser cannot, and in production it is on another machine than
# the server anyway. Here it shares two cores with the server and Redis, and those
# boosts gave it about six times their CPU share whenever both wanted it: join steps
# unanswered for 8 s, Redis heartbeats failing, recognition falling behind.
# Dropping the capability from the bounding set (root's exec keeps nothing outside
# it) makes those setpriority and sched_setscheduler calls fail, as for a user.
# The real browser: $SEOULBRIDGE_CHROMIUM, else /usr/bin/chromium.
exec setpriv --bounding-set -sys_nice --inh-caps -sys_nice -- \
  "${SEOULBRIDGE_CHROMIUM:-/usr/bin/chromium}" "$@"
