#!/bin/sh
# Stops the service on removal (not on upgrade); data and config stay.
set -e
if [ "$1" = "remove" ] && [ -d /run/systemd/system ]; then
	systemctl disable --now activated.service activated.socket || true
fi
