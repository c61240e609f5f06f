/* copy.c - vm-copy's workflow: claim, overlay, seed, ready, undo (see copy.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "copy.h"
#include "file.h"
#include "group.h"
#include "home.h"
#include "host.h"
#include "master.h"
#include "mem.h"
#include "names.h"
#include "reaper.h"
#include "seed.h"
#include "session.h"
#include "strv.h"
#include "uservm.h"
#include "virt.h"

/*
 * A raw volume of these bytes.  With over, a volume of that name and size
 * is overwritten in place (a seed made again; seeds have one size), else
 * any of that name is deleted and a new one made.
 */
static int
upload(virConnectPtr conn, const char *pool, const char *name, const unsigned char *data, size_t len, bool over,
       struct vdi_err *err)
{
	struct vdi_volume_spec spec = { .name = name, .format = "raw", .capacity = (int64_t)len };
	struct vdi_upload *up = over ? vdi_upload_over(conn, pool, name, (int64_t)len, err) : NULL;

	if (!up) {
		if (over && err->code != VDI_ENOTFOUND && err->code != VDI_ECONFLICT)
			return -1;
		vdi_err_clear(err);
		if ((over && vdi_vol_delete(conn, pool, name, err) < 0) || !(up = vdi_upload_begin(conn, pool, &spec, err)))
			return -1;
	}
	if (vdi_upload_send(up, data, len, err) < 0) {
		vdi_upload_abort(up);
		return -1;
	}
	return vdi_upload_finish(up, err);
}

void
vdi_copy_result_clear(struct vdi_copy_result *res)
{
	free(res->master);
	free(res->volume);
	free(res->updated_from);
	vdi_strv_free(res->apps_added, res->napps_added);
	memset(res, 0, sizeof(*res));
}

/* What a copy does with the user's home disk, and what it found. */
struct home_step {
	enum vdi_home_how how;
	int64_t size;
	char volume[160]; /* its name in the pool (set by make_home) */
	bool made;      /* this copy made its volume (undone on failure) */
	int64_t used;   /* its allocation, read after */
};

/*
 * The user's home disk volume as h says: made (a volume of that name
 * there already is not ours: refused, left alone), made again (a dead
 * copy's), or the kept one checked.
 */
static int
make_home(virConnectPtr conn, const char *pool, const char *user, struct home_step *h, struct vdi_err *err)
{
	struct vdi_volume_spec spec = { .capacity = h->size, .format = "qcow2", .name = h->volume };
	const char *vol = h->volume;
	int64_t cap = 0;

	vdi_home_volume(user, h->volume, sizeof(h->volume));
	if (h->how == VDI_HOME_NONE)
		return 0;
	if (h->how == VDI_HOME_KEPT) {
		if (vdi_vol_info(conn, pool, vol, &cap, &h->used, err) < 0 && err->code == VDI_ENOTFOUND) {
			/* Made through another host: this one's view of the pool is stale. */
			vdi_err_clear(err);
			if (vdi_pool_refresh(conn, pool, err) == 0)
				vdi_vol_info(conn, pool, vol, &cap, &h->used, err);
		}
		return err->code ? vdi_err_prefix(err, "its kept home disk %s", vol) : 0;
	}
	/* A dead copy's, never attached to a session: made again. */
	if (h->how == VDI_HOME_REMAKE && vdi_vol_delete(conn, pool, vol, err) < 0)
		return -1;
	/*
	 * libvirt refuses to create over any file of that name, listed or not,
	 * and leaves it as it is: a new home disk's name taken is a file
	 * planted there (or a copy vdi-tools does not know of).
	 */
	if (vdi_vol_create(conn, pool, &spec, err) < 0 && h->how == VDI_HOME_REMAKE && err->code == VDI_ECONFLICT) {
		/* Ours, made through another host: this host's view learns of it, then it goes. */
		vdi_err_clear(err);
		if (vdi_pool_refresh(conn, pool, err) == 0 && vdi_vol_delete(conn, pool, vol, err) >= 0)
			vdi_vol_create(conn, pool, &spec, err);
	}
	if (err->code) {
		if (h->how == VDI_HOME_NEW && err->code == VDI_ECONFLICT)
			vdi_err_set(err, VDI_R_EXISTS, "a volume %s that vdi-tools did not make is in pool %s "
				    "already; left alone (move it away, or delete it, and copy again)", vol, pool);
		return -1;
	}
	h->made = true;
	vdi_file_test_stop("home");
	return vdi_vol_info(conn, pool, vol, &cap, &h->used, err);
}

/* Make the disk overlay, the home disk and the seed of claimed user VM id (again: it had them). */
static int
make_volumes(virConnectPtr conn, const struct vdi_master *m, const struct vdi_uservm_spec *u, int64_t id,
	     const char *disk, const char *seedvol, struct home_step *home, bool again, const struct vdi_copy_opts *o,
	     struct vdi_err *err)
{
	struct vdi_seed seed = { 0 };
	char *mpath = NULL, hdev[128];
	unsigned char *iso = NULL;
	size_t isolen = 0;
	int ret = -1;

	/*
	 * Our claim is held: volumes of these names are leftovers of a copy
	 * that died, or a user VM's own made again (its seed is overwritten
	 * in place when it can be, below).
	 */
	if (vdi_vol_delete(conn, m->pool, disk, err) < 0 || (!again && vdi_vol_delete(conn, m->pool, seedvol, err) < 0))
		return -1;
	mpath = vdi_vol_path(conn, m->pool, m->volume, err);
	if (!mpath && err->code == VDI_ENOTFOUND) {
		/* Uploaded through another host: this one's view of the pool is stale. */
		vdi_err_clear(err);
		if (vdi_pool_refresh(conn, m->pool, err) == 0)
			mpath = vdi_vol_path(conn, m->pool, m->volume, err);
	}
	if (!mpath) {
		vdi_err_prefix(err, "master '%s'", m->name);
		goto out;
	}
	if (make_home(conn, m->pool, u->user, home, err) < 0)
		goto out;
	{
		struct vdi_volume_spec spec = { .name = disk, .capacity = u->disk, .format = "qcow2",
						.backing_path = mpath, .backing_format = m->format };
		if (vdi_vol_create(conn, m->pool, &spec, err) < 0)
			goto out;
	}
	seed.uservm_id = id;
	seed.user = u->user;
	seed.hostname = u->hostname;
	seed.packages = u->apps;
	seed.npackages = u->napps;
	seed.poweroff = m->prepare && strcmp(m->prepare, "none") != 0;
	{
		struct vdi_profile reg = vdi_master_profile(m), p;
		vdi_profile_resolve(&reg, &p);
		seed.windows = vdi_profile_windows(&p);
		if (home->how != VDI_HOME_NONE) {
			vdi_seed_home_device(p.disk_bus, hdev, sizeof(hdev));
			seed.home_device = hdev;
			seed.home_mount = o->home_mount;
		}
	}
	if (!(iso = vdi_seed_image(&seed, &isolen, err)) || upload(conn, m->pool, seedvol, iso, isolen, again, err) < 0)
		goto out;
	if (o->interrupted && *o->interrupted) {
		vdi_err_set(err, VDI_R_FAIL, "interrupted");
		goto out;
	}
	ret = 0;
out:
	if (ret < 0) {
		vdi_vol_delete(conn, m->pool, disk, VDI_ERR_SCRATCH);
		vdi_vol_delete(conn, m->pool, seedvol, VDI_ERR_SCRATCH);
		/* Only what this copy made: a kept home disk, or a planted file, stays. */
		if (home->made)
			vdi_vol_delete(conn, m->pool, home->volume, VDI_ERR_SCRATCH);
		home->made = false;
	}
	free(iso);
	free(mpath);
	return ret;
}

/*
 * A user VM whose first boot failed (or was abandoned), or whose update a
 * dead process left half way, or that is claimed for its update now, is
 * made again from its master as recorded (the new one, for an update),
 * with the sizes it was asked for and its home disk as it is: its claim is
 * back to creating (vdi_uservm_retry, vdi_uservm_update_claim), its
 * system disk and seed are remade.
 */
static int
copy_again(struct vdi_db *db, const char *user, int64_t id, const struct vdi_copy_opts *o,
	   struct vdi_copy_result *res, struct vdi_err *err)
{
	struct vdi_uservm uv = { 0 };
	struct vdi_master m = { 0 };
	struct vdi_uservm_spec u = { 0 };
	struct home_step home = { 0 };
	virConnectPtr conn;
	char detail[300];
	bool prepare;
	int ret = -1;

	if (vdi_uservm_get(db, user, &uv, err) < 0 || vdi_master_get(db, uv.master, &m, err) < 0)
		goto out;
	u.user = uv.user;
	u.pool = uv.pool;
	u.hostname = uv.hostname;
	u.master_id = m.id;
	u.mem = uv.mem;
	u.vcpus = uv.vcpus;
	/* A new master larger than the disk asked for: the disk is the master's size. */
	u.disk = uv.disk < m.virtual_size ? m.virtual_size : uv.disk;
	u.apps = uv.apps;
	u.napps = uv.napps;
	if (uv.home) {
		home.how = strcmp(uv.home_state, "ready") == 0 ? VDI_HOME_KEPT : VDI_HOME_REMAKE;
		home.size = uv.home_size;
	}
	prepare = strcmp(m.prepare, "none") != 0;
	if (!(conn = vdi_conns_for_pool(o->conns, db, uv.pool, o->host, err)) ||
	    make_volumes(conn, &m, &u, id, uv.volume, uv.seed, &home, true, o, err) < 0)
		goto out;
	vdi_file_test_stop("remade");
	if (uv.updating_from)
		snprintf(detail, sizeof(detail), "on master %s (from %s), disk=%lld, home disk kept: %s", m.name,
			 uv.updating_from, (long long)u.disk, uv.home ? "yes" : "none");
	else
		snprintf(detail, sizeof(detail), "again from master=%s", m.name);
	/* An update that is ready now is told by the VMDB's own uservm-updated, in the same transaction. */
	if (vdi_uservm_made(db, id, prepare, !uv.updating_from ? "uservm-add" : prepare ? "uservm-remade" : NULL,
			    detail, home.used,
			    err) < 0)
		goto out;
	res->master = vdi_xstrdup(m.name);
	res->volume = vdi_xstrdup(uv.volume);
	res->disk = u.disk;
	res->mem = uv.mem;
	res->vcpus = uv.vcpus;
	res->prepare = prepare;
	res->again = true;
	res->home = home.size;
	res->home_kept = home.how == VDI_HOME_KEPT;
	if (uv.updating_from)
		res->updated_from = vdi_xstrdup(uv.updating_from);
	ret = 0;
out:
	if (ret < 0)
		vdi_uservm_fail(db, id, err->msg, VDI_ERR_SCRATCH);
	vdi_uservm_clear(&uv);
	vdi_master_clear(&m);
	return ret;
}

int
vdi_copy(struct vdi_db *db, const struct vdi_copy_req *q, const struct vdi_copy_opts *o,
	 struct vdi_copy_result *res, struct vdi_err *err)
{
	struct vdi_master m = { 0 };
	struct vdi_uservm_spec u = { 0 };
	char *mname = NULL, disk[128], seedvol[128], host[64], detail[300];
	struct home_step home = { 0 };
	char **extra = NULL;
	size_t nextra = 0;
	virConnectPtr conn;
	int64_t id = 0;
	bool takeover, claimed = false;
	int ret = -1;

	memset(res, 0, sizeof(*res));
	if (vdi_name_check("user", q->user, err) < 0)
		goto out;
	vdi_err_object(err, "%s", q->user);
	if (!vdi_db_dry_run(db)) {
		int rc = vdi_uservm_retry(db, q->user, &id, err);
		if (rc != 0)
			return rc < 0 ? -1 : copy_again(db, q->user, id, o, res, err);
	}
	if (q->master)
		mname = vdi_xstrdup(q->master);
	else if (!q->os)
		vdi_err_set(err, VDI_R_USAGE, "no master: give --master, or --os (and --app)");
	else
		vdi_master_choose(db, q->os, q->apps, q->napps, &mname, err);
	if (!mname || vdi_master_get(db, mname, &m, err) < 0)
		goto out;
	if (strcmp(m.state, "active") != 0) {
		vdi_err_set(err, VDI_R_CONFLICT, "master '%s' is %s: no new copies", m.name, m.state);
		goto out;
	}
	/* The requested apps this master lacks go in the seed, for cloud-init to install. */
	for (size_t i = 0; i < q->napps; i++)
		if (!vdi_strv_has(m.apps, m.napps, q->apps[i]))
			vdi_strv_push(&extra, &nextra, q->apps[i]);
	u.user = q->user;
	u.master_id = m.id;
	u.pool = m.pool;
	u.mem = q->mem > 0 ? q->mem : m.mem;
	u.vcpus = q->vcpus > 0 ? q->vcpus : m.vcpus;
	u.disk = q->disk > 0 ? q->disk : m.disk;
	if (vdi_host_fits_ever(db, u.pool, u.mem, u.vcpus, err) < 0)
		goto out;
	if (u.disk < m.virtual_size) {
		vdi_err_set(err, VDI_R_USAGE, "disk %lld is smaller than master '%s' (%lld)", (long long)u.disk,
			    m.name, (long long)m.virtual_size);
		goto out;
	}
	u.home = q->home > 0 ? q->home : m.home;
	if (u.home > 0 && u.home < VDI_HOME_MIN) {
		vdi_err_set(err, VDI_R_USAGE, "home disk %lld bytes is below the smallest a file system takes "
			    "(%lld MiB)", (long long)u.home, VDI_HOME_MIN >> 20);
		goto out;
	}
	if (u.home > 0 && o->home_max > 0 && u.home > o->home_max) {
		vdi_err_set(err, VDI_R_USAGE, "home disk %lld MiB is over home_max (%lld MiB)", (long long)(u.home >> 20),
			    (long long)(o->home_max >> 20));
		goto out;
	}
	u.expires = o->expires;
	u.tags = o->tags;
	u.ntags = o->ntags;
	u.apps = extra;
	u.napps = nextra;
	vdi_seed_hostname(q->user, host, sizeof(host));
	u.hostname = host;
	vdi_uservm_volumes(q->user, disk, sizeof(disk), seedvol, sizeof(seedvol));
	/* Rule 2: the claim is committed before any volume is made (with dry_run: checked, rolled back). */
	if (vdi_uservm_claim(db, &u, &id, &takeover, &home.how, &home.size, err) < 0)
		goto out;
	claimed = !vdi_db_dry_run(db);
	if (!vdi_db_dry_run(db)) {
		if (!(conn = vdi_conns_for_pool(o->conns, db, m.pool, o->host, err)) ||
		    make_volumes(conn, &m, &u, id, disk, seedvol, &home, false, o, err) < 0)
			goto out;
		snprintf(detail, sizeof(detail), "master=%s disk=%lld mem=%lld vcpus=%lld home=%lld%s", m.name,
			 (long long)u.disk, (long long)u.mem, (long long)u.vcpus, (long long)home.size,
			 home.how == VDI_HOME_KEPT ? " (kept)" : "");
		res->prepare = strcmp(m.prepare, "none") != 0;
		if (vdi_uservm_made(db, id, res->prepare, "uservm-add", detail, home.used, err) < 0) {
			vdi_vol_delete(conn, m.pool, disk, VDI_ERR_SCRATCH);
			vdi_vol_delete(conn, m.pool, seedvol, VDI_ERR_SCRATCH);
			if (home.made)
				vdi_vol_delete(conn, m.pool, home.volume, VDI_ERR_SCRATCH);
			goto out;
		}
		if (res->prepare)
			vdi_file_test_stop("preparing");
		claimed = false;
	}
	res->master = vdi_xstrdup(m.name);
	res->volume = vdi_xstrdup(disk);
	res->disk = u.disk;
	res->mem = u.mem;
	res->vcpus = u.vcpus;
	res->home = home.size;
	res->home_kept = home.how == VDI_HOME_KEPT;
	for (size_t i = 0; i < nextra; i++)
		vdi_strv_push_copy(&res->apps_added, &res->napps_added, extra[i]);
	ret = 0;
out:
	if (claimed)
		vdi_uservm_unclaim(db, id, VDI_ERR_SCRATCH);
	free(extra); /* borrowed strings */
	free(mname);
	vdi_master_clear(&m);
	return ret;
}

/*
 * --rm --purge-home of a user with no user VM: the home disk they kept
 * (volume first, then the row), or not found (3) if there is none.
 */
static int
purge_kept_home(struct vdi_db *db, const char *user, const struct vdi_copy_opts *o, struct vdi_err *err)
{
	struct vdi_home h;
	virConnectPtr conn;
	int rc, ret = -1;

	vdi_err_clear(err);
	if ((rc = vdi_home_get(db, user, &h, err)) <= 0) {
		if (rc == 0)
			vdi_err_set(err, VDI_R_NO_USER, "user '%s' has no user VM and no home disk", user);
		return -1;
	}
	if (vdi_db_dry_run(db)) {
		ret = 0;
		goto out;
	}
	if (!(conn = vdi_conns_for_pool(o->conns, db, h.pool, o->host, err)) ||
	    vdi_vol_delete(conn, h.pool, h.volume, err) < 0 || vdi_home_rm_row(db, user, err) < 0)
		goto out;
	ret = 0;
out:
	vdi_home_clear(&h);
	return ret;
}

int
vdi_copy_rm(struct vdi_db *db, const char *user, const struct vdi_copy_opts *o, enum vdi_copy_home_rm *home,
	    struct vdi_err *err)
{
	struct vdi_uservm u = { 0 };
	struct vdi_session s = { 0 };
	char layer[160], image[160];
	virConnectPtr conn;
	int ret = -1;

	*home = VDI_COPY_HOME_NONE;
	if (vdi_name_check("user", user, err) < 0)
		return -1;
	vdi_err_object(err, "%s", user);
	if (o->force && vdi_session_of_user(db, user, &s, err) == 0) {
		/* End it for real: its guest runs on the disk about to be deleted. */
		if (vdi_db_dry_run(db)) {
			vdi_session_clear(&s);
			return vdi_uservm_get(db, user, &u, err) < 0 ? -1 : (vdi_uservm_clear(&u), 0);
		}
		ret = vdi_reaper_end(db, o->conns, &s, s.state, "admin", NULL, err);
		vdi_session_clear(&s);
		if (ret < 0)
			return vdi_err_prefix(err, "ending its session");
		ret = -1;
	}
	vdi_err_clear(err); /* "no session" is no error here; the object stays */
	if (vdi_uservm_rm_begin(db, user, &u, err) < 0) {
		/* No user VM, and the home disk it left is to go (a purge cut short, or a kept one). */
		if (err->reason != VDI_R_NO_USER || !o->purge_home || purge_kept_home(db, user, o, err) < 0)
			return -1;
		*home = VDI_COPY_HOME_PURGED_ONLY;
		return 0;
	}
	if (vdi_db_dry_run(db)) {
		*home = !u.home ? VDI_COPY_HOME_NONE : o->purge_home ? VDI_COPY_HOME_PURGED : VDI_COPY_HOME_KEPT;
		ret = 0;
		goto out;
	}
	/*
	 * Volumes first: a crash after them leaves a row that rm simply removes
	 * next time.  Its warm image and layer before the disk the layer stands
	 * on (older ones, if any, are vm-reap --orphans').
	 */
	if (u.warm)
		vdi_session_warm_names(u.warm, user, NULL, 0, layer, sizeof(layer), image, sizeof(image));
	if (!(conn = vdi_conns_for_pool(o->conns, db, u.pool, o->host, err)) ||
	    (u.warm && (vdi_vol_delete_unlisted(conn, u.pool, image, err) < 0 ||
			vdi_vol_delete(conn, u.pool, layer, err) < 0)) ||
	    vdi_vol_delete(conn, u.pool, u.volume, err) < 0 || vdi_vol_delete(conn, u.pool, u.seed, err) < 0)
		goto out;
	if (vdi_uservm_rm_row(db, u.id, user, err) < 0)
		goto out;
	/* The home disk is the user's: kept for their next user VM unless purged (row after volume, as above). */
	*home = u.home ? VDI_COPY_HOME_KEPT : VDI_COPY_HOME_NONE;
	if (u.home && o->purge_home) {
		if (vdi_vol_delete(conn, u.pool, u.home, err) < 0 || vdi_home_rm_row(db, user, err) < 0)
			goto out;
		*home = VDI_COPY_HOME_PURGED;
	}
	ret = 0;
out:
	vdi_uservm_clear(&u);
	return ret;
}

int
vdi_copy_update(struct vdi_db *db, const char *user, const struct vdi_copy_opts *o, struct vdi_copy_result *res,
		struct vdi_err *err)
{
	struct vdi_uservm u = { 0 };
	int64_t id = 0;
	bool warm;
	int rc, ret = -1;

	memset(res, 0, sizeof(*res));
	if (vdi_name_check("user", user, err) < 0)
		return -1;
	vdi_err_object(err, "%s", user);
	if (vdi_uservm_get(db, user, &u, err) < 0)
		return -1;
	warm = u.warm != 0;
	if (u.updating_from) {
		/* Left half way by a process that died, or failed: finish it. */
		if (vdi_db_dry_run(db) || (rc = vdi_uservm_retry(db, user, &id, err)) == 0) {
			if (!vdi_db_dry_run(db))
				vdi_err_set(err, VDI_R_BUSY, "its update to master %s is under way in another process",
					    u.master);
			else
				ret = 0;
			goto out;
		}
	} else if (!u.update_to) {
		vdi_err_set(err, VDI_R_NOTFOUND, "its master %s is up to date: nothing to update", u.master);
		goto out;
	} else if (vdi_db_dry_run(db)) {
		ret = 0;
		goto out;
	} else {
		id = u.id;
		rc = vdi_uservm_update_claim(db, id, err);
		if (rc == 0)
			vdi_err_set(err, VDI_R_CONFLICT, "it has a session: updated to master %s after it ends",
				    u.update_to);
	}
	if (rc <= 0)
		goto out;
	vdi_file_test_stop("update-claimed");
	if (copy_again(db, user, id, o, res, err) < 0)
		goto out;
	res->was_warm = warm;
	ret = 0;
out:
	vdi_uservm_clear(&u);
	return ret;
}

int
vdi_copy_home_resize(struct vdi_db *db, const char *user, int64_t size, const struct vdi_copy_opts *o,
		     struct vdi_err *err)
{
	struct vdi_home h = { 0 };
	virConnectPtr conn;
	int64_t cap = 0, used = 0;
	int rc, ret = -1;

	if (vdi_name_check("user", user, err) < 0)
		return -1;
	vdi_err_object(err, "%s", user);
	if (o->home_max > 0 && size > o->home_max)
		return vdi_err_set(err, VDI_R_USAGE, "home disk %lld MiB is over home_max (%lld MiB)",
				   (long long)(size >> 20), (long long)(o->home_max >> 20));
	if ((rc = vdi_home_resize_check(db, user, size, &h, err)) < 0)
		return -1;
	if (rc == 1 || vdi_db_dry_run(db)) {
		ret = 0;
		goto out;
	}
	/* A session started since the check holds the image: qemu-img's lock refuses the resize. */
	if (!(conn = vdi_conns_for_pool(o->conns, db, h.pool, o->host, err)) ||
	    vdi_vol_resize(conn, h.pool, h.volume, size, err) < 0 ||
	    vdi_vol_info(conn, h.pool, h.volume, &cap, &used, err) < 0)
		goto out;
	ret = vdi_home_resized(db, &h, cap, used, err);
out:
	vdi_home_clear(&h);
	return ret;
}

/* ---- batches: several copies in flight, results in input order ---- */

struct many {
	const struct vdi_copy_req *reqs;
	const struct vdi_copy_opts *o;
	const struct vdi_copy_batch *b;
	size_t n;
	size_t *first;             /* input i -> the first input of the same user */
	struct vdi_copy_result *res;
	struct vdi_err *errs;
	struct vdi_order order;
	struct vdi_workers w;
};

/* Input i's turn has come (vdi_order): tell the caller. */
static void
many_say(void *ctx, size_t i, size_t job)
{
	struct many *m = ctx;
	bool keep = false;

	(void)job;
	m->b->done(m->b->ctx, i, m->errs[i].code ? NULL : &m->res[i], m->errs[i].code ? &m->errs[i] : NULL, &keep);
	if (keep)
		memset(&m->res[i], 0, sizeof(m->res[i]));
}

static void
many_job(void *ctx, int worker, size_t t)
{
	struct many *m = ctx;
	struct vdi_copy_opts o = *m->o;
	struct vdi_err *e = &m->errs[t];
	struct vdi_db *db;

	if (m->first[t] != t) {
		vdi_err_set(e, VDI_R_CONFLICT, "named more than once in this batch (made once)");
		vdi_err_object(e, "%s", m->reqs[t].user);
	} else if (o.interrupted && *o.interrupted) {
		vdi_err_set(e, VDI_R_FAIL, "interrupted");
		vdi_err_object(e, "%s", m->reqs[t].user);
	} else if (vdi_workers_get(&m->w, worker, &db, &o.conns, e) < 0) {
		vdi_err_object(e, "%s", m->reqs[t].user);
	} else if (m->b->rm) {
		vdi_copy_rm(db, m->reqs[t].user, &o, &m->res[t].home_rm, e);
	} else if (m->b->update) {
		vdi_copy_update(db, m->reqs[t].user, &o, &m->res[t], e);
	} else {
		vdi_copy(db, &m->reqs[t], &o, &m->res[t], e);
	}
	vdi_order_done(&m->order, t);
}

void
vdi_copy_many(const struct vdi_copy_req *reqs, size_t n, const struct vdi_copy_opts *o,
	      const struct vdi_copy_batch *b)
{
	struct many m = { .reqs = reqs, .o = o, .b = b, .n = n,
			  .w = { .db = b->db, .timeout_ms = b->timeout_ms } };
	int parallel = b->parallel < 1 ? 1 : b->parallel;

	if ((size_t)parallel > n)
		parallel = n ? (int)n : 1;
	vdi_workers_init(&m.w, parallel);
	m.first = vdi_xcalloc(n + 1, sizeof(*m.first));
	m.res = vdi_xcalloc(n + 1, sizeof(*m.res));
	m.errs = vdi_xcalloc(n + 1, sizeof(*m.errs));
	/* The same user twice is made once (the first); the others say so. */
	for (size_t i = 0; i < n; i++) {
		m.first[i] = i;
		for (size_t k = 0; k < i && m.first[i] == i; k++)
			if (strcmp(reqs[k].user, reqs[i].user) == 0)
				m.first[i] = k;
	}
	vdi_order_init(&m.order, n, NULL, many_say, &m);
	vdi_batch_run(n, parallel, many_job, &m);
	vdi_order_destroy(&m.order);
	vdi_workers_free(&m.w);
	for (size_t t = 0; t < n; t++)
		vdi_copy_result_clear(&m.res[t]);
	free(m.first);
	free(m.res);
	free(m.errs);
}

int
vdi_copy_request(struct vdi_db *db, const struct vdi_request *r, const struct vdi_copy_opts *o,
		 struct vdi_copy_result *res, struct vdi_err *err)
{
	struct vdi_copy_req q = { .user = r->user, .master = r->master, .mem = r->mem, .vcpus = r->vcpus,
				  .disk = r->disk, .home = r->home };
	struct vdi_group_verdict gv;
	struct vdi_err e = { 0 };
	char detail[256];
	int rc;

	/* A grant revoked since the request was made: it is turned down, in words. */
	if (vdi_group_user_may(db, r->user, r->master, &gv, err) < 0) {
		if (err->reason != VDI_R_NOT_ENTITLED || vdi_db_dry_run(db))
			return -1;
		snprintf(detail, sizeof(detail), "%.250s", err->msg);
		if (vdi_request_finish(db, r->id, "rejected", detail, &e) < 0)
			return vdi_err_copy(err, &e);
		return -1;
	}
	rc = vdi_copy(db, &q, o, res, err);
	if (vdi_db_dry_run(db) || (rc < 0 && err->code == VDI_ETEMP))
		return rc;
	snprintf(detail, sizeof(detail), "%.250s", rc < 0 ? err->msg : "");
	if (vdi_request_finish(db, r->id, rc < 0 ? "failed" : "done", rc < 0 ? detail : NULL, &e) < 0 && rc == 0) {
		vdi_copy_result_clear(res);
		return vdi_err_copy(err, &e);
	}
	return rc;
}
