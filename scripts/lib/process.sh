# Shell helpers shared by the scripts that start and stop background processes. Source it.

# stop_pid PID: SIGTERM, up to 10 s for a graceful stop, then SIGKILL; reaps PID when it is a
# child of this shell. Does nothing for an empty or dead PID.
stop_pid() {
    local pid=$1
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "pid $pid did not stop on SIGTERM; sending SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}
