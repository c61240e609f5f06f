/* conns.c - the per-process cache of libvirt connections (see conns.h). */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "conns.h"
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
