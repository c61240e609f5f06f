/* config.c - defaults, vdi.conf and the environment (see config.h). */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "config.h"
#include "names.h"
#include "parse.h"

enum stype { S_PATH, S_NAME, S_POLICY, S_DURATION, S_SIZE, S_COUNT };

struct setting {
	const char *key;
	enum stype type;
	size_t off;
	const char *def;
};

#define OFF(f) offsetof(struct vdi_config, f)

static const struct setting settings[] = {
	{ "db", S_PATH, OFF(db), VDI_DB_DEFAULT },
	{ "busy_timeout", S_DURATION, OFF(busy_timeout), "10s" },
	{ "poll_timeout", S_DURATION, OFF(poll_timeout), "5s" },
	{ "poll_max_age", S_DURATION, OFF(poll_max_age), "10m" },
	{ "poll_parallel", S_COUNT, OFF(poll_parallel), "16" },
	{ "pool", S_NAME, OFF(pool), "vdi" },
	{ "policy", S_POLICY, OFF(policy), "least-sessions" },
	{ "image_max_size", S_SIZE, OFF(image_max_size), "64G" },
	{ "start_retries", S_COUNT, OFF(start_retries), "2" },
	{ "assign_ttl", S_DURATION, OFF(assign_ttl), "10m" },
	{ "start_ttl", S_DURATION, OFF(start_ttl), "5m" },
	{ "stop_ttl", S_DURATION, OFF(stop_ttl), "5m" },
	{ "host_lost_after", S_DURATION, OFF(host_lost_after), "10m" },
	{ NULL, 0, 0, NULL },
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
			return vdi_err_set(err, VDI_EUSAGE, "%s: empty path", s->key);
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
			return vdi_err_set(err, VDI_EUSAGE, "%s: unknown policy '%.40s' (least-sessions, "
					   "least-load, round-robin, sticky, pack, random2)", s->key, val);
		break;
	}
	case S_DURATION:
		if (vdi_duration_parse(val, &n, err) < 0)
			return vdi_err_prefix(err, "%s", s->key);
		*(int64_t *)base = n;
		return 0;
	case S_SIZE:
		if (vdi_size_parse(val, &u, err) < 0)
			return vdi_err_prefix(err, "%s", s->key);
		*(int64_t *)base = (int64_t)u;
		return 0;
	case S_COUNT:
		if (vdi_int_parse(val, 0, 1024, &n, err) < 0)
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
	return vdi_err_set(err, VDI_EUSAGE, "unknown setting '%.40s'", key);
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

static int
read_file(struct vdi_config *cfg, const char *path, int must_exist, struct vdi_err *err)
{
	FILE *fp;
	char *line = NULL;
	size_t cap = 0;
	int lineno = 0, ret = -1;

	fp = fopen(path, "re");
	if (!fp) {
		if (errno == ENOENT && !must_exist)
			return 0;
		return vdi_err_set(err, VDI_EFAIL, "cannot read config file %s: %s", path, strerror(errno));
	}
	while (getline(&line, &cap, fp) > 0) {
		char *s, *eq, *key, *val;

		lineno++;
		s = trim(line);
		if (!*s || *s == '#')
			continue;
		eq = strchr(s, '=');
		if (!eq) {
			vdi_err_set(err, VDI_EUSAGE, "%s:%d: expected 'key = value'", path, lineno);
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
	if (ferror(fp)) {
		vdi_err_set(err, VDI_EFAIL, "cannot read config file %s: %s", path, strerror(errno));
		goto out;
	}
	free(cfg->config_path);
	cfg->config_path = vdi_xstrdup(path);
	ret = 0;
out:
	free(line);
	fclose(fp);
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
		if (s->type == S_PATH || s->type == S_NAME || s->type == S_POLICY) {
			char **p = (char **)((char *)cfg + s->off);
			free(*p);
			*p = NULL;
		}
	}
	free(cfg->config_path);
	cfg->config_path = NULL;
}
