/* xml_dl.c: loads libxml2 at run time for the HTML and feed parsers (see
 * xml_dl.h for why it is not linked). */
#include "brain/xml_dl.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

learn_xml_api learn_xml;

#define SYM(field, name) {name, offsetof(learn_xml_api, field)}
static const struct {
    const char *name;
    size_t off;
} syms[] = {
    SYM(init_parser, "xmlInitParser"),
    SYM(html_read_memory, "htmlReadMemory"),
    SYM(read_memory, "xmlReadMemory"),
    SYM(doc_get_root_element, "xmlDocGetRootElement"),
    SYM(free_doc, "xmlFreeDoc"),
    SYM(node_get_content, "xmlNodeGetContent"),
    SYM(get_prop, "xmlGetProp"),
    SYM(get_last_error, "xmlGetLastError"),
    SYM(reset_last_error, "xmlResetLastError"),
    SYM(set_structured_error_func, "xmlSetStructuredErrorFunc"),
    SYM(free_, "xmlFree"), /* a variable: its address */
};

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static char load_err[256];

static void load(void)
{
    void *h = dlopen("libxml2.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(load_err, sizeof load_err, "libxml2 is not installed: %s", dlerror());
        return;
    }
    learn_xml_api api;
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
        void *f = dlsym(h, syms[i].name);
        if (!f) {
            snprintf(load_err, sizeof load_err, "libxml2 is not installed: libxml2.so.2 has no %s",
                     syms[i].name);
            dlclose(h);
            return;
        }
        memcpy((char *)&api + syms[i].off, &f, sizeof f); /* object to function pointer */
    }
    api.init_parser(); /* once, before threads parse */
    learn_xml = api;
}

int learn_xml_load(char *err, size_t errlen)
{
    pthread_once(&load_once, load);
    if (learn_xml.free_)
        return 0;
    snprintf(err, errlen, "%s", load_err);
    return -ENOENT;
}
