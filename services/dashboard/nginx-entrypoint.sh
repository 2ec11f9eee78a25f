#!/bin/sh
# Renders the nginx config from its template with BACKEND_URL, then runs nginx in the
# foreground. Everything it writes lives under /tmp (read-only root filesystem).
set -eu

backend="${BACKEND_URL%/}"
case "$backend" in
    http://*|https://*) ;;
    *) echo "nginx-entrypoint: BACKEND_URL must be http(s)://host:port, got '${BACKEND_URL}'" >&2; exit 64 ;;
esac
case "${backend#*://}" in
    */*) echo "nginx-entrypoint: BACKEND_URL must have no path (nginx would replace the /api prefix), got '${BACKEND_URL}'" >&2; exit 64 ;;
esac

mkdir -p /tmp/nginx/client_body /tmp/nginx/proxy /tmp/nginx/fastcgi /tmp/nginx/uwsgi /tmp/nginx/scgi
port="${NGINX_PORT:-8080}"
case "$port" in
    ''|*[!0-9]*) echo "nginx-entrypoint: NGINX_PORT must be a port number, got '${port}'" >&2; exit 64 ;;
esac
# Only these two: nginx's own $variables stay as they are.
BACKEND_URL="$backend" NGINX_PORT="$port" envsubst '${BACKEND_URL} ${NGINX_PORT}' < /etc/orderpipeline/nginx.conf.template > /tmp/nginx/nginx.conf
exec nginx -e stderr -c /tmp/nginx/nginx.conf -g 'daemon off;'
