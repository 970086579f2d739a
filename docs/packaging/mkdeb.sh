#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# docs/packaging/mkdeb.sh STAGE OUT.deb - turn a `make install DESTDIR=STAGE PREFIX=/usr
# UNITDIR=/lib/systemd/system` tree into a Debian binary package with
# dpkg-deb (called by `make deb`; see README.md "Install and run as a service").
#
# What it adds to the staged tree: stripped binaries, gzipped man pages and
# large docs (Debian policy 12.3), copyright, changelog.Debian.gz, md5sums,
# maintainer scripts that only tell systemd about the unit (the service is
# not enabled or started by installing), and a control file whose Depends
# comes from dpkg-shlibdeps (libc6; forkchatd also links libunistring for
# the name profile, core/chat/name.c), plus the ICU that its name helper
# loads with dlopen().
# Environment: VERSION (e.g. 1.0-1), ARCH (e.g. amd64).
set -eu

stage=$1
out=$2
: "${VERSION:?}" "${ARCH:?}"
here=$(cd "$(dirname "$0")" && pwd)
maint="forkchat maintainers <maintainers@users.noreply.b-seed-82561036.example>"
doc=$stage/usr/share/doc/forkchat
bins="$stage/usr/sbin/forkchatd $stage/usr/bin/forkchat $stage/usr/bin/forkchat-load"
# the session image (core/server/sessiond.c): static, so no Depends of its own
session=$stage/usr/lib/forkchat/forkchatd-session

for b in $bins $session; do
	strip --strip-unneeded --remove-section=.comment --remove-section=.note "$b"
done
gzip -9nf "$stage"/usr/share/man/man1/*.1 "$stage"/usr/share/man/man8/*.8
for f in "$doc"/*.md; do
	[ "$(wc -c <"$f")" -le 4096 ] || gzip -9nf "$f"
done
install -m 644 "$here/copyright" "$doc/copyright"
# not meant for the Debian archive: there is no ITP bug to close
mkdir -p "$stage/usr/share/lintian/overrides"
# the session image is a static PIE executable, which lintian takes for a
# shared library without dependencies
printf 'forkchat: initial-upload-closes-no-bugs\nforkchat: shared-library-lacks-prerequisites [usr/lib/forkchat/forkchatd-session]\n' \
	>"$stage/usr/share/lintian/overrides/forkchat"
chmod 644 "$stage/usr/share/lintian/overrides/forkchat"

epoch=${SOURCE_DATE_EPOCH:-$(git -C "$here" log -1 --format=%ct 2>/dev/null || date +%s)}
{
	printf 'forkchat (%s) unstable; urgency=medium\n\n' "$VERSION"
	printf '  * Built with make deb (dpkg-deb); see README.md.\n\n'
	printf ' -- %s  %s\n' "$maint" "$(LC_ALL=C date -u -R -d "@$epoch")"
} | gzip -9n >"$doc/changelog.Debian.gz"
chmod 644 "$doc/changelog.Debian.gz"

# Depends: what dpkg-shlibdeps derives from the ELF NEEDED entries and the
# symbol versions used; without dpkg-dev, the same reasoning by hand.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/debian"
printf 'Source: forkchat\n\nPackage: forkchat\nArchitecture: any\n' >"$tmp/debian/control"
abs=$(cd "$stage" && pwd)
depends=
if command -v dpkg-shlibdeps >/dev/null 2>&1; then
	set --
	for b in $bins; do set -- "$@" "-e$abs${b#"$stage"}"; done
	depends=$(cd "$tmp" && dpkg-shlibdeps -O "$@" 2>/dev/null |
		sed -n 's/^shlibs:Depends=//p')
fi
if [ -z "$depends" ]; then
	need=$(objdump -p $bins | awk '/NEEDED/ { print $2 }' | sort -u)
	glibc=$(objdump -T $bins | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' |
		sort -t. -k1,1n -k2,2n | tail -1)
	depends="libc6 (>= $glibc)"
	for lib in $need; do
		case $lib in
		libc.so.6) continue ;;
		libunistring.so.*) pkg=libunistring${lib#libunistring.so.} ;;
		libicu*.so.*) pkg=libicu${lib##*.so.} ;;
		*) echo "mkdeb: unexpected library: $lib" >&2; exit 1 ;;
		esac
		case ", $depends," in
		*", $pkg,"*) ;;
		*) depends="$depends, $pkg" ;;
		esac
	done
fi
# ICU is loaded with dlopen() by the name helper (core/chat/name.c,
# core/server/names.c), so no NEEDED entry names it: the soname is that of
# the headers forkchatd was built with.
icu=$(sed -n 's/^#define U_ICU_VERSION_MAJOR_NUM \([0-9][0-9]*\).*/\1/p' \
	/usr/include/unicode/uvernum.h 2>/dev/null)
[ -n "$icu" ] || { echo "mkdeb: no ICU headers (libicu-dev)" >&2; exit 1; }
case ", $depends," in
*", libicu$icu"[,\ ]*) ;;
*) depends="$depends, libicu$icu" ;;
esac

mkdir -p "$stage/DEBIAN"
cat >"$stage/DEBIAN/control" <<CONTROL
Package: forkchat
Version: $VERSION
Architecture: $ARCH
Maintainer: $maint
Installed-Size: $(du -sk --exclude=DEBIAN "$stage" | cut -f1)
Depends: $depends
Section: net
Priority: optional
Description: multi-process chat server and client built from fork, pipes, signals
 forkchatd is a chat server for a plain newline-framed UTF-8 line protocol
 (usable with nc): nicknames, rooms with owners, whispers and live
 statistics. It forks one process per client and coordinates them with
 pipes and signals only: no threads and no select, poll or epoll.
 .
 The package contains the server (with a sandboxed systemd unit, not
 enabled by default), the terminal client forkchat, and the load generator
 forkchat-load.
CONTROL

cat >"$stage/DEBIAN/postinst" <<'SCRIPT'
#!/bin/sh
set -e
if [ "$1" = configure ] && [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
	systemctl --system daemon-reload >/dev/null || true
fi
exit 0
SCRIPT
cat >"$stage/DEBIAN/prerm" <<'SCRIPT'
#!/bin/sh
set -e
if [ "$1" = remove ] && [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ] &&
	command -v deb-systemd-invoke >/dev/null; then
	deb-systemd-invoke stop forkchatd.service >/dev/null || true
fi
exit 0
SCRIPT
cat >"$stage/DEBIAN/postrm" <<'SCRIPT'
#!/bin/sh
set -e
if [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
	systemctl --system daemon-reload >/dev/null || true
fi
exit 0
SCRIPT
chmod 755 "$stage/DEBIAN/postinst" "$stage/DEBIAN/prerm" "$stage/DEBIAN/postrm"
chmod 644 "$stage/DEBIAN/control"
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' |
	sort -z | xargs -0 md5sum) >"$stage/DEBIAN/md5sums"
chmod 644 "$stage/DEBIAN/md5sums"

dpkg-deb --root-owner-group -Zxz --build "$stage" "$out" >/dev/null
echo "built $out ($depends)"
