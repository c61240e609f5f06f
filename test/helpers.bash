# helpers.bash - shared set-up for the bats suites.
#
# Every test gets its own VMDB ($VDI_DB under the test's temp folder) and an
# empty config file, so the machine's /etc/vdi/vdi.conf never leaks in.
# Suites that need hosts start a lab once per file (lab_start in
# setup_file, lab_stop in teardown_file): real libvirtd daemons with the
# QEMU driver, see scripts/vdi-lab.  Daemons are started with fd 3 closed,
# or bats would wait for them.

TOP=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
O=${O:-build}
export PATH="$TOP/$O/bin:$TOP/scripts:$PATH"

load /usr/lib/bats/bats-support/load.bash
load /usr/lib/bats/bats-assert/load.bash

common_setup() {
	export VDI_DB="$BATS_TEST_TMPDIR/vdi.db"
	export VDI_CONFIG="$BATS_TEST_TMPDIR/vdi.conf"
	: >"$VDI_CONFIG"
}

# lab_start N: N lab hosts; sets LAB and writes $LAB/hosts (NAME<TAB>URI).
lab_start() {
	LAB=$(mktemp -d /tmp/vdi-lab.XXXXXX)
	export LAB
	vdi-lab start -n "${1:-3}" "$LAB" >"$LAB/hosts.tsv" 2>"$LAB/start.err" 3>&- || {
		cat "$LAB/start.err" >&3
		return 1
	}
}

lab_stop() {
	[ -n "${LAB:-}" ] || return 0
	vdi-lab stop "$LAB" >/dev/null 2>&1 3>&- || true
	rm -rf "$LAB"
}

# lab_uri hN: the URI of a lab host.
lab_uri() {
	awk -F'\t' -v h="$1" '$1 == h { print $2 }' "$LAB/hosts.tsv"
}

# add_lab_hosts [OPTIONS...]: register every lab host in the VMDB.
add_lab_hosts() {
	local n u
	while IFS=$'\t' read -r n u; do
		vm-hosts -q add "$n" "$u" "$@" || return 1
	done <"$LAB/hosts.tsv"
}

# sql QUERY: run a query on the test's VMDB.
sql() {
	sqlite3 -batch -noheader "$VDI_DB" "$1"
}

# hung_socket PATH: a unix socket that accepts connections and never answers.
# Its pid goes to PATH.pid; stop it with stop_pidfile PATH.pid.
hung_socket() {
	python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(64)
conns = []
end = time.time() + 300
while time.time() < end:
    s.settimeout(1)
    try:
        conns.append(s.accept()[0])
    except OSError:
        pass
' "$1" </dev/null >/dev/null 2>&1 3>&- &
	echo $! >"$1.pid"
	local i
	for ((i = 0; i < 50; i++)); do
		[ -S "$1" ] && return 0
		sleep 0.1
	done
	return 1
}

stop_pidfile() {
	[ -s "$1" ] || return 0
	kill "$(cat "$1")" 2>/dev/null || true
	rm -f "$1"
}

# file_sum PATH: a checksum, to show a file was not touched.
file_sum() {
	sha256sum "$1" | cut -d' ' -f1
}

# httpd_start DIR NAME [--tls CERT KEY]: a real HTTP(S) server on 127.0.0.1
# serving DIR (test/httpd.py); sets NAME_PORT; pid in DIR/NAME.pid.
httpd_start() {
	local dir=$1 name=$2 i
	shift 2
	rm -f "$dir/$name.port"
	python3 "$TOP/test/httpd.py" "$dir" "$dir/$name.port" "$@" </dev/null >"$dir/$name.log" 2>&1 3>&- &
	echo $! >"$dir/$name.pid"
	for ((i = 0; i < 100; i++)); do
		[ -s "$dir/$name.port" ] && break
		sleep 0.05
	done
	[ -s "$dir/$name.port" ] || return 1
	printf -v "${name^^}_PORT" '%s' "$(cat "$dir/$name.port")"
	export "${name^^}_PORT"
}

# vol_exists NAME: is there a volume NAME in the lab's shared pool folder?
vol_exists() {
	[ -e "$LAB/pool/$1" ]
}
