#!/usr/bin/env bash
# Checks a built package: its files, its metadata, its systemd units.
set -euo pipefail
deb=$1
fail() { echo "check-deb: $*" >&2; exit 1; }
command -v systemd-analyze >/dev/null || fail "systemd-analyze missing: apt-get install systemd (make deps)"
contents=$(dpkg-deb -c "$deb")
for f in ./usr/bin/activated ./usr/lib/systemd/system/activated.service ./usr/lib/systemd/system/activated.socket \
	./usr/lib/sysusers.d/activated.conf ./usr/lib/tmpfiles.d/activated.conf \
	./etc/activated/activated.toml ./etc/activated/charter.md ./usr/share/doc/activated/examples/alerts.yml; do
	grep -q " $f\$" <<<"$contents" || fail "$deb lacks $f"
done
grep -q -- '-rwxr-xr-x root/root .* ./usr/bin/activated$' <<<"$contents" || fail "/usr/bin/activated is not 0755 root"
info=$(dpkg-deb -I "$deb")
grep -q '^ Package: activated$' <<<"$info" || fail "not package activated"
conffiles=$(dpkg-deb -I "$deb" conffiles)
for f in /etc/activated/activated.toml /etc/activated/charter.md; do
	grep -qx "$f" <<<"$conffiles" || fail "$f is not a conffile"
done
dpkg-deb -I "$deb" postinst | grep -q systemd-sysusers || fail "postinst does not create the user"
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
dpkg-deb -x "$deb" "$root"
"$root/usr/bin/activated" version | grep -q "^activated " || fail "the packaged binary does not run"
unit=$root/usr/lib/systemd/system/activated.service
grep -qx 'Type=notify' "$unit" || fail "unit is not Type=notify"
# verify loads the units as shipped, with ExecStart on the extracted binary
# (this machine need not have the package installed).
units=$root/units
mkdir "$units"
sed "s|^ExecStart=/usr/bin/activated|ExecStart=$root/usr/bin/activated|" "$unit" >"$units/activated.service"
cp "$root/usr/lib/systemd/system/activated.socket" "$units/"
systemd-analyze verify "$units/activated.service" "$units/activated.socket"
echo "systemd-analyze security --offline=true:"
systemd-analyze security --offline=true "$units/activated.service" | tail -1
echo "check-deb: $deb OK"
