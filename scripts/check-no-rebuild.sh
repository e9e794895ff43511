#!/usr/bin/env bash
# A change of terminal environment must not recompile anything (NO_COLOR=1 make studio once rebuilt for 75 s, and
# the plain make studio after it for 234 s). Builds once, then again under each variation below, and fails when a
# variation compiles or links a target ("Compiling plugin" lines are SwiftPM reading the argument parser's plugin
# manifests, which it does on every run).
#
#   scripts/check-no-rebuild.sh            swift build (debug) directly; `make test` runs this
#   scripts/check-no-rebuild.sh --studio   `make studio` itself in tmux, quit with F10, once per variation
set -euo pipefail
cd "$(dirname "$0")/.."
SWIFT=${SWIFT:-swift}
variations=("NO_COLOR=1" "TERM=xterm" "TERM=tmux-256color TERM_PROGRAM=tmux TMUX=/tmp/tmux-0/default,1,0"
            "TERM=xterm-256color COLORTERM=truecolor" "TERM=dumb" "NO_COLOR=")
compiled() { grep -E '^\[[0-9]+/[0-9]+\] (Compiling|Linking|Emitting|Building)' | grep -v 'Compiling plugin' || true; }
failed=0
if [ "${1:-}" = --studio ]; then
  command -v tmux >/dev/null || { echo "check-no-rebuild: --studio needs tmux" >&2; exit 2; }
  session=norebuild$$
  log=$(mktemp)
  trap 'tmux kill-session -t "$session" 2>/dev/null || true; rm -f "$log" "$log".*' EXIT
  tmux new-session -d -s "$session" -x 100 -y 30
  for variation in "" "${variations[@]}"; do
    tmux send-keys -t "$session" "env $variation make studio > $log.out 2>&1; echo \$? > $log.rc" Enter
    # The studio is up once its screen shows; F10 quits it.
    for _ in $(seq 1 600); do grep -q 'F10' <(tmux capture-pane -p -t "$session") && break; [ -e "$log.rc" ] && break; sleep 1; done
    tmux send-keys -t "$session" F10
    for _ in $(seq 1 60); do [ -e "$log.rc" ] && break; sleep 1; done
    again=$(compiled < "$log.out")
    if [ -n "$variation" ] && [ -n "$again" ]; then echo "make studio with '$variation' rebuilt:"; echo "$again" | head -5; failed=1
    else echo "make studio with '${variation:-the first environment}': $(grep -c . <<< "$again" || true) compile lines"; fi
    rm -f "$log.rc"
  done
else
  "$SWIFT" build >/dev/null
  for variation in "${variations[@]}"; do
    again=$(env $variation "$SWIFT" build 2>&1 | compiled)
    if [ -n "$again" ]; then echo "swift build with '$variation' rebuilt:"; echo "$again" | head -5; failed=1; fi
  done
  [ $failed = 0 ] && echo "No rebuild under ${#variations[@]} terminal environments (NO_COLOR, TERM, TMUX, COLORTERM)"
fi
exit $failed
