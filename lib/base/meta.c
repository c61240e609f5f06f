/* meta.c - building and reading the vdi domain <metadata> element (see meta.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlsave.h>

#include "mem.h"
#include "meta.h"
#include "names.h"
#include "parse.h"
#include "xml.h"

static int
attr_int(xmlNodePtr n, const char *name, int64_t *v, struct vdi_err *err)
{
	xmlChar *s = xmlGetProp(n, (const xmlChar *)name);
	int ret;

	if (!s)
		return vdi_err_set(err, VDI_R_FAIL, "vdi metadata without '%s'", name);
	ret = vdi_int_parse((const char *)s, 1, INT64_MAX, v, err);
	xmlFree(s);
	return ret;
}

int
vdi_meta_parse(const char *xml, struct vdi_meta *m, struct vdi_err *err)
{
	xmlDocPtr doc;
	xmlNodePtr root;
	xmlChar *user = NULL;
	int ret = -1;

	memset(m, 0, sizeof(*m));
	vdi_xml_init();
	doc = xmlReadMemory(xml, (int)strlen(xml), "metadata.xml", NULL,
			    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (!doc)
		return vdi_err_set(err, VDI_R_FAIL, "vdi metadata is not well-formed XML");
	root = xmlDocGetRootElement(doc);
	if (!root || strcmp((const char *)root->name, "session") != 0) {
		vdi_err_set(err, VDI_R_FAIL, "vdi metadata has no <session> element");
		goto out;
	}
	if (attr_int(root, "id", &m->session_id, err) < 0 ||
	    attr_int(root, "uservm", &m->uservm_id, err) < 0)
		goto out;
	user = xmlGetProp(root, (const xmlChar *)"user");
	if (!user || !vdi_name_valid((const char *)user)) {
		vdi_err_set(err, VDI_R_FAIL, "vdi metadata has no valid 'user'");
		goto out;
	}
	m->user = vdi_xstrdup((const char *)user);
	ret = 0;
out:
	if (user)
		xmlFree(user);
	xmlFreeDoc(doc);
	return ret;
}

char *
vdi_meta_format(const struct vdi_meta *m, struct vdi_err *err)
{
	xmlDocPtr doc;
	xmlNodePtr root;
	xmlBufferPtr buf = NULL;
	char num[32], *out = NULL;

	vdi_xml_init();
	doc = xmlNewDoc((const xmlChar *)"1.0");
	root = xmlNewNode(NULL, (const xmlChar *)"session");
	xmlDocSetRootElement(doc, root);
	snprintf(num, sizeof(num), "%lld", (long long)m->session_id);
	xmlNewProp(root, (const xmlChar *)"id", (const xmlChar *)num);
	xmlNewProp(root, (const xmlChar *)"user", (const xmlChar *)m->user);
	snprintf(num, sizeof(num), "%lld", (long long)m->uservm_id);
	xmlNewProp(root, (const xmlChar *)"uservm", (const xmlChar *)num);
	buf = xmlBufferCreate();
	if (!buf || xmlNodeDump(buf, doc, root, 0, 0) < 0) {
		vdi_err_set(err, VDI_R_FAIL, "cannot format vdi metadata");
		goto out;
	}
	out = vdi_xstrdup((const char *)xmlBufferContent(buf));
out:
	if (buf)
		xmlBufferFree(buf);
	xmlFreeDoc(doc);
	return out;
}

void
vdi_meta_clear(struct vdi_meta *m)
{
	free(m->user);
	memset(m, 0, sizeof(*m));
}
