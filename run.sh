#!/usr/bin/env bash
# Minsheng Map: one command to run the dashboard, one to run every test. Sets up what it needs.
#   bash run.sh            # dashboard on the shipped sample: http://127.0.0.1:8050/
#   bash run.sh test       # the whole test suite (PostGIS and headless Chromium included)
set -euo pipefail
cd "$(dirname "$0")"
VENV="${MINSHENG_VENV:-.venv}"

python_ok() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; }

setup_python() {
  local py="${PYTHON:-python3}"
  python_ok "$py" || { echo "Python 3.11+ is needed (found: $("$py" --version 2>&1))" >&2; exit 1; }
  [ -x "$VENV/bin/python" ] || "$py" -m venv "$VENV"
  local stamp="$VENV/.minsheng-installed"
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "installing Python packages into $VENV ..." >&2
    "$VENV/bin/python" -m pip install -q --upgrade pip >&2 || true
    "$VENV/bin/python" -m pip install -q -e ".[test]" >&2
    touch "$stamp"
  fi
}

setup_system() {
  # Test-only system packages: PostgreSQL + PostGIS (throwaway cluster), headless Chromium, CJK fonts.
  local need=()
  [ -x /usr/lib/postgresql/15/bin/initdb ] || need+=(postgresql)
  [ -d /usr/share/postgresql/15/extension ] && ls /usr/share/postgresql/15/extension/postgis.control >/dev/null 2>&1 \
    || need+=(postgresql-15-postgis-3)
  [ -x /usr/bin/chromium ] || need+=(chromium)
  [ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
  fc-list 2>/dev/null | grep -qi "cjk" || need+=(fonts-noto-cjk)
  [ -f /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc ] || need+=(fonts-wqy-zenhei)  # TrueType CJK for PDF packs
  if [ ${#need[@]} -gt 0 ]; then
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "installing system packages: ${need[*]} ..." >&2
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
  fi
}

case "${1:-app}" in
  app|serve) setup_python; shift || true; exec "$VENV/bin/python" app.py "$@" ;;
  test) setup_system; setup_python; shift; exec "$VENV/bin/python" -m pytest -q -p no:cacheprovider "$@" ;;
  *) echo "usage: bash run.sh [app [--data FILE.gpkg] [--port N]] | test [pytest args]" >&2; exit 2 ;;
esac
