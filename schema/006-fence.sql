-- 006-fence.sql - schema 6: a host that an administrator vouches is off.
--
-- vm-hosts fence records when (fenced), after a fence agent turned the host
-- off or the administrator confirmed it: its sessions are ended host-lost,
-- the overlays they left in the shared pool may be deleted, and its domains
-- are forgotten.  A fenced host stays out of placement (admin maintenance)
-- until vm-hosts undrain; if it answers again meanwhile, vm-reap destroys
-- every domain of ours it still runs.

ALTER TABLE hosts ADD COLUMN fenced INTEGER;
