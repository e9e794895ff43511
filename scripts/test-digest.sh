#!/usr/bin/env bash
# After a failed `swift test`: the few lines that say what failed, printed last so that a CI log that keeps only its
# tail still names them — the crash reason and the crashed thread's frames in our code, the tests that had started
# and not ended (the ones running when a crash took the process down), and the failed tests and their issues.
# usage: scripts/test-digest.sh LOG
log=${1:?usage: test-digest.sh LOG}
[ -r "$log" ] || { echo "test-digest: cannot read $log"; exit 1; }
echo "==== what failed (from $log) ===="
grep -E 'Fatal error|Precondition failed|Assertion failed|Program crashed|SWIFT TASK CONTINUATION MISUSE' "$log" | head -4
# Frames of the crashed thread that have a source location (ours and the toolchain's), without the addresses.
awk '/^Thread [0-9]+ crashed:/ { on = 1; next }
     on && /^$/ && seen { exit }
     on && / at \// { sub(/^ *[0-9]+ (\[ra\] )?(\[inlined\] )?0x[0-9a-f]+ /, "  "); print; seen = 1; if (++n == 8) exit }' "$log"
# Started and never passed or failed: running when the process ended.
awk '/^◇ Test (case |run )/ { next }
     /^◇ Test .* started\.$/ { name = $0; sub(/^◇ Test /, "", name); sub(/ started\.$/, "", name); running[name] = NR }
     /^(✔|✘) Test / { name = $0; sub(/^(✔|✘) Test /, "", name); sub(/ (with [0-9]+ test cases? )?(passed|failed).*$/, "", name); delete running[name] }
     END { for (t in running) print running[t] "\t" t }' "$log" | sort -n | tail -6 | cut -f2 | sed 's/^/  still running: /'
grep -E '^✘ ' "$log" | grep -v -E '^✘ Test run with ' | head -12
grep -E '^✘ Test run with ' "$log" | tail -1
