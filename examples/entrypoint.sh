#!/bin/sh
# wasm-router's entrypoint for the FireLens sidecar image (examples/Dockerfile).
#
# It stands where aws-for-fluent-bit's /entrypoint.sh stands (firelens-aws.md §1.6): it prints
# the version, picks a configuration and execs the router, so the router is PID 1's child-free
# replacement and receives SIGTERM from ECS directly.
#
# Which configuration runs, first match wins:
#   1. `-c FILE` on the command line (Fluent Bit's flag; `--config FILE` works too);
#   2. the native TOML config at $WASM_ROUTER_CONFIG (default /etc/wasm-router/router.toml);
#   3. the config FireLens generates at $FLUENT_BIT_CONFIG (default
#      /fluent-bit/etc/fluent-bit.conf), in Fluent Bit's classic format;
#   4. the router's embedded default (forward on 127.0.0.1:24224 → stdout).
# Fluent Bit's `-e PLUGIN.so` flags (its Go output plugins; ours are built in) are dropped with
# a note and `-R PARSERS_FILE` is passed on, so task definitions that pass them keep working.
# A first argument that is a router subcommand (`run`, `validate`, `cat`, `top`, …) runs that
# subcommand as is.
#
# The init image's conventions need no step here: `run` itself reads the ECS task metadata
# (`$ECS_CONTAINER_METADATA_URI_V4/task` → `${ECS_CLUSTER}`, `$(ecs_task_id)`, …) and applies
# `aws_fluent_bit_init_s3_N` / `aws_fluent_bit_init_file_N` (included configs and parsers files,
# see examples/ecs/README.md), whichever config this script picks; only a TOML config cannot
# take init files.
#
# Every path is an environment variable so the script can be tested outside the image, and
# each step is a function: add a step as one more function called from `main`.
set -eu

WASM_ROUTER_BIN="${WASM_ROUTER_BIN:-/usr/local/bin/wasm-router}"
WASM_ROUTER_CONFIG="${WASM_ROUTER_CONFIG:-/etc/wasm-router/router.toml}"
FLUENT_BIT_CONFIG="${FLUENT_BIT_CONFIG:-/fluent-bit/etc/fluent-bit.conf}"

note() {
    echo "entrypoint: $*" >&2
}

# On stderr: stdout carries the events of a `stdout` output.
print_version() {
    "$WASM_ROUTER_BIN" --version >&2
}

# Sets CONFIG_FROM_ARGS and PARSERS_FILES (one per line) from Fluent Bit style arguments.
parse_fluent_bit_args() {
    CONFIG_FROM_ARGS=""
    PARSERS_FILES=""
    while [ "$#" -gt 0 ]; do
        case "$1" in
            -c | --config)
                [ "$#" -ge 2 ] || { note "$1 needs a file"; exit 2; }
                CONFIG_FROM_ARGS="$2"
                shift 2
                ;;
            -e | --plugin)
                [ "$#" -ge 2 ] || { note "$1 needs a file"; exit 2; }
                note "ignoring $1 $2: the router's outputs are built in, or WASM plugins (/plugins)"
                shift 2
                ;;
            -R | --parser)
                [ "$#" -ge 2 ] || { note "$1 needs a file"; exit 2; }
                PARSERS_FILES="${PARSERS_FILES}$2
"
                shift 2
                ;;
            *)
                note "unknown argument $1; usage: [-c CONFIG] [-e PLUGIN.so]... [-R PARSERS]..."
                exit 2
                ;;
        esac
    done
}

# Prints the config file to run, or nothing for the embedded default.
choose_config() {
    if [ -n "$CONFIG_FROM_ARGS" ]; then
        echo "$CONFIG_FROM_ARGS"
    elif [ -f "$WASM_ROUTER_CONFIG" ]; then
        echo "$WASM_ROUTER_CONFIG"
    elif [ -f "$FLUENT_BIT_CONFIG" ]; then
        echo "$FLUENT_BIT_CONFIG"
    fi
}

main() {
    case "${1:-}" in
        run | validate | cat | top | test | plugin | help | bench-load | bench-startup | --help | -h | --version | -V)
            exec "$WASM_ROUTER_BIN" "$@"
            ;;
    esac
    print_version
    parse_fluent_bit_args "$@"
    config="$(choose_config)"
    set -- run
    if [ -n "$config" ]; then
        note "running with $config"
        set -- "$@" -c "$config"
    else
        note "running the embedded default configuration"
    fi
    old_ifs="$IFS"
    IFS='
'
    set -f
    for parsers in $PARSERS_FILES; do
        set -- "$@" -R "$parsers"
    done
    set +f
    IFS="$old_ifs"
    exec "$WASM_ROUTER_BIN" "$@"
}

main "$@"
