/*
 * xml.h - libvirt XML documents built with libxml2, never with printf.
 *
 * Every string that reaches these documents has been checked (names.h)
 * or comes from libvirt itself; libxml2 escapes it all the same.
 * Returned strings are the caller's to free().
 */
#ifndef VDI_XML_H
#define VDI_XML_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "profile.h"

struct vdi_volume_spec {
	const char *name;
	int64_t capacity;            /* bytes */
	const char *format;          /* qcow2, raw */
	const char *backing_path;    /* NULL: no backing store */
	const char *backing_format;
};

/*
 * libxml2 must be set up once before two threads use it (its lazily made
 * global mutexes race, and one leaks); every function here and every other
 * user of libxml2 in lib/ calls this first.  Thread-safe, cheap after the
 * first call.
 */
void vdi_xml_init(void);

/* A <volume> for virStorageVolCreateXML. */
char *vdi_xml_volume(const struct vdi_volume_spec *v, struct vdi_err *err);

struct vdi_meta;

/* The home disk's serial: the guest finds it as /dev/disk/by-id/virtio-vdi-home (and so on). */
#define VDI_HOME_SERIAL "vdi-home"

struct vdi_domain_spec {
	const char *name;
	const char *type;          /* kvm or qemu */
	int64_t mem;               /* bytes */
	int64_t vcpus;
	const char *disk_path;     /* the session's overlay */
	const char *seed_path;     /* the user VM's seed, as a cdrom; NULL: none */
	const char *home_path;     /* the user's home disk, the second disk, read-write; NULL: none */
	const char *listen;        /* SPICE listen address */
	const char *password;      /* SPICE password */
	const char *vnc_password;  /* a VNC display beside SPICE (the browser console's), same listen; NULL: none */
	const struct vdi_meta *meta;
	struct vdi_profile prof;   /* resolved (vdi_profile_resolve): every value set */
	const char *network;       /* the NIC joins this libvirt network, */
	const char *bridge;        /* or this bridge; neither: no NIC */
	const char *mac;           /* the NIC's MAC (the user VM's) */
	const char *console_log;   /* the host's file for the serial console; NULL: none */
};

/*
 * A transient desktop <domain> of the profile's devices (profile.h): the
 * disk, the seed cdrom, SPICE with a password (and VNC with its own, for
 * the browser console), a NIC, our metadata.
 */
char *vdi_xml_domain(const struct vdi_domain_spec *d, struct vdi_err *err);

/* A running domain's display ports, as libvirt gave them (0: no such display). */
struct vdi_ports {
	int64_t spice;
	int64_t vnc;
};

/* The ports of the live domain XML xml; -1 if it has no SPICE port. */
int vdi_xml_domain_ports(const char *xml, struct vdi_ports *p, struct vdi_err *err);

/* The text of the first element or attribute an XPath expression finds in xml; NULL if none. */
char *vdi_xml_xpath_string(const char *xml, const char *xpath, struct vdi_err *err);

/*
 * The migratable XML of a running desktop, made fit for the host it moves
 * to: its SPICE listens on listen, its NIC joins network (or bridge) there.
 * NULL leaves that part as it is.  A new string, the caller's to free.
 */
char *vdi_xml_domain_move(const char *xml, const char *listen, const char *network, const char *bridge,
			  struct vdi_err *err);

/* What a restore (or a move) may change in a desktop's XML; NULL or 0 leaves a part as it is. */
struct vdi_xml_edit {
	const char *listen;              /* the display's listen address */
	const char *network, *bridge;    /* the NIC joins network (or bridge) */
	bool append_log;                 /* the serial console's log goes on (a move) */
	const char *disk_from, *disk_to; /* the disk that reads disk_from reads disk_to */
	const char *password;            /* SPICE's password (any end it had is dropped) */
	const char *vnc_password;        /* VNC's, if the XML has a VNC display */
	int64_t session_id;              /* the session our metadata names */
};

/*
 * The domain XML xml with e's changes and nothing else: name, UUID, MAC
 * and devices stay, as a restore from a saved image requires.  A new
 * string, the caller's to free.
 */
char *vdi_xml_domain_edit(const char *xml, const struct vdi_xml_edit *e, struct vdi_err *err);

#endif
