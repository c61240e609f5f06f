# setup_suite.bash - bats runs this once around a whole run.  With
# VDI_TEST_DB=postgresql it starts one real PostgreSQL server for the run
# (test/pg-server: a folder of its own, a Unix socket there) and stops it at
# the end, by its pid; each test makes its own database on it (common_setup).

setup_suite() {
	if [ "${VDI_TEST_DB:-sqlite}" = postgresql ]; then
		VDI_TEST_PG=$(mktemp -d /tmp/vdi-pg.XXXXXX)
		export VDI_TEST_PG
		"$BATS_TEST_DIRNAME/pg-server" start "$VDI_TEST_PG" >/dev/null 3>&-
	fi
}

teardown_suite() {
	if [ -n "${VDI_TEST_PG:-}" ]; then
		"$BATS_TEST_DIRNAME/pg-server" stop "$VDI_TEST_PG" 3>&-
	fi
}
