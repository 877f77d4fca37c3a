#!/bin/sh
# The PhotoChanger image's one entrypoint: the same image runs every kind of process.
#
#   web [uvicorn options]     the web server: uvicorn on $HOST:$PORT (0.0.0.0:8000), $WEB_PROCESSES
#                             processes (default 1; one per container is the usual way)
#   worker [--concurrency N]  a queue worker (manage.py run_worker)
#   cron                      the cleanup timer: manage.py cleanup every $CLEANUP_INTERVAL_SECONDS (300)
#                             and manage.py prune_history every $PRUNE_INTERVAL_SECONDS (86400)
#   release                   once per release, before the others: migrate, then bootstrap (the first
#                             admin and ingest password, printed once on a fresh database)
#   manage <command> [...]    any manage.py command (e.g. manage createsuperuser, manage check --deploy)
#   anything else             run as given (e.g. sh)
#
# Outside a container it runs from the checkout it lives in, with $PYTHON (default: python).
set -eu
cd "$(dirname "$0")/.."
python="${PYTHON:-python}"

command="${1:-web}"
[ "$#" -gt 0 ] && shift

case "$command" in
  web)
    # --proxy-headers: the booth's address comes from X-Forwarded-For, believed only from
    # $FORWARDED_ALLOW_IPS (the reverse proxy's address; see Docs/runbooks.md).
    exec "$python" -m uvicorn photochanger.asgi:application \
      --host "${HOST:-0.0.0.0}" --port "${PORT:-8000}" --workers "${WEB_PROCESSES:-1}" \
      --loop uvloop --http httptools --lifespan off --no-access-log --timeout-graceful-shutdown 65 \
      --proxy-headers --forwarded-allow-ips "${FORWARDED_ALLOW_IPS:-127.0.0.1}" "$@"
    ;;
  worker)
    exec "$python" manage.py run_worker "$@"
    ;;
  cron)
    cleanup_every="${CLEANUP_INTERVAL_SECONDS:-300}"
    prune_every="${PRUNE_INTERVAL_SECONDS:-86400}"
    next_prune=0
    sleeper=""
    # Stop between runs at once; a run under way finishes first (both commands are short and idempotent).
    trap 'echo "cron: stopping"; [ -z "$sleeper" ] || kill "$sleeper" 2>/dev/null || true; exit 0' TERM INT
    while :; do
      "$python" manage.py cleanup || echo "cron: cleanup failed (exit $?); next try in ${cleanup_every} s" >&2
      now="$(date +%s)"
      if [ "$now" -ge "$next_prune" ]; then
        "$python" manage.py prune_history || echo "cron: prune_history failed (exit $?)" >&2
        next_prune=$((now + prune_every))
      fi
      sleep "$cleanup_every" &
      sleeper=$!
      wait "$sleeper" || true
    done
    ;;
  release)
    "$python" manage.py migrate --noinput
    exec "$python" manage.py bootstrap "$@"
    ;;
  manage)
    exec "$python" manage.py "$@"
    ;;
  *)
    exec "$command" "$@"
    ;;
esac
