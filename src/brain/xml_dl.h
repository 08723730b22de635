/* xml_dl.h: libxml2 loaded at run time (dlopen), not linked.
 *
 * Linking libxml2 maps it and what it needs (libicuuc, libicudata,
 * libstdc++, liblzma) into ippocd at start, about 2.3 MB of resident pages
 * in every cell, though only HTML documents, feeds and URLs need it.
 * learn_parse.c and learn_feed.c include this header instead of the
 * libxml2 headers: the xml and html calls below go through pointers filled
 * by learn_xml_load(), which the parsers call first (so `ippoc learn` and
 * the daemon share one code path). Calling any of them before a successful
 * load is a bug. Headers only at build time (src/brain/meson.build). */
#ifndef IPPOC_BRAIN_XML_DL_H
#define IPPOC_BRAIN_XML_DL_H

#include <libxml/HTMLparser.h>
#include <libxml/globals.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>
#include <stddef.h>

typedef struct learn_xml_api {
    void (*init_parser)(void);
    htmlDocPtr (*html_read_memory)(const char *buf, int size, const char *url, const char *enc, int opts);
    xmlDocPtr (*read_memory)(const char *buf, int size, const char *url, const char *enc, int opts);
    xmlNodePtr (*doc_get_root_element)(const xmlDoc *doc);
    void (*free_doc)(xmlDocPtr doc);
    xmlChar *(*node_get_content)(const xmlNode *n);
    xmlChar *(*get_prop)(const xmlNode *n, const xmlChar *name);
    xmlErrorPtr (*get_last_error)(void);
    void (*reset_last_error)(void);
    void (*set_structured_error_func)(void *ctx, xmlStructuredErrorFunc handler);
    /* xmlFree is a variable of function-pointer type in libxml2 (set by
     * xmlMemSetup): its address, read at each call. */
    xmlFreeFunc *free_;
} learn_xml_api;

extern learn_xml_api learn_xml;

/* dlopen("libxml2.so.2"), look up every function above and xmlInitParser(),
 * once for the process (thread safe). 0, or -ENOENT with "libxml2 is not
 * installed: <the loader's reason>" in err. */
int learn_xml_load(char *err, size_t errlen);

#undef xmlFree
#define xmlInitParser (*learn_xml.init_parser)
#define htmlReadMemory (*learn_xml.html_read_memory)
#define xmlReadMemory (*learn_xml.read_memory)
#define xmlDocGetRootElement (*learn_xml.doc_get_root_element)
#define xmlFreeDoc (*learn_xml.free_doc)
#define xmlNodeGetContent (*learn_xml.node_get_content)
#define xmlGetProp (*learn_xml.get_prop)
#define xmlGetLastError (*learn_xml.get_last_error)
#define xmlResetLastError (*learn_xml.reset_last_error)
#define xmlSetStructuredErrorFunc (*learn_xml.set_structured_error_func)
#define xmlFree (*learn_xml.free_)

#endif
