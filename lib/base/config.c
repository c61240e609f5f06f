/* config.c - defaults, vdi.conf and the environment (see config.h). */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "config.h"
#include "file.h"
#include "mem.h"
#include "names.h"
#include "parse.h"

enum stype { S_PATH, S_NAME, S_POLICY, S_DURATION, S_SIZE, S_COUNT, S_DOMTYPE, S_MAC, S_BOOL, S_COMMAND, S_URL, S_TEXT };

struct setting {
	const char *key;
	enum stype type;
	size_t off;
	const char *def;
	int64_t min, max;  /* counts, durations (ms) and sizes: the allowed range (max 0: none) */
};

#define CONFIG_MAX_BYTES (1 << 20)  /* a vdi.conf is a few hundred bytes */
#define CONFIG_MAX_LINE 4096

#define OFF(f) offsetof(struct vdi_config, f)

static const struct setting settings[] = {
	{ "db", S_PATH, OFF(db), VDI_DB_DEFAULT, 0, 0 },
	{ "busy_timeout", S_DURATION, OFF(busy_timeout), "10s", 0, 3600000 },
	{ "poll_timeout", S_DURATION, OFF(poll_timeout), "5s", 100, 3600000 },
	{ "poll_max_age", S_DURATION, OFF(poll_max_age), "10m", 1000, 0 },
	{ "poll_parallel", S_COUNT, OFF(poll_parallel), "16", 1, 1024 },
	{ "pool", S_NAME, OFF(pool), "vdi", 0, 0 },
	{ "policy", S_POLICY, OFF(policy), "least-sessions", 0, 0 },
	{ "image_max_size", S_SIZE, OFF(image_max_size), "64G", 1, 0 },
	{ "start_retries", S_COUNT, OFF(start_retries), "2", 0, 64 },
	{ "copy_parallel", S_COUNT, OFF(copy_parallel), "8", 1, 256 },
	{ "start_parallel", S_COUNT, OFF(start_parallel), "32", 1, 256 },
	{ "start_parallel_host", S_COUNT, OFF(start_parallel_host), "8", 1, 256 },
	{ "assign_ttl", S_DURATION, OFF(assign_ttl), "10m", 1000, 0 },
	{ "start_ttl", S_DURATION, OFF(start_ttl), "5m", 1000, 0 },
	{ "stop_ttl", S_DURATION, OFF(stop_ttl), "5m", 1000, 0 },
	{ "host_lost_after", S_DURATION, OFF(host_lost_after), "10m", 0, 0 },
	{ "prepare_timeout", S_DURATION, OFF(prepare_timeout), "30m", 1000, 0 },
	{ "address_timeout", S_DURATION, OFF(address_timeout), "2m", 0, 3600000 },
	{ "domain_type", S_DOMTYPE, OFF(domain_type), "auto", 0, 0 },
	{ "mac_prefix", S_MAC, OFF(mac_prefix), VDI_MAC_PREFIX_DEFAULT, 0, 0 },
	{ "console_log_dir", S_PATH, OFF(console_log_dir), "/var/log/libvirt/qemu", 0, 0 },
	/* "" or an absolute path, like a command's: the same check. */
	{ "host_log_dir", S_COMMAND, OFF(host_log_dir), "", 0, 0 },
	{ "disconnect_timeout", S_DURATION, OFF(disconnect_timeout), "2h", 0, 0 },
	{ "connect_timeout", S_DURATION, OFF(connect_timeout), "15m", 0, 0 },
	{ "ticket_ttl", S_DURATION, OFF(ticket_ttl), "60s", 1000, 3600000 },
	{ "migrate_timeout", S_DURATION, OFF(migrate_timeout), "5m", 1000, 0 },
	{ "migrate_parallel", S_COUNT, OFF(migrate_parallel), "2", 1, 64 },
	{ "migrate_bandwidth", S_COUNT, OFF(migrate_bandwidth), "0", 0, 1000000 },
	{ "migrate_unsafe", S_BOOL, OFF(migrate_unsafe), "no", 0, 0 },
	{ "rebalance_threshold", S_COUNT, OFF(rebalance_threshold), "5", 0, 1000 },
	{ "rebalance_threshold_sessions", S_COUNT, OFF(rebalance_threshold_sessions), "1", 0, 1000 },
	{ "rebalance_rest", S_DURATION, OFF(rebalance_rest), "30m", 0, 0 },
	{ "signout_url", S_URL, OFF(signout_url), "", 0, 0 },
	{ "fence_command", S_COMMAND, OFF(fence_command), "", 0, 0 },
	{ "fence_timeout", S_DURATION, OFF(fence_timeout), "2m", 1000, 3600000 },
	{ "events_keep", S_DURATION, OFF(events_keep), "90d", 0, 0 },
	{ "warm", S_BOOL, OFF(warm), "no", 0, 0 },
	{ "warm_ready", S_TEXT, OFF(warm_ready), "", 0, 0 },
	{ "warm_settle", S_DURATION, OFF(warm_settle), "10s", 0, 3600000 },
	{ "warm_timeout", S_DURATION, OFF(warm_timeout), "10m", 1000, 0 },
	{ "warm_retry", S_DURATION, OFF(warm_retry), "1h", 0, 0 },
	{ "console", S_BOOL, OFF(console), "yes", 0, 0 },
	{ "console_socket", S_PATH, OFF(console_socket), "/run/vdi-tools/console.sock", 0, 0 },
	{ "console_path", S_URL, OFF(console_path), "/vdi-console", 0, 0 },
	{ "novnc_url", S_URL, OFF(novnc_url), "/novnc", 0, 0 },
	{ "console_origin", S_URL, OFF(console_origin), "", 0, 0 },
	{ "console_user_header", S_TEXT, OFF(console_user_header), "Forwarded", 0, 0 },
	{ "console_ticket_ttl", S_DURATION, OFF(console_ticket_ttl), "60s", 1000, 3600000 },
	{ "console_handshake_timeout", S_DURATION, OFF(console_handshake_timeout), "10s", 1000, 3600000 },
	{ "console_idle_timeout", S_DURATION, OFF(console_idle_timeout), "1h", 0, 0 },
	{ "console_max_frame", S_SIZE, OFF(console_max_frame), "256K", 4096, 0 },
	{ "console_per_user", S_COUNT, OFF(console_per_user), "4", 1, 64 },
	{ "home_max", S_SIZE, OFF(home_max), "100G", 16 << 20, 0 },
	{ "request_home_max", S_SIZE, OFF(request_home_max), "10G", 0, 0 },
	{ "home_mount", S_PATH, OFF(home_mount), "/home", 0, 0 },
	{ "update_parallel", S_COUNT, OFF(update_parallel), "2", 1, 256 },
	{ NULL, 0, 0, NULL, 0, 0 },
};

static const char *const policies[] = {
	"least-sessions", "least-load", "round-robin", "sticky", "pack", "random2", NULL,
};

static int
set_one(struct vdi_config *cfg, const struct setting *s, const char *val, struct vdi_err *err)
{
	char *base = (char *)cfg + s->off;
	int64_t n;
	uint64_t u;

	switch (s->type) {
	case S_PATH:
		if (!*val)
			return vdi_err_set(err, VDI_R_USAGE, "%s: empty path", s->key);
		if (s->off == OFF(console_log_dir) && (val[0] != '/' || strpbrk(val, "\"'<>&")))
			return vdi_err_set(err, VDI_R_USAGE, "%s: '%.40s' is not an absolute path of plain characters",
					   s->key, val);
		/* Written into the seed's YAML: letters, digits and /._- only. */
		if (s->off == OFF(home_mount) && (val[0] != '/' || strlen(val) > 200 ||
						  strspn(val, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
							 "0123456789/._-") != strlen(val) || strstr(val, "..")))
			return vdi_err_set(err, VDI_R_USAGE, "%s: '%.40s' is not an absolute path of letters, digits "
					   "and /._-", s->key, val);
		break;
	case S_COMMAND:
		/* "" (none), or an absolute path run with no shell: nothing to quote, nothing to expand. */
		if (*val && val[0] != '/')
			return vdi_err_set(err, VDI_R_USAGE, "%s: '%.40s' is not an absolute path", s->key, val);
		for (const char *p = val; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				return vdi_err_set(err, VDI_R_USAGE, "%s: a control character in the path", s->key);
		break;
	case S_URL:
		/* "" (none), a path on the site, or an http(s) URL: printed into a page's href, so plain characters only. */
		if (*val && val[0] != '/' && strncmp(val, "https://", 8) != 0 && strncmp(val, "http://", 7) != 0)
			return vdi_err_set(err, VDI_R_USAGE, "%s: '%.40s' is not a /path or an http(s) URL", s->key, val);
		for (const char *p = val; *p; p++)
			if ((unsigned char)*p <= 0x20 || *p == 0x7f || strchr("\"'<>\\`", *p))
				return vdi_err_set(err, VDI_R_USAGE, "%s: a space, quote, angle bracket or control "
						   "character in the URL", s->key);
		break;
	case S_TEXT:
		/* Looked for in what a guest prints: printable text of a line, no more. */
		if (strlen(val) > 200)
			return vdi_err_set(err, VDI_R_USAGE, "%s: longer than 200 characters", s->key);
		for (const char *p = val; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				return vdi_err_set(err, VDI_R_USAGE, "%s: a control character in the text", s->key);
		break;
	case S_NAME:
		if (vdi_name_check(s->key, val, err) < 0)
			return -1;
		break;
	case S_POLICY: {
		int i;
		for (i = 0; policies[i]; i++)
			if (strcmp(val, policies[i]) == 0)
				break;
		if (!policies[i])
			return vdi_err_set(err, VDI_R_USAGE, "%s: unknown policy '%.40s' (least-sessions, "
					   "least-load, round-robin, sticky, pack, random2)", s->key, val);
		break;
	}
	case S_DOMTYPE:
		if (strcmp(val, "auto") != 0 && strcmp(val, "kvm") != 0 && strcmp(val, "qemu") != 0)
			return vdi_err_set(err, VDI_R_USAGE, "%s: '%.40s' is not auto, kvm or qemu", s->key, val);
		break;
	case S_MAC:
		if (vdi_mac_prefix_parse(val, NULL, err) < 0)
			return vdi_err_prefix(err, "%s", s->key);
		break;
	case S_DURATION:
		if (vdi_duration_parse(val, &n, err) < 0)
			return vdi_err_prefix(err, "%s", s->key);
		if (n < s->min || (s->max && n > s->max))
			return vdi_err_set(err, VDI_R_USAGE, "%s: '%.40s' is out of range (%lld ms to %s)", s->key,
					   val, (long long)s->min, s->max ? "1h" : "no limit");
		*(int64_t *)base = n;
		return 0;
	case S_SIZE:
		if (vdi_size_parse(val, &u, err) < 0)
			return vdi_err_prefix(err, "%s", s->key);
		if ((int64_t)u < s->min)
			return vdi_err_set(err, VDI_R_USAGE, "%s: '%.40s' is too small (at least %lld bytes)", s->key,
					   val, (long long)s->min);
		*(int64_t *)base = (int64_t)u;
		return 0;
	case S_BOOL:
		if (strcmp(val, "yes") == 0 || strcmp(val, "true") == 0 || strcmp(val, "1") == 0)
			*(int64_t *)base = 1;
		else if (strcmp(val, "no") == 0 || strcmp(val, "false") == 0 || strcmp(val, "0") == 0)
			*(int64_t *)base = 0;
		else
			return vdi_err_set(err, VDI_R_USAGE, "%s: '%.40s' is not yes or no", s->key, val);
		return 0;
	case S_COUNT:
		if (vdi_int_parse(val, s->min, s->max, &n, err) < 0)
			return vdi_err_prefix(err, "%s", s->key);
		*(int64_t *)base = n;
		return 0;
	}
	free(*(char **)base);
	*(char **)base = vdi_xstrdup(val);
	return 0;
}

int
vdi_config_set(struct vdi_config *cfg, const char *key, const char *val, struct vdi_err *err)
{
	for (const struct setting *s = settings; s->key; s++)
		if (strcmp(s->key, key) == 0)
			return set_one(cfg, s, val, err);
	return vdi_err_set(err, VDI_R_USAGE, "unknown setting '%.40s'", key);
}

static char *
trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

/*
 * Read a config file: a small regular file of "key = value" lines.  Every
 * error names the file, the line and, where there is one, the key; a file
 * that is not text (NUL bytes, control characters) or too large is refused.
 */
static int
read_file(struct vdi_config *cfg, const char *path, int must_exist, struct vdi_err *err)
{
	char *buf = NULL, *line, *next;
	size_t len;
	int lineno = 0, ret = -1;

	if (vdi_file_read_small(path, CONFIG_MAX_BYTES, &buf, &len, err) < 0) {
		if (err->code == VDI_ENOTFOUND && !must_exist) {
			vdi_err_clear(err);
			return 0;
		}
		if (err->code == VDI_ENOTFOUND || err->code == VDI_EFAIL)
			return vdi_err_set(err, VDI_R_FAIL, "cannot read config file %s: %s", path, strerror(errno));
		return vdi_err_prefix(err, "config file");
	}
	if (memchr(buf, '\0', len)) {
		vdi_err_set(err, VDI_R_USAGE, "%s: not a config file (it holds NUL bytes)", path);
		goto out;
	}
	for (line = buf; line && *line; line = next) {
		char *s, *eq, *key, *val;

		lineno++;
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (strlen(line) > CONFIG_MAX_LINE) {
			vdi_err_set(err, VDI_R_USAGE, "%s:%d: line longer than %d bytes", path, lineno, CONFIG_MAX_LINE);
			goto out;
		}
		s = trim(line);
		if (!*s || *s == '#')
			continue;
		for (const unsigned char *p = (const unsigned char *)s; *p; p++)
			if ((*p < 0x20 && *p != '\t') || *p == 0x7f) {
				vdi_err_set(err, VDI_R_USAGE, "%s:%d: control character 0x%02x: not a config file",
					    path, lineno, *p);
				goto out;
			}
		eq = strchr(s, '=');
		if (!eq) {
			vdi_err_set(err, VDI_R_USAGE, "%s:%d: expected 'key = value'", path, lineno);
			goto out;
		}
		*eq = '\0';
		key = trim(s);
		val = trim(eq + 1);
		/* Allow "value" in double quotes, as in libvirt's files. */
		if (val[0] == '"' && strlen(val) >= 2 && val[strlen(val) - 1] == '"') {
			val[strlen(val) - 1] = '\0';
			val++;
		}
		if (vdi_config_set(cfg, key, val, err) < 0) {
			vdi_err_prefix(err, "%s:%d", path, lineno);
			goto out;
		}
	}
	free(cfg->config_path);
	cfg->config_path = vdi_xstrdup(path);
	ret = 0;
out:
	free(buf);
	return ret;
}

int
vdi_config_load(struct vdi_config *cfg, struct vdi_err *err)
{
	const char *env;

	memset(cfg, 0, sizeof(*cfg));
	for (const struct setting *s = settings; s->key; s++)
		if (set_one(cfg, s, s->def, err) < 0)
			return -1;
	env = getenv("VDI_CONFIG");
	if (env && *env) {
		if (read_file(cfg, env, 1, err) < 0)
			return -1;
	} else if (read_file(cfg, VDI_CONFIG_DEFAULT, 0, err) < 0) {
		return -1;
	}
	env = getenv("VDI_DB");
	if (env && *env && vdi_config_set(cfg, "db", env, err) < 0)
		return vdi_err_prefix(err, "VDI_DB");
	return 0;
}

void
vdi_config_clear(struct vdi_config *cfg)
{
	for (const struct setting *s = settings; s->key; s++) {
		if (s->type == S_PATH || s->type == S_NAME || s->type == S_POLICY || s->type == S_DOMTYPE ||
		    s->type == S_MAC || s->type == S_COMMAND || s->type == S_URL || s->type == S_TEXT) {
			char **p = (char **)((char *)cfg + s->off);
			free(*p);
			*p = NULL;
		}
	}
	free(cfg->config_path);
	cfg->config_path = NULL;
}
