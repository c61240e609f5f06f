/* import.c - vm-master's workflow: check, claim, stream, verify, activate, undo (see import.h). */
#include <stdlib.h>
#include <string.h>

#include "host.h"
#include "image.h"
#include "import.h"
#include "virt.h"

/* The sink that streams fetched bytes into a new volume. */
struct sink {
	const struct vdi_import_opts *o;
	virConnectPtr conn;
	const char *volume;
	struct vdi_upload *up;
};

static int
sink_start(void *ctx, const struct vdi_image_info *info, int64_t total, struct vdi_err *err)
{
	struct sink *s = ctx;
	struct vdi_volume_spec spec = {
		.name = s->volume,
		.format = info->format,
		/* qcow2: its own virtual size; raw: the bytes to come (libvirt refreshes it after). */
		.capacity = strcmp(info->format, "qcow2") == 0 ? info->virtual_size : (total > 0 ? total : 0),
	};

	if (s->o->spec.disk > 0 && info->virtual_size > s->o->spec.disk)
		return vdi_err_set(err, VDI_R_USAGE, "--disk %lld is smaller than the image's virtual size %lld",
				   (long long)s->o->spec.disk, (long long)info->virtual_size);
	s->up = vdi_upload_begin(s->conn, s->o->spec.pool, &spec, err);
	return s->up ? 0 : -1;
}

static int
sink_data(void *ctx, const void *buf, size_t len, struct vdi_err *err)
{
	struct sink *s = ctx;

	if (s->o->interrupted && *s->o->interrupted)
		return vdi_err_set(err, VDI_R_FAIL, "interrupted; the partial volume was deleted");
	return vdi_upload_send(s->up, buf, len, err);
}

static void
sink_progress(void *ctx, int64_t done, int64_t total)
{
	struct sink *s = ctx;

	if (s->o->progress)
		s->o->progress(s->o->ctx, done, total);
}

/* Stream the image into volume vol and verify it; on failure nothing is left. */
static int
upload(struct sink *s, const char *vol, struct vdi_fetch_result *res, struct vdi_err *err)
{
	const struct vdi_import_opts *o = s->o;
	struct vdi_fetch f = { sink_start, sink_data, sink_progress, s, o->max_size };
	int64_t cap = 0, alloc = 0;

	if (vdi_image_fetch(o->spec.source, &f, res, err) < 0) {
		vdi_upload_abort(s->up);
		return -1;
	}
	if (vdi_upload_finish(s->up, err) < 0)
		return -1;
	if (o->sha256 && strcmp(o->sha256, res->sha256) != 0) {
		vdi_err_set(err, VDI_R_FAIL, "checksum mismatch: expected %s, got %s", o->sha256, res->sha256);
		goto fail;
	}
	/* What libvirt sees must be what the header said: the upload really landed. */
	if (vdi_vol_info(s->conn, o->spec.pool, vol, &cap, &alloc, err) < 0)
		goto fail;
	if (cap != res->info.virtual_size) {
		vdi_err_set(err, VDI_R_FAIL, "the uploaded volume has capacity %lld, the image says %lld",
			    (long long)cap, (long long)res->info.virtual_size);
		goto fail;
	}
	return 0;
fail:
	vdi_vol_delete(s->conn, o->spec.pool, vol, VDI_ERR_SCRATCH);
	return -1;
}

int
vdi_import(struct vdi_db *db, const struct vdi_import_opts *o, struct vdi_master *m, bool *takeover,
	   struct vdi_err *err)
{
	struct sink s = { .o = o };
	struct vdi_fetch_result res;
	char vol[128], *hname = NULL, *huri = NULL;
	int64_t id = 0;
	bool claimed = false;
	int ret = -1;

	memset(m, 0, sizeof(*m));
	*takeover = false;
	vdi_err_object(err, "%s", o->spec.name);
	/* The source is checked before anything else (a bad URL is bad usage, whatever the hosts). */
	if (vdi_image_source_check(o->spec.source, err) < 0)
		return -1;
	vdi_master_volume(o->spec.name, vol, sizeof(vol));
	if (vdi_host_for_pool(db, o->spec.pool, o->host, &hname, &huri, err) < 0)
		goto out;
	/* Rule 2: the claim is committed before any byte moves (with dry_run: checked, rolled back). */
	if (vdi_master_claim(db, &o->spec, &id, takeover, err) < 0 || vdi_db_dry_run(db)) {
		ret = vdi_db_dry_run(db) && !err->code ? 0 : -1;
		goto out;
	}
	claimed = true;
	if (!(s.conn = vdi_conns_get(o->conns, hname, huri, err)))
		goto out;
	/* A volume of this name with our claim held is a leftover of an import that died. */
	if (vdi_pool_refresh(s.conn, o->spec.pool, err) < 0 || vdi_vol_delete(s.conn, o->spec.pool, vol, err) < 0)
		goto out;
	s.volume = vol;
	if (upload(&s, vol, &res, err) < 0)
		goto out;
	if (vdi_master_activate(db, id, res.info.format, res.info.virtual_size, res.sha256,
				o->spec.disk > 0 ? o->spec.disk : res.info.virtual_size, err) < 0) {
		vdi_vol_delete(s.conn, o->spec.pool, vol, VDI_ERR_SCRATCH);
		goto out;
	}
	claimed = false;
	ret = vdi_master_get(db, o->spec.name, m, err);
out:
	if (claimed)
		vdi_master_unclaim(db, id, VDI_ERR_SCRATCH);
	free(hname);
	free(huri);
	return ret;
}

int
vdi_import_rm(struct vdi_db *db, const char *name, const struct vdi_import_opts *o, struct vdi_err *err)
{
	struct vdi_master m;
	virConnectPtr conn;
	int ret = -1;

	vdi_err_object(err, "%s", name);
	if (vdi_master_rm_check(db, name, &m, err) < 0)
		return -1;
	if (vdi_db_dry_run(db)) {
		ret = 0;
		goto out;
	}
	/* The volume first: a crash after it leaves a row whose rm is simply run again. */
	if (!(conn = vdi_conns_for_pool(o->conns, db, m.pool, o->host, err)))
		goto out;
	if (vdi_pool_refresh(conn, m.pool, err) < 0 || vdi_vol_delete(conn, m.pool, m.volume, err) < 0)
		goto out;
	ret = vdi_master_rm_row(db, m.id, name, err);
out:
	vdi_master_clear(&m);
	return ret;
}
