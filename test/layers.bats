#!/usr/bin/env bats
# lib/ is in layers (base, db, virt, flow): a lower layer never includes a
# higher one, and only the SQLite backend speaks SQLite's API.  Both the
# build and scripts/check-layers refuse a breach; each refusal is tried on a
# copy of the tree with one planted.

load helpers

setup() {
	common_setup
	copy=$BATS_TEST_TMPDIR/tree
	mkdir -p "$copy"
	cp -r "$TOP/lib" "$TOP/cmd" "$TOP/scripts" "$TOP/schema" "$TOP/Makefile" "$copy/"
}

@test "the tree keeps its layers" {
	run "$TOP/scripts/check-layers"
	assert_success
	assert_output ""
}

@test "a base file that includes a workflow's header is refused, by the check and by the build" {
	sed -i 's/#include "names.h"/#include "names.h"\n#include "session.h"/' "$copy/lib/base/names.c"
	run "$copy/scripts/check-layers"
	assert_failure 1
	assert_line --partial 'lib/base/names.c:'
	assert_line --partial 'layer base includes "session.h" of the higher layer db'
	run make -C "$copy" --no-print-directory "$O/lib/base/names.o"
	assert_failure
	assert_output --partial 'session.h: No such file or directory'
}

@test "an adapter that includes a workflow's header is refused" {
	printf '#include "start.h"\n' >> "$copy/lib/virt/conns.h"
	run "$copy/scripts/check-layers"
	assert_failure 1
	assert_line --regexp '^lib/virt/conns.h:[0-9]+: layer virt includes "start.h" of the higher layer flow'
}

@test "the SQLite API outside lib/db/sqlite.c is refused" {
	printf 'static int x(void *h) { return sqlite3_changes(h); }\n' >> "$copy/lib/db/host.c"
	printf '#include <sqlite3.h>\n' >> "$copy/cmd/cli.h"
	run "$copy/scripts/check-layers"
	assert_failure 1
	assert_line --partial 'lib/db/host.c:'
	assert_line --partial 'cmd/cli.h:'
	refute_line --regexp '^lib/db/sqlite\.c:'
}

@test "a file straight under lib/ is refused: every file has a layer" {
	: > "$copy/lib/stray.c"
	run "$copy/scripts/check-layers"
	assert_failure 1
	assert_line --partial 'lib/stray.c: lib/ holds only the layer folders'
}
