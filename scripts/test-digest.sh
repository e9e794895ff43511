#!/usr/bin/env bash
# After a failed `swift test`: the few lines that say what failed, printed last so that a CI log that keeps only its
# last ~20 lines still names them. In that order, the most telling last: the failed expectations, the tests that had
# started and not ended (running when a crash took the process down), the crash reason and the crashed thread's
# frames that have a source location.
# usage: scripts/test-digest.sh LOG
log=${1:?usage: test-digest.sh LOG}
[ -r "$log" ] || { echo "test-digest: cannot read $log"; exit 1; }
echo "==== what failed (from $log) ===="
awk '/^✘ Test .* recorded an issue/ { if (++n > 4) exit; print; detail = 1; next }
     detail && /^↳ / { print; detail = 0; next } { detail = 0 }' "$log" | cut -c1-300
grep -E '^✘ Test run with ' "$log" | tail -1
awk '/^◇ Test (case |run )/ { next }
     /^◇ Test .* started\.$/ { name = $0; sub(/^◇ Test /, "", name); sub(/ started\.$/, "", name); running[name] = NR }
     /^(✔|✘) Test / { name = $0; sub(/^(✔|✘) Test /, "", name); sub(/ (with [0-9]+ test cases? )?(passed|failed).*$/, "", name); delete running[name] }
     END { for (t in running) print running[t] "\t" t }' "$log" | sort -n | tail -4 | cut -f2 | sed 's/^/still running: /'
grep -E 'Fatal error|Precondition failed|Assertion failed|Program crashed|SWIFT TASK CONTINUATION MISUSE' "$log" | cut -c1-300 | head -2
awk '/^Thread [0-9]+ crashed:/ { on = 1; next }
     on && /^$/ && seen { exit }
     on && / at \// { sub(/^ *[0-9]+ (\[ra\] )?(\[inlined\] )?0x[0-9a-f]+ /, "  "); print; seen = 1; if (++n == 6) exit }' "$log" | cut -c1-240
