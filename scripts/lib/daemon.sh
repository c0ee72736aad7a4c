# Sourced by scripts/broker and scripts/secure-broker.
# Runs a command in the background in a session of its own (so the caller's terminal signals
# don't reach it, and `stop` is the one way it ends), its output appended to the file $1, and with
# none of the caller's descriptors but the standard ones: a caller that waits for this script's
# descriptors to close (Foundation's Process does) would otherwise wait until the broker stops.
# setsid execs in place (the subshell leads no process group), so $! is the command's pid.
daemon() {
  local out=$1; shift
  (
    for fd in /proc/"$BASHPID"/fd/*; do
      fd=${fd##*/}
      case "$fd" in 0 | 1 | 2 | 255) ;; *) eval "exec $fd>&-" 2>/dev/null || true ;; esac
    done
    exec setsid "$@" </dev/null >>"$out" 2>&1
  ) &
}
