#!/bin/sh
# Wait until the given containers are ready: healthy where they have a health check, running
# (or exited 0, as a one-shot job) where they have none. Fails on a non-zero exit, or after
# TIMEOUT_S with the containers still waited for.
# usage: docker/wait-healthy.sh TIMEOUT_S CONTAINER_ID...   (make docker-up)
set -eu
timeout=$1
shift
deadline=$(($(date +%s) + timeout))
format='{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}-{{end}} {{.State.ExitCode}}'
while :; do
    waiting=""
    for line in $(${DOCKER:-docker} inspect -f "$format" "$@" | tr ' ' ':'); do
        IFS=: read -r name status health code <<END
$line
END
        name=${name#/}
        if [ "$status" = exited ] && [ "$code" != 0 ]; then
            echo "$name exited with code $code: ${DOCKER:-docker} logs $name" >&2
            exit 1
        fi
        case "$status/$health" in
            exited/*|running/healthy|running/-) ;;
            *) waiting="$waiting $name($health)" ;;
        esac
    done
    [ -z "$waiting" ] && exit 0
    if [ "$(date +%s)" -ge "$deadline" ]; then
        echo "not healthy within ${timeout} s:$waiting" >&2
        exit 1
    fi
    sleep 1
done
