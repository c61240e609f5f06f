/*
 * vm-hosts - the host inventory: add, change, list, show, drain, remove
 * and poll libvirt hosts (the paper's VSCS status, agentless).
 *
 * A thin main: parse and check the command line, call libvdi (host.h for
 * the VMDB, poll.h to ask hosts, reaper.h to remove one), print, and map
 * the error to an exit code.  -n runs the same calls, rolled back.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "host.h"
#include "migrate.h"
#include "names.h"
#include "parse.h"
#include "poll.h"
#include "reaper.h"
#include "sched.h"
#include "strv.h"

static const char usage[] =
	"usage: vm-hosts [--db PATH] [-o table|tsv|json] [-q] [-v] COMMAND [ARGS]\n"
	"       vm-hosts add NAME URI [--pool POOL] [--max-sessions N] [--cpu-ratio R]\n"
	"                [--ram-ratio R] [--reserve-mem SIZE] [--tag TAG]...\n"
	"                [--display-address ADDR] [--network NET | --bridge BR]\n"
	"                [--migration-uri URI] [--no-check] [-n]\n"
	"       vm-hosts set NAME [--pool POOL] [--max-sessions N|none] [--cpu-ratio R]\n"
	"                [--ram-ratio R] [--reserve-mem SIZE] [--tag TAG]... [--no-tags]\n"
	"                [--display-address ADDR] [--network NET | --bridge BR]\n"
	"                [--migration-uri URI] [-n]\n"
	"       vm-hosts list\n"
	"       vm-hosts show NAME\n"
	"       vm-hosts drain [--migrate] [-n] [NAME...]\n"
	"       vm-hosts maintenance [--migrate | --force] [-n] [NAME...]\n"
	"       vm-hosts undrain [-n] [NAME...]\n"
	"       vm-hosts rm [--force] [-n] NAME\n"
	"       vm-hosts fence [-n] NAME\n"
	"       vm-hosts poll [-n] [NAME...]\n"
	"       vm-hosts -h | --help | --version\n"
	"\n"
	"Common options: --db PATH (the VMDB), -o FORMAT (table on a terminal, else tsv),\n"
	"-q quiet, -v verbose, -n dry run.  Exit: 0 ok, 1 failure, 2 usage, 3 not found,\n"
	"5 conflict, 75 a host did not answer (try again).  See vm-hosts(1).\n";

static const struct vdi_cli_help help[] = {
	{ "--pool POOL", "the storage pool the host sees (vdi)" },
	{ "--max-sessions N|none", "at most N sessions on the host" },
	{ "--cpu-ratio R, --ram-ratio R", "vCPUs and memory it may give, per real one" },
	{ "--reserve-mem SIZE", "memory kept for the host itself" },
	{ "--tag TAG, --no-tags", "a tag sessions may need (again); none" },
	{ "--display-address ADDR", "where viewers reach its displays" },
	{ "--network NET, --bridge BR", "its sessions' NIC (else its network default)" },
	{ "--migration-uri URI", "where its libvirtd takes migrations" },
	{ "--no-check", "add without connecting to the host" },
	{ "--migrate", "drain, maintenance: move its desktops away live" },
	{ "--force", "maintenance: with sessions; rm: end them first" },
	{ NULL, NULL },
};

enum {
	OPT_POOL = VDI_OPT_FIRST_PRIVATE,
	OPT_MAX_SESSIONS,
	OPT_CPU_RATIO,
	OPT_RAM_RATIO,
	OPT_RESERVE_MEM,
	OPT_TAG,
	OPT_NO_TAGS,
	OPT_DISPLAY,
	OPT_NETWORK,
	OPT_BRIDGE,
	OPT_NO_CHECK,
	OPT_FORCE,
	OPT_MIGRATION_URI,
	OPT_MIGRATE,
};

static const struct option opts[] = {
	VDI_CLI_OPTS,
	VDI_CLI_DRYRUN,
	{ "pool", required_argument, NULL, OPT_POOL },
	{ "max-sessions", required_argument, NULL, OPT_MAX_SESSIONS },
	{ "cpu-ratio", required_argument, NULL, OPT_CPU_RATIO },
	{ "ram-ratio", required_argument, NULL, OPT_RAM_RATIO },
	{ "reserve-mem", required_argument, NULL, OPT_RESERVE_MEM },
	{ "tag", required_argument, NULL, OPT_TAG },
	{ "no-tags", no_argument, NULL, OPT_NO_TAGS },
	{ "display-address", required_argument, NULL, OPT_DISPLAY },
	{ "network", required_argument, NULL, OPT_NETWORK },
	{ "bridge", required_argument, NULL, OPT_BRIDGE },
	{ "no-check", no_argument, NULL, OPT_NO_CHECK },
	{ "force", no_argument, NULL, OPT_FORCE },
	{ "migration-uri", required_argument, NULL, OPT_MIGRATION_URI },
	{ "migrate", no_argument, NULL, OPT_MIGRATE },
	{ NULL, 0, NULL, 0 },
};

struct moves {
	struct vdi_cli *c;
	int code;
	size_t ended; /* moves done, for the progress line */
};

/* The commands' own options, borrowed from argv; main owns them (c->args). */
struct args {
	struct vdi_host_spec spec;
	bool no_check, force, migrate;
	char **tags;
	size_t ntags;
};

static void
parse_spec_opt(struct vdi_cli *c, int opt, const char *arg)
{
	struct args *a = c->args;
	struct vdi_err err = { 0 };
	int64_t n;
	uint64_t sz;

	switch (opt) {
	case OPT_POOL:
		if (vdi_name_check("pool", arg, &err) < 0)
			vdi_cli_usage_error(c, "%s", err.msg);
		a->spec.pool = arg;
		break;
	case OPT_MAX_SESSIONS:
		a->spec.has_max_sessions = true;
		if (strcmp(arg, "none") == 0) {
			a->spec.max_sessions = -1;
			break;
		}
		if (vdi_int_parse(arg, 0, 100000, &n, &err) < 0)
			vdi_cli_usage_error(c, "--max-sessions: %s", err.msg);
		a->spec.max_sessions = n;
		break;
	case OPT_CPU_RATIO:
		if (vdi_real_parse(arg, 0.01, 64, &a->spec.cpu_ratio, &err) < 0 || a->spec.cpu_ratio <= 0)
			vdi_cli_usage_error(c, "--cpu-ratio: %s", err.msg[0] ? err.msg : "must be above 0");
		a->spec.has_cpu_ratio = true;
		break;
	case OPT_RAM_RATIO:
		if (vdi_real_parse(arg, 0.01, 4, &a->spec.ram_ratio, &err) < 0)
			vdi_cli_usage_error(c, "--ram-ratio: %s", err.msg);
		a->spec.has_ram_ratio = true;
		break;
	case OPT_RESERVE_MEM:
		if (vdi_size_parse(arg, &sz, &err) < 0)
			vdi_cli_usage_error(c, "--reserve-mem: %s", err.msg);
		if (sz > (1ULL << 50))
			vdi_cli_usage_error(c, "--reserve-mem: '%s' is more memory than any host has", arg);
		a->spec.reserve_mem = (int64_t)sz;
		a->spec.has_reserve_mem = true;
		break;
	case OPT_TAG:
		if (vdi_name_check("tag", arg, &err) < 0)
			vdi_cli_usage_error(c, "%s", err.msg);
		vdi_strv_push(&a->tags, &a->ntags, (char *)arg);
		a->spec.has_tags = true;
		break;
	case OPT_NO_TAGS:
		a->spec.has_tags = true;
		break;
	case OPT_NETWORK:
	case OPT_BRIDGE:
		if (a->spec.has_network)
			vdi_cli_usage_error(c, "give one of --network and --bridge");
		if (*arg && (opt == OPT_NETWORK ? vdi_name_check("network", arg, &err) : vdi_bridge_check(arg, &err)) < 0)
			vdi_cli_usage_error(c, "--%s: %s", opt == OPT_NETWORK ? "network" : "bridge", err.msg);
		a->spec.has_network = true;
		*(opt == OPT_NETWORK ? &a->spec.network : &a->spec.bridge) = arg;
		break;
	case OPT_MIGRATION_URI:
		if (*arg && vdi_migration_uri_check(arg, &err) < 0)
			vdi_cli_usage_error(c, "--migration-uri: %s", err.msg);
		a->spec.migration_uri = arg;
		a->spec.has_migration_uri = true;
		break;
	case OPT_DISPLAY:
		if (*arg && vdi_display_address_check(arg, &err) < 0)
			vdi_cli_usage_error(c, "--display-address: %s", err.msg);
		a->spec.display_address = arg;
		a->spec.has_display_address = true;
		break;
	case OPT_NO_CHECK:
		a->no_check = true;
		break;
	case OPT_MIGRATE:
		a->migrate = true;
		break;
	case OPT_FORCE:
		a->force = true;
		break;
	}
}

static void
need_args(struct vdi_cli *c, const char *cmd, int have, int min, int max)
{
	if (have < min)
		vdi_cli_usage_error(c, "%s: missing %s", cmd, min - have == 1 && max == 1 ? "host name" : "arguments");
	if (max >= 0 && have > max)
		vdi_cli_usage_error(c, "%s: too many arguments", cmd);
}

static void
check_host_name(struct vdi_cli *c, const char *name)
{
	struct vdi_err err = { 0 };

	if (vdi_name_check("host", name, &err) < 0)
		vdi_cli_usage_error(c, "%s", err.msg);
}

/* ---- output ---- */

/*
 * The load, one format per output: a share of the CPUs (0 to 1) in TSV and
 * JSON, a percentage in a table; null when unknown.
 */
static void
put_load(struct vdi_out *o, bool known, double load)
{
	char buf[16];

	if (!known) {
		vdi_out_null(o, "load");
	} else if (vdi_out_fmt(o) == VDI_FMT_TABLE) {
		snprintf(buf, sizeof(buf), "%.0f%%", load * 100);
		vdi_out_str(o, "load", buf);
	} else {
		vdi_out_real(o, "load", load, 3);
	}
}

/* A host's fields: on a terminal's list only those that fit on a line. */
static void
put_fields(struct vdi_out *o, const struct vdi_host *h, bool full)
{
	char buf[64], a[16], b[16];

	vdi_out_str(o, "name", h->name);
	if (!full && vdi_out_fmt(o) == VDI_FMT_TABLE) {
		/* Used/may give, as vm-assign --explain shows them: the caps after the ratios and the reserve. */
		struct vdi_sched_host sh = { .vcpus = h->vcpus, .cpu_ratio = h->cpu_ratio, .mem_total = h->mem_total,
					     .ram_ratio = h->ram_ratio, .reserve_mem = h->reserve_mem };
		vdi_out_str(o, "state", vdi_host_state(h));
		vdi_out_int(o, "sessions", h->sessions);
		snprintf(buf, sizeof(buf), "%lld/%lld", (long long)h->vcpus_used, (long long)vdi_sched_vcpu_cap(&sh));
		vdi_out_str(o, "vcpus", buf);
		vdi_size_format((uint64_t)h->mem_used, a, sizeof(a));
		vdi_size_format((uint64_t)vdi_sched_mem_cap(&sh), b, sizeof(b));
		snprintf(buf, sizeof(buf), "%s/%s", a, b);
		vdi_out_str(o, "memory", buf);
		put_load(o, h->load_known, h->load);
		vdi_out_strv(o, "tags", h->tags, h->ntags);
		vdi_out_time(o, "last_poll", h->last_poll);
		vdi_out_str(o, "last_error", h->last_error);
		return;
	}
	vdi_out_str(o, "uri", h->uri);
	vdi_out_str(o, "state", vdi_host_state(h));
	vdi_out_int(o, "sessions", h->sessions);
	vdi_out_int(o, "vcpus", h->vcpus);
	vdi_out_int(o, "vcpus_used", h->vcpus_used);
	vdi_out_size(o, "mem_total", h->mem_total);
	vdi_out_size(o, "mem_free", h->mem_free);
	vdi_out_size(o, "mem_reserved", h->mem_used);
	put_load(o, h->load_known, h->load);
	vdi_out_strv(o, "tags", h->tags, h->ntags);
	vdi_out_time(o, "last_poll", h->last_poll);
	vdi_out_str(o, "last_error", h->last_error);
	vdi_out_str(o, "pool", h->pool);
	vdi_out_str(o, "admin", h->admin);
	vdi_out_str(o, "health", h->health);
	if (h->max_sessions >= 0)
		vdi_out_int(o, "max_sessions", h->max_sessions);
	else
		vdi_out_null(o, "max_sessions");
	vdi_out_real(o, "cpu_ratio", h->cpu_ratio, 2);
	vdi_out_real(o, "ram_ratio", h->ram_ratio, 2);
	vdi_out_size(o, "reserve_mem", h->reserve_mem);
	vdi_out_str(o, "display_address", h->display_address);
	vdi_out_str(o, "migration_uri", h->migration_uri);
	vdi_out_str(o, "network", h->network ? h->network : h->bridge ? h->bridge : NULL);
	if (h->network || h->bridge)
		vdi_out_str(o, "network_type", h->network ? "network" : "bridge");
	vdi_out_int(o, "domains", h->domains_total);
	vdi_out_int(o, "domains_ours", h->domains_ours);
	vdi_out_time(o, "last_ok", h->last_ok);
	vdi_out_time(o, "down_since", h->down_since);
	vdi_out_time(o, "fenced", h->fenced);
	vdi_out_int(o, "crashes", h->crashes);
}

/* ---- commands ---- */

static struct vdi_poll_opts
poll_opts(const struct vdi_cli *c)
{
	struct vdi_poll_opts po = { c->cfg.poll_timeout, (int)c->cfg.poll_parallel };

	return po;
}

static int
cmd_add(struct vdi_cli *c, int argc, char **argv)
{
	struct args *a = c->args;
	struct vdi_err err = { 0 };
	struct vdi_node_report rep;
	struct vdi_poll_opts po;
	char mem[16];
	int rc;

	need_args(c, "add", argc - optind, 2, 2);
	check_host_name(c, argv[optind]);
	if (vdi_uri_check(argv[optind + 1], &err) < 0)
		vdi_cli_usage_error(c, "%s", err.msg);
	if ((rc = vdi_cli_open(c)) != 0)
		return rc;
	if (!a->spec.pool)
		a->spec.pool = c->cfg.pool;
	a->spec.tags = a->tags;
	a->spec.ntags = a->ntags;
	po = poll_opts(c);
	rc = vdi_poll_add(c->db, argv[optind], argv[optind + 1], &a->spec, !a->no_check, &po, &rep, &err);
	vdi_size_format((uint64_t)rep.mem_total, mem, sizeof(mem));
	if (rc < 0)
		goto out;
	if (a->no_check)
		vdi_cli_info(c, "%s host %s (not checked: unknown until polled)", c->dry_run ? "would add" : "added",
			     argv[optind]);
	else
	{
		const char *net = a->spec.has_network ? a->spec.network : rep.default_network ? "default" : NULL;
		const char *br = a->spec.has_network ? a->spec.bridge : NULL;
		vdi_cli_info(c, "%s host %s: %lld CPUs, %s memory, pool %s; sessions join %s%s%s",
			     c->dry_run ? "would add" : "added", argv[optind], (long long)rep.vcpus, mem, a->spec.pool,
			     br && *br ? "bridge " : net && *net ? "network " : "no network (they get no NIC: "
			     "vm-hosts set --network)", br && *br ? br : net && *net ? net : "", "");
	}
out:
	/* The report is read above: cleared only now (it was cleared first, and said 0 CPUs). */
	vdi_node_report_clear(&rep);
	return rc < 0 ? vdi_cli_fail(c, &err) : 0;
}

static int
cmd_set(struct vdi_cli *c, int argc, char **argv)
{
	struct args *a = c->args;
	struct vdi_err err = { 0 };
	int rc;

	need_args(c, "set", argc - optind, 1, 1);
	check_host_name(c, argv[optind]);
	a->spec.tags = a->tags;
	a->spec.ntags = a->ntags;
	if ((rc = vdi_cli_open(c)) != 0)
		return rc;
	if (vdi_host_update(c->db, argv[optind], &a->spec, &err) < 0)
		return vdi_cli_fail(c, &err);
	if (c->dry_run)
		vdi_cli_info(c, "would change host %s", argv[optind]);
	return 0;
}

/* list's table: its columns (an empty list keeps its header), and those a narrow terminal drops first. */
static const char *const table_cols[] = { "name", "state", "sessions", "vcpus", "memory", "load", "tags",
					  "last_poll", "last_error", NULL };
static const char *const table_drop[] = { "last_error", "last_poll", "tags", "load", NULL };

static int
cmd_list(struct vdi_cli *c, int argc, char **argv)
{
	struct vdi_err err = { 0 };
	struct vdi_host *hs;
	size_t n;
	int rc;

	(void)argv;
	need_args(c, "list", argc - optind, 0, 0);
	if ((rc = vdi_cli_open(c)) != 0)
		return rc;
	if (vdi_host_list(c->db, NULL, 0, &hs, &n, &err) < 0)
		return vdi_cli_fail(c, &err);
	vdi_out_table_columns(c->out, table_cols, table_drop);
	vdi_out_list_begin(c->out);
	for (size_t i = 0; i < n; i++) {
		vdi_out_obj_begin(c->out);
		put_fields(c->out, &hs[i], false);
		vdi_out_obj_end(c->out);
	}
	vdi_out_list_end(c->out);
	vdi_hosts_free(hs, n);
	return 0;
}

static int
cmd_show(struct vdi_cli *c, int argc, char **argv)
{
	struct vdi_err err = { 0 };
	struct vdi_host h;
	struct vdi_host_domain *ds;
	struct vdi_out *o;
	size_t nd;
	int rc;

	need_args(c, "show", argc - optind, 1, 1);
	check_host_name(c, argv[optind]);
	if ((rc = vdi_cli_open(c)) != 0)
		return rc;
	if (vdi_host_get(c->db, argv[optind], &h, &err) < 0)
		return vdi_cli_fail(c, &err);
	if (vdi_host_domains(c->db, h.id, &ds, &nd, &err) < 0) {
		vdi_host_clear(&h);
		return vdi_cli_fail(c, &err);
	}
	o = c->out;
	vdi_out_obj_begin(o);
	put_fields(o, &h, true);
	vdi_out_int(o, "domains_foreign", h.domains_total - h.domains_ours);
	vdi_out_time(o, "created", h.created);
	vdi_out_nested_begin(o, "domains_seen");
	for (size_t i = 0; i < nd; i++) {
		vdi_out_obj_begin(o);
		vdi_out_str(o, "domain", ds[i].name);
		vdi_out_str(o, "state", ds[i].state);
		vdi_out_bool(o, "ours", ds[i].ours);
		if (ds[i].ours)
			vdi_out_int(o, "session", ds[i].session_id);
		else
			vdi_out_null(o, "session");
		vdi_out_str(o, "user", ds[i].ours ? ds[i].user : NULL);
		vdi_out_str(o, "session_state", !ds[i].ours ? NULL : ds[i].session_state ? ds[i].session_state : "unknown");
		vdi_out_int(o, "vcpus", ds[i].vcpus);
		vdi_out_size(o, "mem", ds[i].mem);
		vdi_out_str(o, "uuid", ds[i].uuid);
		vdi_out_obj_end(o);
	}
	vdi_out_nested_end(o);
	vdi_out_obj_end(o);
	vdi_host_domains_free(ds, nd);
	vdi_host_clear(&h);
	return 0;
}

/* One result of a drain's moves. */
static void
moved(void *ctx, size_t i, const struct vdi_migrate_result *r, const struct vdi_err *e)
{
	struct moves *m = ctx;

	(void)i;
	if (e) {
		/* It stays: said, with why; the worst code is the command's. */
		vdi_cli_warn_err(m->c, e);
		m->code = vdi_code_worst(m->code, e->code);
		return;
	}
	/* A long drain is not silent on a terminal: each desktop as it lands, and how many so far. */
	if (!m->c->dry_run) {
		vdi_cli_progress_line(m->c, "%s: moved %s -> %s in %lld.%lld s", r->user, r->from, r->to,
				      (long long)(r->ms / 1000), (long long)(r->ms % 1000 / 100));
		vdi_cli_progress(m->c, "moved", (int64_t)++m->ended, 0, false);
	}
	if (m->c->quiet && !m->c->dry_run)
		return;
	vdi_out_obj_begin(m->c->out);
	vdi_out_str(m->c->out, "user", r->user);
	vdi_out_int(m->c->out, "session", r->session);
	vdi_out_str(m->c->out, "from", r->from);
	vdi_out_str(m->c->out, "to", r->to);
	if (!m->c->dry_run)
		vdi_out_real(m->c->out, "seconds", (double)r->ms / 1000, 3); /* a number in JSON, as every duration */
	vdi_out_obj_end(m->c->out);
}


static int
admin_cmd(struct vdi_cli *c, int argc, char **argv, const char *cmd, const char *admin)
{
	struct args *a = c->args;
	struct vdi_err err = { 0 };
	struct vdi_migrate_opts mo = { 0 };
	struct vdi_migrate_batch mb = { 0 };
	struct moves m = { .c = c };
	char **names;
	size_t n;
	int rc, code = 0;

	vdi_cli_args(c, argc, argv, &names, &n);
	if (n == 0)
		vdi_cli_usage_error(c, "%s: missing host name", cmd);
	if (a->migrate && a->force)
		vdi_cli_usage_error(c, "%s: give one of --migrate and --force", cmd);
	for (size_t i = 0; i < n; i++)
		check_host_name(c, names[i]);
	if ((rc = vdi_cli_open(c)) != 0) {
		vdi_cli_args_free(names, n);
		return rc;
	}
	vdi_migrate_opts_config(&mo, &c->cfg);
	mo.rng = &c->rng;
	mb.db = c->db;
	mb.timeout_ms = c->cfg.poll_timeout;
	mb.parallel = (int)c->cfg.migrate_parallel;
	mb.done = moved;
	mb.ctx = &m;
	if (a->migrate)
		vdi_out_list_begin(c->out);
	for (size_t i = 0; i < n; i++) {
		int64_t left = 0;
		vdi_err_reset(&err);
		m.code = 0;
		rc = vdi_migrate_drain(c->db, names[i], admin, a->force, &mo, a->migrate ? &mb : NULL, &left, &err);
		code = vdi_code_worst(code, m.code);
		if (left > 0 && !c->dry_run)
			vdi_cli_warn(c, "%s: %lld session%s stay%s there (see above, and vm-ls --host %s)", names[i],
				     (long long)left, left == 1 ? "" : "s", left == 1 ? "s" : "", names[i]);
		if (rc < 0)
			code = vdi_code_worst(code, vdi_cli_fail(c, &err));
		else if (c->dry_run && !a->migrate)
			vdi_cli_info(c, "would mark host %s %s", names[i], admin);
	}
	vdi_cli_progress(c, NULL, -1, 0, false);
	if (a->migrate)
		vdi_out_list_end(c->out);
	vdi_cli_args_free(names, n);
	return code;
}

static int
cmd_drain(struct vdi_cli *c, int argc, char **argv)
{
	return admin_cmd(c, argc, argv, "drain", "draining");
}

static int
cmd_undrain(struct vdi_cli *c, int argc, char **argv)
{
	return admin_cmd(c, argc, argv, "undrain", "active");
}

static int
cmd_maintenance(struct vdi_cli *c, int argc, char **argv)
{
	return admin_cmd(c, argc, argv, "maintenance", "maintenance");
}

static int
cmd_rm(struct vdi_cli *c, int argc, char **argv)
{
	struct args *a = c->args;
	struct vdi_err err = { 0 };
	struct vdi_conns *cs;
	int rc;

	need_args(c, "rm", argc - optind, 1, 1);
	check_host_name(c, argv[optind]);
	if ((rc = vdi_cli_open(c)) != 0)
		return rc;
	cs = vdi_conns_new(c->cfg.poll_timeout);
	rc = vdi_reaper_host_rm(c->db, cs, argv[optind], a->force, &err);
	vdi_conns_free(cs);
	if (rc < 0)
		return vdi_cli_fail(c, &err);
	vdi_cli_info(c, "%s host %s", c->dry_run ? "would remove" : "removed", argv[optind]);
	return 0;
}

static int
cmd_fence(struct vdi_cli *c, int argc, char **argv)
{
	struct vdi_err err = { 0 };
	struct vdi_fence_opts fo = { 0 };
	struct vdi_fence_result res;
	int rc;

	need_args(c, "fence", argc - optind, 1, 1);
	check_host_name(c, argv[optind]);
	if ((rc = vdi_cli_open(c)) != 0)
		return rc;
	fo.command = c->cfg.fence_command;
	fo.timeout_ms = c->cfg.fence_timeout;
	fo.conns = vdi_conns_new(c->cfg.poll_timeout);
	rc = vdi_reaper_fence(c->db, argv[optind], &fo, &res, &err);
	vdi_conns_free(fo.conns);
	if (rc < 0)
		return vdi_cli_fail(c, &err);
	if (c->dry_run) {
		vdi_cli_info(c, "would fence host %s: it does not answer%s", argv[optind],
			     fo.command && *fo.command ? " (the fence agent was not run)" : "");
		return 0;
	}
	vdi_cli_info(c, "fenced host %s (%s): %lld session%s ended host-lost, %zu overlay%s deleted", argv[optind],
		     res.agent ? "turned off by the fence agent" : "vouched off", (long long)res.ended,
		     res.ended == 1 ? "" : "s", res.deleted, res.deleted == 1 ? "" : "s");
	if (res.left) {
		vdi_cli_warn(c, "%zu overlay%s of %s left in the pool: no other host of it answered; "
			     "vm-reap --orphans deletes them", res.left, res.left == 1 ? "" : "s", argv[optind]);
		return VDI_ETEMP;
	}
	return 0;
}

static int
cmd_poll(struct vdi_cli *c, int argc, char **argv)
{
	struct vdi_err err = { 0 };
	struct vdi_poll_opts po;
	struct vdi_host *hs;
	struct vdi_node_report *reps;
	size_t n;
	int rc, code = 0;

	for (int i = optind; i < argc; i++)
		check_host_name(c, argv[i]);
	if ((rc = vdi_cli_open(c)) != 0)
		return rc;
	po = poll_opts(c);
	if (vdi_poll_run(c->db, argv + optind, (size_t)(argc - optind), &po, &hs, &reps, &n, &err) < 0)
		return vdi_cli_fail(c, &err);
	vdi_out_list_begin(c->out);
	for (size_t i = 0; i < n; i++) {
		struct vdi_node_report *r = &reps[i];
		int64_t ours = 0;

		for (size_t d = 0; d < r->ndoms; d++)
			ours += r->doms[d].ours;
		if (r->err.code) {
			code = VDI_ETEMP;
			vdi_cli_warn(c, "host %s is down: %s", hs[i].name, r->err.msg);
		}
		if (c->quiet)
			continue;
		vdi_out_obj_begin(c->out);
		vdi_out_str(c->out, "name", hs[i].name);
		vdi_out_str(c->out, "health", r->err.code ? "down" : "up");
		if (r->err.code) {
			vdi_out_null(c->out, "vcpus");
			vdi_out_null(c->out, "mem_free");
			vdi_out_null(c->out, "load");
			vdi_out_null(c->out, "domains");
			vdi_out_null(c->out, "domains_ours");
		} else {
			vdi_out_int(c->out, "vcpus", r->vcpus);
			vdi_out_size(c->out, "mem_free", r->mem_free);
			put_load(c->out, r->load_known, r->load);
			vdi_out_int(c->out, "domains", (int64_t)r->ndoms);
			vdi_out_int(c->out, "domains_ours", ours);
		}
		vdi_out_int(c->out, "ms", r->elapsed_ms);
		vdi_out_str(c->out, "error", r->err.code ? r->err.msg : NULL);
		vdi_out_obj_end(c->out);
	}
	vdi_out_list_end(c->out);
	vdi_poll_free(hs, reps, n);
	return code;
}

static const int add_opts[] = { OPT_POOL, OPT_MAX_SESSIONS, OPT_CPU_RATIO, OPT_RAM_RATIO, OPT_RESERVE_MEM,
				OPT_TAG, OPT_DISPLAY, OPT_NETWORK, OPT_BRIDGE, OPT_MIGRATION_URI, OPT_NO_CHECK, 0 };
static const int set_opts[] = { OPT_POOL, OPT_MAX_SESSIONS, OPT_CPU_RATIO, OPT_RAM_RATIO, OPT_RESERVE_MEM,
				OPT_TAG, OPT_NO_TAGS, OPT_DISPLAY, OPT_NETWORK, OPT_BRIDGE, OPT_MIGRATION_URI, 0 };
static const int rm_opts[] = { OPT_FORCE, 0 };
static const int drain_opts[] = { OPT_MIGRATE, 0 };
static const int maint_opts[] = { OPT_MIGRATE, OPT_FORCE, 0 };
static const int no_opts[] = { 0 };

static const struct vdi_cli_cmd cmds[] = {
	{ "add", cmd_add, add_opts, true },
	{ "set", cmd_set, set_opts, true },
	{ "list", cmd_list, no_opts, false },
	{ "show", cmd_show, no_opts, false },
	{ "drain", cmd_drain, drain_opts, true },
	{ "undrain", cmd_undrain, no_opts, true },
	{ "maintenance", cmd_maintenance, maint_opts, true },
	{ "rm", cmd_rm, rm_opts, true },
	{ "fence", cmd_fence, no_opts, true },
	{ "poll", cmd_poll, no_opts, true },
	{ NULL, NULL, NULL, false },
};

int
main(int argc, char **argv)
{
	struct vdi_cli c;
	struct args a = { 0 };
	int rc;

	vdi_cli_init(&c, "vm-hosts", usage);
	vdi_cli_set_help(&c, help, true);
	c.args = &a;
	rc = vdi_cli_dispatch(&c, argc, argv, opts, cmds, parse_spec_opt);
	free(a.tags);
	return vdi_cli_finish(&c, rc);
}
