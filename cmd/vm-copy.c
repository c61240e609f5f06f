/*
 * vm-copy - make user VMs from masters: a thin qcow2 overlay per user,
 * sized as the user asked, with the user's environment as a cloud-init
 * seed.  The paper's VMCM.  Also removes user VMs (--rm).
 *
 * A thin main: one vdi_copy() (lib/flow/copy.c) per user or CSV record
 * (lib/base/csv.c); a failure for one user is reported and the others go on;
 * the exit status is the worst one seen.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "cli.h"
#include "copy.h"
#include "csv.h"
#include "names.h"
#include "parse.h"
#include "prepare.h"
#include "request.h"
#include "strv.h"
#include "uservm.h"
#include "warm.h"

static const char usage[] =
	"usage: vm-copy [--db PATH] [-o table|tsv|json] [-q] [-v] [-n]\n"
	"               [--master NAME | --os OS [--app APP]...] [--mem SIZE] [--vcpus N]\n"
	"               [--disk SIZE] [--home SIZE] [--tag TAG]... [--expires DATE | --ttl DURATION]\n"
	"               [--host HOST] [USER...]\n"
	"       vm-copy --csv [options as above] < REQUESTS.csv\n"
	"       vm-copy --rm [--force] [--purge-home] [--host HOST] [-n] [USER...]\n"
	"       vm-copy --update [-n] (--all | USER...)\n"
	"       vm-copy --home-resize SIZE [-n] USER...\n"
	"       vm-copy --requests [--approve | --reject] [--all] [-n] [USER...]\n"
	"       vm-copy --warm [-n] (--all | USER...)\n"
	"       vm-copy -h | --help | --version\n"
	"\n"
	"Users are read one per line from standard input when none are given.  CSV lines\n"
	"are user,os,apps,mem,vcpus,disk,home (apps separated by ';'; empty: the defaults).\n"
	"Exit: 0 ok, 1 failure, 2 usage, 3 no such master or user, 4 no host sees the pool,\n"
	"5 the user has a user VM (or a session), 75 temporary.  See vm-copy(1).\n";

static const struct vdi_cli_help help[] = {
	{ "--master NAME", "the master to clone" },
	{ "--os OS, --app APP", "or the master that has these (--app again)" },
	{ "--mem SIZE, --vcpus N", "its memory and vCPUs (else the master's)" },
	{ "--disk SIZE", "its disk, at least the master's" },
	{ "--home SIZE", "the user's home disk, kept across sessions" },
	{ "--tag TAG", "hosts its sessions need (again for more)" },
	{ "--expires DATE, --ttl DURATION", "when vm-reap --expired may delete it" },
	{ "--host HOST", "the host whose libvirt makes the volumes" },
	{ "--csv", "requests from a CSV on standard input" },
	{ "--rm", "delete user VMs" },
	{ "--force", "with --rm: even while a session runs" },
	{ "--purge-home", "with --rm: delete the home disk too" },
	{ "--update", "remake stale user VMs on their new master" },
	{ "--home-resize SIZE", "grow the users' home disks (no session)" },
	{ "--requests", "the web page's requests, pending" },
	{ "--approve, --reject", "make, or turn down, the requests named" },
	{ "--all", "every pending request; with --warm or --update, every one due" },
	{ "--warm", "build the users' warm images (again)" },
	{ NULL, NULL },
};

enum {
	OPT_MASTER = VDI_OPT_FIRST_PRIVATE,
	OPT_OS,
	OPT_APP,
	OPT_MEM,
	OPT_VCPUS,
	OPT_DISK,
	OPT_TAG,
	OPT_EXPIRES,
	OPT_TTL,
	OPT_HOST,
	OPT_CSV,
	OPT_RM,
	OPT_FORCE,
	OPT_REQUESTS,
	OPT_APPROVE,
	OPT_REJECT,
	OPT_ALL,
	OPT_WARM,
	OPT_HOME,
	OPT_PURGE_HOME,
	OPT_UPDATE,
	OPT_HOME_RESIZE,
};

static const struct option opts[] = {
	VDI_CLI_OPTS,
	VDI_CLI_DRYRUN,
	{ "master", required_argument, NULL, OPT_MASTER },
	{ "os", required_argument, NULL, OPT_OS },
	{ "app", required_argument, NULL, OPT_APP },
	{ "mem", required_argument, NULL, OPT_MEM },
	{ "vcpus", required_argument, NULL, OPT_VCPUS },
	{ "disk", required_argument, NULL, OPT_DISK },
	{ "tag", required_argument, NULL, OPT_TAG },
	{ "expires", required_argument, NULL, OPT_EXPIRES },
	{ "ttl", required_argument, NULL, OPT_TTL },
	{ "host", required_argument, NULL, OPT_HOST },
	{ "csv", no_argument, NULL, OPT_CSV },
	{ "rm", no_argument, NULL, OPT_RM },
	{ "force", no_argument, NULL, OPT_FORCE },
	{ "requests", no_argument, NULL, OPT_REQUESTS },
	{ "approve", no_argument, NULL, OPT_APPROVE },
	{ "reject", no_argument, NULL, OPT_REJECT },
	{ "all", no_argument, NULL, OPT_ALL },
	{ "warm", no_argument, NULL, OPT_WARM },
	{ "home", required_argument, NULL, OPT_HOME },
	{ "purge-home", no_argument, NULL, OPT_PURGE_HOME },
	{ "update", no_argument, NULL, OPT_UPDATE },
	{ "home-resize", required_argument, NULL, OPT_HOME_RESIZE },
	{ NULL, 0, NULL, 0 },
};

static struct {
	struct vdi_copy_req base;  /* --master, --os, --app, sizes */
	struct vdi_copy_opts o;
	char **apps, **tags;       /* borrowed from argv */
	size_t napps, ntags;
	bool csv, rm;
	bool requests, approve, reject, all, warm, update;
	int64_t home_resize;       /* --home-resize SIZE (0: not given) */
} a = { .base = { .mem = -1, .vcpus = -1, .disk = -1 } };

static volatile sig_atomic_t interrupted;

/* User VMs whose first boot comes after the copies (prepare.h), and what their copy made. */
static struct {
	char **users;
	struct vdi_copy_result *res;
	size_t n;
	int code;
	size_t ended;           /* first boots ended so far */
} prep;

/* User VMs made ready by this run: with warm = yes, their warm images are built next (warm.h). */
static struct {
	char **users;
	size_t n, ended;
	int code;
	bool listed;            /* --warm: each result is a row of the output */
} warm;

static void
on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static void
parse_opt(struct vdi_cli *c, int o, const char *arg)
{
	struct vdi_err err = { 0 };
	int64_t ms;

	switch (o) {
	case OPT_MASTER:
	case OPT_OS:
	case OPT_APP:
	case OPT_TAG:
	case OPT_HOST: {
		const char *kind = o == OPT_MASTER ? "master" : o == OPT_OS ? "os" : o == OPT_APP ? "app" :
				   o == OPT_TAG ? "tag" : "host";
		if (vdi_name_check(kind, arg, &err) < 0)
			vdi_cli_usage_error(c, "%s", err.msg);
		if (o == OPT_MASTER)
			a.base.master = arg;
		else if (o == OPT_OS)
			a.base.os = arg;
		else if (o == OPT_APP)
			vdi_strv_push(&a.apps, &a.napps, (char *)arg);
		else if (o == OPT_TAG)
			vdi_strv_push(&a.tags, &a.ntags, (char *)arg);
		else
			a.o.host = arg;
		break;
	}
	case OPT_MEM:
		if (vdi_mem_parse(arg, &a.base.mem, &err) < 0)
			vdi_cli_usage_error(c, "--%s", err.msg);
		break;
	case OPT_VCPUS:
		if (vdi_vcpus_parse(arg, &a.base.vcpus, &err) < 0)
			vdi_cli_usage_error(c, "--%s", err.msg);
		break;
	case OPT_DISK:
		if (vdi_disk_parse(arg, &a.base.disk, &err) < 0)
			vdi_cli_usage_error(c, "--%s", err.msg);
		break;
	case OPT_EXPIRES:
		if (vdi_date_parse(arg, vdi_clock_now(), &a.o.expires, &err) < 0)
			vdi_cli_usage_error(c, "--expires: %s", err.msg);
		break;
	case OPT_TTL:
		if (vdi_duration_parse(arg, &ms, &err) < 0 || ms < 1000)
			vdi_cli_usage_error(c, "--ttl: %s", err.msg[0] ? err.msg : "at least 1s");
		a.o.expires = vdi_clock_now() + ms / 1000;
		break;
	case OPT_CSV:
		a.csv = true;
		break;
	case OPT_RM:
		a.rm = true;
		break;
	case OPT_FORCE:
		a.o.force = true;
		break;
	case OPT_REQUESTS:
		a.requests = true;
		break;
	case OPT_APPROVE:
		a.approve = true;
		break;
	case OPT_REJECT:
		a.reject = true;
		break;
	case OPT_ALL:
		a.all = true;
		break;
	case OPT_WARM:
		a.warm = true;
		break;
	case OPT_HOME:
	case OPT_HOME_RESIZE:
		if (vdi_home_parse(arg, o == OPT_HOME ? &a.base.home : &a.home_resize, &err) < 0)
			vdi_cli_usage_error(c, "--%s%s", o == OPT_HOME ? "" : "home-resize: ", err.msg);
		break;
	case OPT_PURGE_HOME:
		a.o.purge_home = true;
		break;
	case OPT_UPDATE:
		a.update = true;
		break;
	}
}

static void
put(struct vdi_cli *c, const char *user, const struct vdi_copy_result *res)
{
	if (c->quiet)
		return;
	vdi_out_obj_begin(c->out);
	vdi_out_str(c->out, "user", user);
	vdi_out_str(c->out, "master", res->master);
	vdi_out_size(c->out, "disk", res->disk);
	vdi_out_size(c->out, "mem", res->mem);
	vdi_out_int(c->out, "vcpus", res->vcpus);
	if (res->home)
		vdi_out_size(c->out, "home", res->home);
	else
		vdi_out_null(c->out, "home");
	vdi_out_str(c->out, "volume", res->volume);
	vdi_out_str(c->out, "state", "ready");
	vdi_out_strv(c->out, "apps_added", res->apps_added, res->napps_added);
	vdi_out_obj_end(c->out);
}

/* One user's outcome: print it (or keep it for after its first boot); the exit code. */
static int
report(struct vdi_cli *c, const char *user, struct vdi_copy_result *res, const struct vdi_err *err, bool *keep)
{
	*keep = false;
	if (err)
		return vdi_cli_fail(c, err);
	if (a.rm) {
		/* Sentences, not a format chosen from a table: the compiler checks each. */
		const char *would = c->dry_run ? "would remove" : "removed";
		switch (res ? res->home_rm : VDI_COPY_HOME_NONE) {
		case VDI_COPY_HOME_NONE:
			vdi_cli_info(c, "%s the user VM of %s", would, user);
			break;
		case VDI_COPY_HOME_KEPT:
			vdi_cli_info(c, "%s the user VM of %s; its home disk is kept (--purge-home deletes it)", would,
				     user);
			break;
		case VDI_COPY_HOME_PURGED:
			vdi_cli_info(c, "%s the user VM of %s and its home disk", would, user);
			break;
		case VDI_COPY_HOME_PURGED_ONLY:
			vdi_cli_info(c, "%s the home disk %s kept (there is no user VM)", would, user);
			break;
		}
		return 0;
	}
	if (res && res->updated_from)
		vdi_cli_info(c, "%s: remade on master %s (was %s)%s", user, res->master, res->updated_from,
			     res->prepare ? "; its first boot comes next" : "");
	if (res && res->home_kept && !res->updated_from && !res->again)
		vdi_cli_info(c, "%s: its kept home disk (%lld MiB) is attached again", user,
			     (long long)(res->home >> 20));
	if (c->dry_run)
		vdi_cli_info(c, "would copy master %s for %s as %s", res->master, user, res->volume);
	if (res->prepare) {
		/* Printed when its first boot has ended. */
		vdi_strv_push_copy(&prep.users, &prep.n, user);
		prep.res = vdi_grow(prep.res, prep.n - 1, sizeof(*prep.res));
		prep.res[prep.n - 1] = *res;
		*keep = true;
		return 0;
	}
	if (!c->dry_run) {
		put(c, user, res);
		/* A user with a home disk is never made warm (warm.h): no build to fail. */
		if (!res->home)
			vdi_strv_push_copy(&warm.users, &warm.n, user);
	}
	return 0;
}

struct batch_out {
	struct vdi_cli *c;
	const struct vdi_copy_req *reqs;
	size_t n, done;
	int code;
};

/* --update: the users whose user VM was warm before its update (made warm again after it). */
static struct {
	char **users;
	size_t n;
} was_warm;

/* Each user of a batch, in input order, as soon as it and those before it are done. */
static void
batch_done(void *ctx, size_t i, struct vdi_copy_result *res, const struct vdi_err *err, bool *keep)
{
	struct batch_out *b = ctx;

	if (!err && res && res->was_warm)
		vdi_strv_push_copy(&was_warm.users, &was_warm.n, b->reqs[i].user);
	b->code = vdi_code_worst(b->code, report(b->c, b->reqs[i].user, res, err, keep));
	if (!err)
		vdi_cli_progress_line(b->c, "%s: %s", b->reqs[i].user, a.rm ? "removed" : res && res->prepare ?
				      "copied, its first boot comes next" : "ready");
	vdi_cli_progress(b->c, a.rm ? "removing" : a.update ? "updating" : "copying", (int64_t)++b->done,
			 (int64_t)b->n, false);
}

/* Users of the arguments, standard input or --csv: copy_parallel at once, each printed in input order. */
static int
run_batch(struct vdi_cli *c, const struct vdi_copy_req *reqs, size_t n)
{
	struct batch_out out = { .c = c, .reqs = reqs, .n = n };
	struct vdi_copy_batch b = { .db = c->db, .timeout_ms = c->cfg.poll_timeout,
				    .parallel = (int)(a.update ? c->cfg.update_parallel : c->cfg.copy_parallel),
				    .rm = a.rm, .update = a.update, .done = batch_done, .ctx = &out };

	vdi_copy_many(reqs, n, &a.o, &b);
	return out.code;
}

/* Each first boot as it ends. */
static void
prepared(void *ctx, size_t i, const struct vdi_err *e)
{
	struct vdi_cli *c = ctx;

	if (e) {
		prep.code = vdi_code_worst(prep.code, vdi_cli_fail(c, e));
	} else {
		put(c, prep.users[i], &prep.res[i]);
		vdi_cli_progress_line(c, "%s: ready", prep.users[i]);
		if (!prep.res[i].home)
			vdi_strv_push_copy(&warm.users, &warm.n, prep.users[i]);
	}
	vdi_cli_progress(c, "preparing", (int64_t)++prep.ended, (int64_t)prep.n, false);
}

/* Between ends: who boots, and for how long, so a long first boot is not a blank terminal. */
static void
prepare_waiting(void *ctx, size_t ended, size_t n, const char *who)
{
	char note[300];

	snprintf(note, sizeof(note), "first boot: %s", who);
	vdi_cli_progress_note(ctx, "preparing", (int64_t)ended, (int64_t)n, false, note);
}

/* The first boots of the user VMs that prepare themselves, all at once as far as the hosts take them. */
static int
run_prepare(struct vdi_cli *c)
{
	struct vdi_prepare_opts po = { 0 };

	if (!prep.n)
		return 0;
	vdi_start_opts_config(&po.start, &c->cfg);
	po.start.assign.rng = &c->rng;
	po.start.conns = a.o.conns;
	po.timeout = c->cfg.prepare_timeout / 1000;
	po.poll_ms = 500;
	po.interrupted = &interrupted;
	po.done = prepared;
	po.waiting = prepare_waiting;
	po.ctx = c;
	vdi_prepare_run(c->db, prep.users, prep.n, &po);
	for (size_t i = 0; i < prep.n; i++)
		vdi_copy_result_clear(&prep.res[i]);
	vdi_strv_free(prep.users, prep.n);
	free(prep.res);
	return prep.code;
}

/* Each warm build as it ends: a row with --warm, else a line beside the copy's row. */
static void
warmed(void *ctx, size_t i, const struct vdi_err *e, int64_t size, int64_t ms)
{
	struct vdi_cli *c = ctx;

	if (e && warm.listed) {
		warm.code = vdi_code_worst(warm.code, vdi_cli_fail(c, e));
	} else if (e) {
		/* The user VM is made and works: it boots until a warm build succeeds (vm-copy --warm). */
		vdi_cli_warn_err(c, e);
	} else if (warm.listed) {
		vdi_out_obj_begin(c->out);
		vdi_out_str(c->out, "user", warm.users[i]);
		vdi_out_str(c->out, "state", "warm");
		vdi_out_size(c->out, "image", size);
		vdi_out_int(c->out, "ms", ms);
		vdi_out_obj_end(c->out);
	} else {
		vdi_cli_info(c, "%s: warm (an image of %lld MiB, built in %.1f s)", warm.users[i],
			     (long long)(size >> 20), (double)ms / 1000);
	}
	vdi_cli_progress(c, "warming", (int64_t)++warm.ended, (int64_t)warm.n, false);
}

/* The warm builds of warm.users, all at once as far as the hosts take them. */
static int
run_warm(struct vdi_cli *c)
{
	struct vdi_warm_opts wo = { 0 };

	if (!warm.n || c->dry_run)
		return 0;
	vdi_warm_opts_config(&wo, &c->cfg);
	wo.start.assign.rng = &c->rng;
	wo.start.conns = a.o.conns;
	wo.poll_ms = 250;
	wo.interrupted = &interrupted;
	wo.done = warmed;
	wo.ctx = c;
	vdi_warm_run(c->db, warm.users, warm.n, &wo);
	return warm.code;
}

/* --warm: the named users, or with --all every user VM due a warm build; -n names them only. */
static int
plan_warm(struct vdi_cli *c, char **users, size_t n)
{
	struct vdi_err err = { 0 };

	warm.listed = true;
	if (a.all) {
		if (vdi_warm_due(c->db, c->cfg.warm_retry / 1000, &warm.users, &warm.n, &err) < 0)
			return vdi_cli_fail(c, &err);
	} else {
		for (size_t i = 0; i < n; i++)
			vdi_strv_push_copy(&warm.users, &warm.n, users[i]);
	}
	for (size_t i = 0; c->dry_run && i < warm.n; i++)
		vdi_cli_info(c, "would build the warm image of %s", warm.users[i]);
	return 0;
}

/*
 * --update: the named users, or with --all every user VM due its update
 * (stale with no session, or left half way); -n shows the plan, and
 * those that wait for their session to end.  *users gets who to update.
 */
static int
plan_update(struct vdi_cli *c, char ***users, size_t *n)
{
	struct vdi_uservm *us = NULL;
	struct vdi_err err = { 0 };
	size_t nus = 0, busy = 0;

	if (!a.all) {
		int code = 0;
		for (size_t i = 0; c->dry_run && i < *n; i++) {
			struct vdi_uservm u;
			if (vdi_uservm_get(c->db, (*users)[i], &u, &err) < 0) {
				code = vdi_code_worst(code, vdi_cli_fail(c, &err));
				vdi_err_reset(&err);
				continue;
			}
			if (u.updating_from || u.update_to)
				vdi_cli_info(c, "would update %s from master %s to %s%s", u.user,
					     u.updating_from ? u.updating_from : u.master, u.update_to ? u.update_to : u.master,
					     u.session_id ? " when its session ends" : "");
			else
				vdi_cli_info(c, "%s: its master %s is up to date", u.user, u.master);
			vdi_uservm_clear(&u);
		}
		return code;
	}
	if (vdi_uservm_update_due(c->db, &us, &nus, &busy, &err) < 0)
		return vdi_cli_fail(c, &err);
	for (size_t i = 0; i < nus; i++) {
		if (c->dry_run)
			vdi_cli_info(c, "would update %s from master %s to %s", us[i].user,
				     us[i].updating_from ? us[i].updating_from : us[i].master,
				     us[i].update_to ? us[i].update_to : us[i].master);
		vdi_strv_push_copy(users, n, us[i].user);
	}
	if (busy)
		vdi_cli_info(c, "%zu user VM%s in a session: updated when %s", busy, busy == 1 ? "" : "s",
			     busy == 1 ? "it ends" : "they end");
	vdi_uservms_free(us, nus);
	return 0;
}

/* --home-resize SIZE: each user's home disk grows to SIZE (no session; never shrinks). */
static int
run_home_resize(struct vdi_cli *c, char **users, size_t n)
{
	int code = 0;

	for (size_t i = 0; i < n; i++) {
		struct vdi_err err = { 0 };
		if (vdi_copy_home_resize(c->db, users[i], a.home_resize, &a.o, &err) < 0) {
			code = vdi_code_worst(code, vdi_cli_fail(c, &err));
			continue;
		}
		vdi_cli_info(c, "%s the home disk of %s to %lld MiB%s", c->dry_run ? "would grow" : "grew", users[i],
			     (long long)(a.home_resize >> 20), c->dry_run ? "" : "; the guest grows its file system "
			     "at its next boot");
	}
	return code;
}

/*
 * --requests: the desktops users asked for on the web page (vm-connect).
 * Alone it lists the pending ones; --approve makes each user's VM as
 * asked (then the request is done, or failed with why; a temporary
 * failure leaves it pending), --reject turns it down.
 */
static int
run_requests(struct vdi_cli *c, char **users, size_t n)
{
	struct vdi_request *r = NULL;
	struct vdi_err err = { 0 };
	size_t nr = 0;
	int code = 0, done = 0;

	if (vdi_request_list(c->db, "pending", NULL, &r, &nr, &err) < 0)
		return vdi_cli_fail(c, &err);
	for (size_t k = 0; k < n; k++) {
		size_t i;
		for (i = 0; i < nr && strcmp(r[i].user, users[k]) != 0; i++)
			;
		if (i == nr) {
			vdi_err_set(&err, VDI_R_NOTFOUND, "no pending request");
			vdi_err_object(&err, "%s", users[k]);
			code = vdi_code_worst(code, vdi_cli_fail(c, &err));
			vdi_err_reset(&err);
		}
	}
	for (size_t i = 0; i < nr; i++) {
		struct vdi_copy_result res;
		bool keep;
		int rc;
		if (!a.all && !vdi_strv_has(users, n, r[i].user))
			continue;
		if (!a.approve && !a.reject) {
			vdi_out_obj_begin(c->out);
			vdi_out_str(c->out, "user", r[i].user);
			vdi_out_str(c->out, "master", r[i].master);
			vdi_out_size(c->out, "mem", r[i].mem);
			vdi_out_int(c->out, "vcpus", r[i].vcpus);
			vdi_out_size(c->out, "disk", r[i].disk);
			if (r[i].home)
				vdi_out_size(c->out, "home", r[i].home);
			else
				vdi_out_null(c->out, "home");
			vdi_out_time(c->out, "requested", r[i].created);
			vdi_out_obj_end(c->out);
			continue;
		}
		if (a.reject) {
			if (!c->dry_run && vdi_request_finish(c->db, r[i].id, "rejected", NULL, &err) < 0) {
				vdi_err_object(&err, "%s", r[i].user);
				code = vdi_code_worst(code, vdi_cli_fail(c, &err));
				vdi_err_reset(&err);
			} else {
				vdi_cli_info(c, "%s the request of %s", c->dry_run ? "would reject" : "rejected", r[i].user);
			}
			continue;
		}
		if (interrupted) {
			vdi_err_set(&err, VDI_R_FAIL, "interrupted");
			code = vdi_code_worst(code, vdi_cli_fail(c, &err));
			break;
		}
		vdi_err_reset(&err);
		rc = vdi_copy_request(c->db, &r[i], &a.o, &res, &err);
		vdi_cli_progress(c, "copying", ++done, 0, false);
		code = vdi_code_worst(code, report(c, r[i].user, rc < 0 ? NULL : &res, rc < 0 ? &err : NULL, &keep));
		if (rc == 0 && !keep)
			vdi_copy_result_clear(&res);
	}
	vdi_requests_free(r, nr);
	return code;
}

/* CSV on stdin: each record's fields override the options; the records are made as one batch. */
static int
run_csv(struct vdi_cli *c)
{
	struct vdi_csv *r = vdi_csv_open(stdin);
	struct vdi_csv_request cq;
	struct vdi_copy_req *reqs = NULL;
	char ***apps = NULL;
	struct vdi_err err = { 0 };
	size_t n = 0;
	int rc, code = 0;

	while ((rc = vdi_csv_next(r, &cq, &err)) != 0) {
		struct vdi_copy_req q = a.base;
		if (rc < 0) {
			code = vdi_code_worst(code, vdi_cli_fail(c, &err));
			vdi_err_reset(&err);
			continue;
		}
		q.user = vdi_xstrdup(cq.user);
		if (cq.os) {
			q.os = vdi_xstrdup(cq.os);
			q.master = NULL;
		}
		if (cq.mem > 0)
			q.mem = cq.mem;
		if (cq.vcpus > 0)
			q.vcpus = cq.vcpus;
		if (cq.disk > 0)
			q.disk = cq.disk;
		if (cq.home > 0)
			q.home = cq.home;
		if (!q.os && !q.master) {
			vdi_err_set(&err, VDI_R_USAGE, "line %d: no os given and no --master", cq.line);
			code = vdi_code_worst(code, vdi_cli_fail(c, &err));
			vdi_err_reset(&err);
			free((char *)q.user);
			free(cq.apps);
			continue;
		}
		reqs = vdi_grow(reqs, n, sizeof(*reqs));
		apps = vdi_grow(apps, n, sizeof(*apps));
		apps[n] = NULL;
		if (cq.napps) {
			size_t k = 0;
			for (size_t j = 0; j < cq.napps; j++)
				vdi_strv_push_copy(&apps[n], &k, cq.apps[j]);
			q.apps = apps[n];
			q.napps = cq.napps;
		}
		reqs[n++] = q;
		free(cq.apps);
	}
	vdi_csv_close(r);
	code = vdi_code_worst(code, run_batch(c, reqs, n));
	for (size_t i = 0; i < n; i++) {
		free((char *)reqs[i].user);
		if (reqs[i].os != a.base.os)
			free((char *)reqs[i].os);
		vdi_strv_free(apps[i], apps[i] ? reqs[i].napps : 0);
	}
	free(reqs);
	free(apps);
	return code;
}

int
main(int argc, char **argv)
{
	struct vdi_cli c;
	char **users = NULL;
	size_t n = 0;
	int o, rc, code = 0;

	vdi_cli_init(&c, "vm-copy", usage);
	vdi_cli_set_help(&c, help, true);
	while ((o = getopt_long(argc, argv, VDI_CLI_SHORT "n", opts, NULL)) != -1)
		if (!vdi_cli_option(&c, o, optarg))
			parse_opt(&c, o, optarg);
	if (a.base.master && a.base.os)
		vdi_cli_usage_error(&c, "--master and --os exclude each other");
	if (a.napps && !a.base.os && !a.base.master && !a.csv)
		vdi_cli_usage_error(&c, "--app needs --os (or --master)");
	if (a.rm && (a.csv || a.base.master || a.base.os || a.napps || a.base.mem > 0 || a.base.vcpus > 0 ||
		     a.base.disk > 0 || a.ntags))
		vdi_cli_usage_error(&c, "--rm takes only users (and --force, --host, -n)");
	if (a.requests && (a.rm || a.csv || a.base.master || a.base.os || a.napps || a.base.mem > 0 ||
			   a.base.vcpus > 0 || a.base.disk > 0))
		vdi_cli_usage_error(&c, "--requests takes only users (and --approve, --reject, --all, -n)");
	if (a.warm && (a.rm || a.csv || a.requests || a.base.master || a.base.os || a.napps || a.base.mem > 0 ||
		       a.base.vcpus > 0 || a.base.disk > 0 || a.ntags))
		vdi_cli_usage_error(&c, "--warm takes only users, or --all (and -n)");
	if (a.warm && a.all == (optind < argc))
		vdi_cli_usage_error(&c, "--warm: name the users, or give --all");
	if ((a.approve || a.reject || a.all) && !a.requests && !a.warm && !a.update)
		vdi_cli_usage_error(&c, "--approve, --reject and --all go with --requests (--all also with --warm "
				    "and --update)");
	if ((a.approve || a.reject) && !a.requests)
		vdi_cli_usage_error(&c, "--approve and --reject go with --requests");
	if (a.approve && a.reject)
		vdi_cli_usage_error(&c, "--approve and --reject exclude each other");
	if (a.all && optind < argc)
		vdi_cli_usage_error(&c, "--all or users, not both");
	if ((a.approve || a.reject) && !a.all && optind >= argc)
		vdi_cli_usage_error(&c, "name the users whose requests to %s, or give --all",
				    a.approve ? "approve" : "reject");
	if (a.o.force && !a.rm)
		vdi_cli_usage_error(&c, "--force goes with --rm");
	if (a.o.purge_home && !a.rm)
		vdi_cli_usage_error(&c, "--purge-home goes with --rm");
	if ((a.update || a.home_resize) && (a.rm || a.csv || a.requests || a.warm || a.base.master || a.base.os ||
					    a.napps || a.base.mem > 0 || a.base.vcpus > 0 || a.base.disk > 0 ||
					    a.base.home > 0 || a.ntags))
		vdi_cli_usage_error(&c, "%s takes only users%s (and -n)", a.update ? "--update" : "--home-resize",
				    a.update ? ", or --all" : "");
	if (a.update && a.home_resize)
		vdi_cli_usage_error(&c, "--update and --home-resize exclude each other");
	if (a.update && a.all == (optind < argc))
		vdi_cli_usage_error(&c, "--update: name the users, or give --all");
	if (a.home_resize && optind >= argc)
		vdi_cli_usage_error(&c, "--home-resize: name the users");
	if (!a.rm && !a.csv && !a.requests && !a.warm && !a.update && !a.home_resize && !a.base.master && !a.base.os)
		vdi_cli_usage_error(&c, "give --master NAME, or --os OS (and --app), or --csv");
	if (a.csv && optind < argc)
		vdi_cli_usage_error(&c, "--csv reads requests from standard input, not arguments");
	if (a.requests) {
		for (int i = optind; i < argc; i++)
			if (vdi_name_check("user", argv[i], VDI_ERR_SCRATCH) < 0)
				vdi_cli_usage_error(&c, "bad user name '%s'", argv[i]);
		for (int i = optind; i < argc; i++)
			vdi_strv_push_copy(&users, &n, argv[i]);
		a.all |= !a.approve && !a.reject && n == 0;
	} else if (a.warm || a.update || a.home_resize) {
		for (int i = optind; i < argc; i++)
			if (vdi_name_check("user", argv[i], VDI_ERR_SCRATCH) < 0)
				vdi_cli_usage_error(&c, "bad user name '%s'", argv[i]);
		for (int i = optind; i < argc; i++)
			vdi_strv_push_copy(&users, &n, argv[i]);
	} else if (!a.csv) {
		vdi_cli_args(&c, argc, argv, &users, &n);
		if (n == 0)
			vdi_cli_usage_error(&c, "no users given (as arguments or on standard input)");
	}
	if ((rc = vdi_cli_open(&c)) != 0) {
		code = rc;
		goto out;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	a.base.apps = a.apps;
	a.base.napps = a.napps;
	a.o.tags = a.tags;
	a.o.ntags = a.ntags;
	a.o.conns = vdi_conns_new(c.cfg.poll_timeout);
	a.o.interrupted = &interrupted;
	a.o.home_max = c.cfg.home_max;
	a.o.home_mount = c.cfg.home_mount;
	if (!a.rm && !a.home_resize)
		vdi_out_list_begin(c.out);
	if (a.home_resize) {
		code = run_home_resize(&c, users, n);
	} else if (a.update) {
		code = plan_update(&c, &users, &n);
		if (!c.dry_run && n > 0) {
			struct vdi_copy_req *reqs = vdi_xcalloc(n + 1, sizeof(*reqs));
			for (size_t i = 0; i < n; i++)
				reqs[i].user = users[i];
			code = vdi_code_worst(code, run_batch(&c, reqs, n));
			free(reqs);
		}
	} else if (a.warm) {
		code = plan_warm(&c, users, n);
	} else if (a.requests) {
		code = run_requests(&c, users, n);
	} else if (a.csv) {
		code = run_csv(&c);
	} else {
		struct vdi_copy_req *reqs = vdi_xcalloc(n + 1, sizeof(*reqs));
		for (size_t i = 0; i < n; i++) {
			reqs[i] = a.base;
			reqs[i].user = users[i];
		}
		code = run_batch(&c, reqs, n);
		free(reqs);
	}
	vdi_cli_progress(&c, NULL, -1, 0, false);
	code = vdi_code_worst(code, run_prepare(&c));
	vdi_cli_progress(&c, NULL, -1, 0, false);
	/* An update makes warm again the user VMs that were (all of them when vdi.conf says warm = yes). */
	if (a.update && !c.cfg.warm) {
		size_t k = 0;
		for (size_t i = 0; i < warm.n; i++) {
			if (vdi_strv_has(was_warm.users, was_warm.n, warm.users[i]))
				warm.users[k++] = warm.users[i];
			else
				free(warm.users[i]);
		}
		warm.n = k;
	}
	vdi_strv_free(was_warm.users, was_warm.n);
	/* Built by --warm, or after the copies when vdi.conf says warm = yes. */
	if (a.warm || c.cfg.warm || a.update)
		code = vdi_code_worst(code, run_warm(&c));
	vdi_cli_progress(&c, NULL, -1, 0, false);
	vdi_strv_free(warm.users, warm.n);
	if (!a.rm && !a.home_resize)
		vdi_out_list_end(c.out);
	vdi_conns_free(a.o.conns);
out:
	vdi_strv_free(users, n);
	free(a.apps);
	free(a.tags);
	return vdi_cli_finish(&c, code);
}
