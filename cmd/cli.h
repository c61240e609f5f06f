/*
 * cli.h - what every vdi-tools program does the same way: common options,
 * settings, opening the VMDB, messages on stderr and exit codes.
 *
 * This is the command side: it prints and exits, libvdi never does.
 * Messages are "PROG: error: ...", "PROG: warning: ..." on stderr; data
 * goes to stdout through the output writer (out.h).
 */
#ifndef VDI_CLI_H
#define VDI_CLI_H

#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "db.h"
#include "err.h"
#include "out.h"

#ifndef VDI_VERSION
#define VDI_VERSION "0.0.0"
#endif

enum {
	VDI_OPT_VERSION = 0x1000,
	VDI_OPT_DB,
	VDI_OPT_FIRST_PRIVATE, /* programs number their own long options from here */
};

/* The options every program takes; add VDI_CLI_DRYRUN where state changes. */
#define VDI_CLI_OPTS \
	{ "help", no_argument, NULL, 'h' }, \
	{ "version", no_argument, NULL, VDI_OPT_VERSION }, \
	{ "db", required_argument, NULL, VDI_OPT_DB }, \
	{ "output", required_argument, NULL, 'o' }, \
	{ "quiet", no_argument, NULL, 'q' }, \
	{ "verbose", no_argument, NULL, 'v' }
#define VDI_CLI_DRYRUN { "dry-run", no_argument, NULL, 'n' }
#define VDI_CLI_SHORT "ho:qv"

/*
 * One line of --help per option, as virsh and gh print them: its form
 * ("-p, --policy POLICY") and what it does.  A program's table ends with
 * { NULL, NULL }; the common options are added after it.
 */
struct vdi_cli_help {
	const char *form, *what;
};

struct vdi_cli {
	const char *prog;
	const char *usage;    /* the SYNOPSIS, a blank line, then notes: printed by --help */
	const struct vdi_cli_help *help; /* the program's options (NULL: none of its own) */
	bool help_dry_run;    /* the program takes -n */
	const char *db_opt;   /* --db */
	enum vdi_fmt fmt;     /* -o */
	bool quiet, verbose, dry_run;
	struct vdi_config cfg;
	struct vdi_db *db;
	struct vdi_out *out;
	uint64_t rng;         /* the process's random source (random2, passwords' order): made once here */
	void *args;           /* a program's own options (its main's struct), for its commands */
	bool settings_loaded; /* vdi_cli_settings ran (it loads them once) */
};

void vdi_cli_init(struct vdi_cli *c, const char *prog, const char *usage);
/* --help's option lines (borrowed: a static table); dry_run: the program takes -n. */
void vdi_cli_set_help(struct vdi_cli *c, const struct vdi_cli_help *help, bool dry_run);
/* Handle one common option: 1 if it was one, 0 if not. Exits for -h, --version, bad -o. */
int vdi_cli_option(struct vdi_cli *c, int opt, const char *arg);
/* "PROG: error: ...", "Try 'PROG --help'." and exit 2. */
void vdi_cli_usage_error(struct vdi_cli *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));
/* Load settings (file, environment), then apply --db, once. Returns 0 or an exit code. */
int vdi_cli_settings(struct vdi_cli *c);
/* Settings, then open the VMDB and the output writer. Returns 0 or an exit code. */
int vdi_cli_open(struct vdi_cli *c);
/* Print err once ("PROG: error: OBJECT: message") and return its exit code. */
int vdi_cli_fail(struct vdi_cli *c, const struct vdi_err *err);
/* The same as a warning (no exit code). */
void vdi_cli_warn_err(struct vdi_cli *c, const struct vdi_err *err);
void vdi_cli_warn(struct vdi_cli *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A message for people on stderr; silent with -q. */
void vdi_cli_info(struct vdi_cli *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Close what open made; returns exit code 1 if stdout could not be written, else code. */
int vdi_cli_finish(struct vdi_cli *c, int code);

/*
 * For a service that runs until it is told to stop (vm-watch, vm-console):
 * SIGTERM and SIGINT set the flag returned (without SA_RESTART, so a wait
 * returns at once), SIGPIPE is ignored.
 */
const volatile sig_atomic_t *vdi_cli_stop_on_signals(void);
/* A daemon's log line for a library's o->log: "PROG: LINE" on stderr unless -q (ctx: the struct vdi_cli). */
void vdi_cli_log(void *ctx, const char *line);

/*
 * Programs with subcommands (vm-hosts add|list|...): common options may
 * come before the command; the command's own options anywhere after it.
 * takes lists the private options the command accepts (0-terminated);
 * each is handed to opt(); changes says whether -n applies.
 */
struct vdi_cli_cmd {
	const char *name;
	int (*run)(struct vdi_cli *c, int argc, char **argv);
	const int *takes;
	bool changes;
};
int vdi_cli_dispatch(struct vdi_cli *c, int argc, char **argv, const struct option *opts,
		     const struct vdi_cli_cmd *cmds, void (*opt)(struct vdi_cli *c, int o, const char *arg));

/* The long name of an option, for messages. */
const char *vdi_cli_opt_name(const struct option *opts, int val);

/* A progress line on a terminal (never in a pipe, never with -q); done < 0 ends it. */
void vdi_cli_progress(struct vdi_cli *c, const char *what, int64_t done, int64_t total, bool bytes);
/* The same with a note after the counts ("ann 12s, bob 9s"), cut to the terminal's width. */
void vdi_cli_progress_note(struct vdi_cli *c, const char *what, int64_t done, int64_t total, bool bytes,
			   const char *note);
/*
 * A line above the progress line, when both stdout and stderr are a
 * terminal: an object finished ("alice: ready").  Nothing in a pipe.
 */
void vdi_cli_progress_line(struct vdi_cli *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * The objects to act on: argv[optind..] if any, else the first field of
 * each line of stdin (blank lines and '#' comments skipped).
 */
int vdi_cli_args(struct vdi_cli *c, int argc, char **argv, char ***list, size_t *n);
void vdi_cli_args_free(char **list, size_t n);

#endif
