#!/usr/bin/env bash
# Installs everything the tests need, on a fresh Debian machine or a developer's:
#   - Debian's chromium (real browser checks, driven by playwright)
#   - Debian's postfix, for its smtp-sink test server (SMTP fault injection);
#     installed as "No configuration", so no mail server is set up or started
#   - openssl, to make the TLS certificates the SMTP tests use
#   - Debian's postgresql: the tests start a throwaway server of their own (the
#     package's own service is not needed), and libpq5, which psycopg uses
#   - Debian's dovecot-imapd, the IMAP server the inbox tests start in a temporary folder
#   - Debian's spamassassin, to score every shipped email with its offline rules
#   - a virtual environment in .venv with the project and its test extras,
#     at the exact versions in requirements/constraints.txt
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_missing=()
command -v chromium >/dev/null 2>&1 || apt_missing+=(chromium)
# smtp-sink lives in /usr/sbin, which is often not on a user's PATH.
command -v smtp-sink >/dev/null 2>&1 || test -x /usr/sbin/smtp-sink || apt_missing+=(postfix)
command -v openssl >/dev/null 2>&1 || apt_missing+=(openssl)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || apt_missing+=(postgresql)
compgen -G '/usr/lib/*/libpq.so.5' >/dev/null || apt_missing+=(libpq5)
command -v dovecot >/dev/null 2>&1 || test -x /usr/sbin/dovecot || apt_missing+=(dovecot-imapd)
command -v spamassassin >/dev/null 2>&1 || apt_missing+=(spamassassin)
if [ "${#apt_missing[@]}" -gt 0 ]; then
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    echo "Installing Debian packages: ${apt_missing[*]}"
    if [[ " ${apt_missing[*]} " == *" postfix "* ]] && command -v debconf-set-selections >/dev/null; then
        echo "postfix postfix/main_mailer_type select No configuration" \
            | $sudo debconf-set-selections
    fi
    $sudo apt-get update -qq
    # env: sudo drops DEBIAN_FRONTEND otherwise, and postfix would ask questions
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${apt_missing[@]}" >/dev/null
fi

python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -c requirements/constraints.txt -e '.[test]'
