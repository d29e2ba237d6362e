#!/bin/sh
# Creates the system user and the directories; starts nothing: the
# configuration must be edited and checked first (README, "Deployment").
set -e
if command -v systemd-sysusers >/dev/null 2>&1; then
	systemd-sysusers /usr/lib/sysusers.d/activated.conf
elif ! getent passwd activated >/dev/null; then
	adduser --system --group --home /var/lib/activated --no-create-home --shell /usr/sbin/nologin activated
fi
if command -v systemd-tmpfiles >/dev/null 2>&1; then
	systemd-tmpfiles --create /usr/lib/tmpfiles.d/activated.conf
else
	install -d -m 0750 -o activated -g activated /var/lib/activated
	install -d -m 0750 -o root -g activated /etc/activated
fi
chgrp activated /etc/activated/activated.toml /etc/activated/charter.md
chmod 0640 /etc/activated/activated.toml /etc/activated/charter.md
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
	# An upgrade restarts a running service on the new binary.
	if [ "$1" = "configure" ] && [ -n "$2" ]; then
		systemctl try-restart activated.service || true
	fi
fi
