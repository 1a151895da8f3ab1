# Shared by loadtest/run.sh and loadtest/cluster.sh (sourced).

# wait_line FILE PATTERN: prints the first match of PATTERN once FILE has one
# (30 s at most; then prints FILE and fails).
wait_line() { # file pattern
    for _ in $(seq 1 300); do
        grep -m1 -o "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "timed out waiting for '$2' in $1" >&2; cat "$1" >&2; return 1
}
