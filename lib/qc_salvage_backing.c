/* The backing file of a salvaged image (qc_salvage.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qc_chain.h"
#include "qc_follow.h"
#include "qc_guest.h"
#include "qc_io.h"
#include "qc_salvage.h"
#include "qc_util.h"

/* QEMU's limit on a backing file name */
#define MAX_BACKING_NAME 1023u

static char *sentence(const char *fmt, const char *a, const char *b)
{
    size_t n = strlen(fmt) + strlen(a) + strlen(b) + 1;
    char *m = malloc(n);
    if (m)
        snprintf(m, n, fmt, a, b);
    return m;
}

/* QEMU combines a relative name with the directory of the image. */
static char *combine(const char *image, const char *name)
{
    const char *slash = strrchr(image, '/');
    if (name[0] == '/' || !slash)
        return strdup(name);
    size_t dir = (size_t)(slash - image + 1), n = dir + strlen(name) + 1;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%.*s%s", (int)dir, image, name);
    return p;
}

static char *read_name(struct qc_salvage *s)
{
    uint32_t len = s->backing_name_size;
    if (len > MAX_BACKING_NAME || !qc_file_has(s->f, s->backing_name_offset, len))
        return NULL;
    char *name = calloc(len + 1, 1);
    if (name && qc_file_read(s->f, s->backing_name_offset, name, len) != 0) {
        free(name);
        return NULL;
    }
    if (name && strlen(name) != len) {   /* a NUL inside: not a name QEMU wrote */
        free(name);
        return NULL;
    }
    return name;
}

static int open_file(struct qc_salvage_backing *b, const char *full, char **why)
{
    char *err = NULL;
    b->chain = calloc(1, sizeof(*b->chain));
    if (!b->chain)
        return QC_E_NOMEM;
    int rc = qc_chain_open(b->chain, full, QC_CHAIN_KEYLESS, NULL, &err);
    if (rc == 0) {
        b->is_chain = true;
        return 0;
    }
    free(b->chain);
    b->chain = NULL;
    if (rc != QC_E_FORMAT) {
        *why = err ? err : sentence("%s%s: cannot be opened", full, "");
        return rc;
    }
    free(err);
    rc = qc_file_open(&b->raw, full, 0, NULL);
    if (rc)
        *why = sentence("%s: %s", full, qc_strerror(rc));
    return rc;
}

int qc_salvage_backing_open(struct qc_salvage *s, struct qc_salvage_backing *b,
                            const char *image, char **why)
{
    memset(b, 0, sizeof(*b));
    b->raw.fd = -1;
    *why = NULL;
    if (!s->has_backing)
        return 0;
    char *name = read_name(s);
    if (!name) {
        *why = sentence("the backing file name in the header is not readable%s%s", "", "");
        return -EINVAL;
    }
    char *full = combine(image, name);
    int rc = full ? 0 : QC_E_NOMEM;
    if (rc == 0 && (*why = qc_follow_refusal(image, name, full, QC_FOLLOW_BACKING)))
        rc = -EPERM;
    if (rc == 0)
        rc = open_file(b, full, why);
    free(name);
    free(full);
    b->open = rc == 0;
    s->backing_read = b->open;
    return rc;
}

int qc_salvage_backing_read(struct qc_salvage_backing *b, uint64_t off, uint8_t *buf,
                            size_t len)
{
    if (b->is_chain) {
        uint64_t fail_off;
        return qc_guest_read(b->chain->top, off, buf, len, &fail_off);
    }
    int64_t got = qc_file_read_padded(&b->raw, off, buf, len);
    return got < 0 ? (int)got : 0;
}

int qc_salvage_backing_fd(const struct qc_salvage_backing *b)
{
    if (!b->open)
        return -1;
    return b->is_chain ? b->chain->top->file->fd : b->raw.fd;
}

void qc_salvage_backing_close(struct qc_salvage_backing *b)
{
    if (b->is_chain) {
        qc_chain_close(b->chain);
        free(b->chain);
    } else if (b->open) {
        qc_file_close(&b->raw);
    }
    memset(b, 0, sizeof(*b));
}
