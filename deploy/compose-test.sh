#!/usr/bin/env bash
# Runs the compose cluster test by hand (CI runs it too): brings up
# deploy/docker-compose.yml with the image RUVECTOR_IMAGE (default
# ruvector:local; build it first with deploy/local-image.sh), exercises it
# through the router, stops and kills shards, checks every acknowledged
# vector comes back, and always runs `docker-compose down -v` at the end.
# See deploy/test/compose_cluster.py for the steps.
set -euo pipefail
exec python3 "$(dirname "$0")/test/compose_cluster.py" "$@"
