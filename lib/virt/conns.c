/* conns.c - the per-process cache of libvirt connections (see conns.h). */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "conns.h"
#include "db.h"
#include "host.h"
#include "mem.h"
#include "virt.h"

struct entry {
	char *name;
	virConnectPtr conn;  /* NULL: connecting failed, err says why */
	struct vdi_err err;
};

struct vdi_conns {
	int64_t timeout_ms;
	struct entry *v;
	size_t n;
};

struct vdi_conns *
vdi_conns_new(int64_t timeout_ms)
{
	struct vdi_conns *cs = vdi_xcalloc(1, sizeof(*cs));

	cs->timeout_ms = timeout_ms;
	return cs;
}

static struct entry *
find(struct vdi_conns *cs, const char *name)
{
	for (size_t i = 0; i < cs->n; i++)
		if (strcmp(cs->v[i].name, name) == 0)
			return &cs->v[i];
	return NULL;
}

virConnectPtr
vdi_conns_get(struct vdi_conns *cs, const char *name, const char *uri, struct vdi_err *err)
{
	struct entry *e = find(cs, name);

	if (!e) {
		cs->v = vdi_grow(cs->v, cs->n, sizeof(*cs->v));
		e = &cs->v[cs->n++];
		memset(e, 0, sizeof(*e));
		e->name = vdi_xstrdup(name);
		e->conn = vdi_virt_connect(uri, cs->timeout_ms, &e->err);
		if (!e->conn)
			vdi_err_prefix(&e->err, "host %s", name);
	}
	if (!e->conn)
		vdi_err_copy(err, &e->err);
	return e->conn;
}

virConnectPtr
vdi_conns_for_pool(struct vdi_conns *cs, struct vdi_db *db, const char *pool, const char *want,
		   struct vdi_err *err)
{
	char *name = NULL, *uri = NULL;
	virConnectPtr c = NULL;

	if (vdi_host_for_pool(db, pool, want, &name, &uri, err) == 0)
		c = vdi_conns_get(cs, name, uri, err);
	free(name);
	free(uri);
	return c;
}

void
vdi_conns_drop(struct vdi_conns *cs, const char *name)
{
	struct entry *e = cs ? find(cs, name) : NULL;

	if (!e)
		return;
	if (e->conn)
		virConnectClose(e->conn);
	free(e->name);
	*e = cs->v[--cs->n];
}

void
vdi_conns_free(struct vdi_conns *cs)
{
	if (!cs)
		return;
	for (size_t i = 0; i < cs->n; i++) {
		if (cs->v[i].conn)
			virConnectClose(cs->v[i].conn);
		free(cs->v[i].name);
	}
	free(cs->v);
	free(cs);
}

void
vdi_workers_init(struct vdi_workers *w, int n)
{
	w->n = n < 1 ? 1 : n;
	w->dbs = vdi_xcalloc((size_t)w->n, sizeof(*w->dbs));
	w->conns = vdi_xcalloc((size_t)w->n, sizeof(*w->conns));
}

int
vdi_workers_get(struct vdi_workers *w, int worker, struct vdi_db **db, struct vdi_conns **cs, struct vdi_err *err)
{
	if (!w->dbs[worker]) {
		if (vdi_db_reopen(w->db, &w->dbs[worker], err) < 0)
			return -1;
	}
	if (!w->conns[worker])
		w->conns[worker] = vdi_conns_new(w->timeout_ms);
	*db = w->dbs[worker];
	*cs = w->conns[worker];
	return 0;
}

void
vdi_workers_free(struct vdi_workers *w)
{
	for (int i = 0; i < w->n; i++) {
		vdi_conns_free(w->conns[i]);
		vdi_db_close(w->dbs[i]);
	}
	free(w->dbs);
	free(w->conns);
	w->dbs = NULL;
	w->conns = NULL;
}
