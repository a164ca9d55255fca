/* The views of qc-dump as commands: each opens what it needs, prints its
 * view and its messages (named after the tool PROG), and returns the exit
 * status qc-dump has for it.  qc-dump and qc-shell both run these. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qc_chain.h"
#include "qc_util.h"
#include "qc_view.h"

int qc_view_header_as(FILE *out, struct qc_image *img, enum qc_header_view v)
{
    switch (v) {
    case QC_HV_LEGACY: return qc_view_header(out, img, QC_ERA_LEGACY);
    case QC_HV_EXTS: return qc_view_exts(out, img, QC_ERA_CURRENT);
    case QC_HV_HEX: return qc_view_hex(out, img);
    case QC_HV_FEATURES: return qc_view_features(out, img);
    case QC_HV_HEADER: break;
    }
    return qc_view_header(out, img, QC_ERA_CURRENT);
}

void qc_view_header_incomplete(FILE *err, const char *prog, const char *path,
                               const struct qc_image *img)
{
    fprintf(err, "%s: %s: the header or extension area cannot be read whole "
            "(file of %llu bytes)\n", prog, path, (unsigned long long)img->file.size);
}

void qc_view_open_warnings(FILE *err, const char *prog, const struct qc_image *img)
{
    for (size_t i = 0; i < img->problems.n; i++)
        fprintf(err, "%s: warning: %s\n", prog, qc_esc_qemu(img->problems.v[i].message));
}

struct json_object *qc_json_image_doc(struct qc_image *img, const char *path, int *rc)
{
    struct json_object *doc = json_object_new_object();

    json_object_object_add(doc, "filename", qc_json_text(path));
    json_object_object_add(doc, "header", qc_json_header(img));
    json_object_object_add(doc, "extensions", qc_json_extensions(img));
    json_object_object_add(doc, "feature_table", qc_json_feature_table(img));
    json_object_object_add(doc, "features", qc_json_features(img));
    json_object_object_add(doc, "problems", qc_json_problems(&img->problems));
    *rc = img->exts.status != QC_EXT_OK || img->hdr.avail < QC_HEADER_V2_LEN ? 1 : 0;
    return doc;
}

static const char *view_snapshot;

void qc_view_set_snapshot(const char *spec)
{
    view_snapshot = spec;
}

int qc_view_open_chain(struct qc_chain *c, const char *path, unsigned flags, FILE *err,
                       const char *prog)
{
    char *msg = NULL;
    int r = qc_chain_open_snapshot(c, path, flags, view_snapshot, err, &msg);

    if (r == QC_E_FORMAT) {
        fprintf(err, "%s: %s: not a qcow2 image\n", prog, path);
        free(msg);
        return 63;
    }
    if (r < 0) {
        fprintf(err, "%s: %s\n", prog, msg ? qc_esc_qemu(msg) : qc_strerror(r));
        free(msg);
        return 1;
    }
    free(msg);
    return 0;
}

void qc_view_note_keyless(FILE *err, const char *prog, const char *path, const char *done)
{
    fprintf(err, "%s: note: %s: encrypted image: %s without the key, guest data not read\n", prog,
            qc_esc(path), done);
}

int qc_view_read_cmd(FILE *out, FILE *err, const char *prog, const char *path,
                     uint64_t off, uint64_t len, bool backing, bool note)
{
    struct qc_chain c;
    uint64_t at = 0;
    int r;

    if ((r = qc_view_open_chain(&c, path, QC_CHAIN_KEYLESS | (backing ? 0 : QC_CHAIN_NO_BACKING),
                                err, prog)) != 0)
        return r;
    r = qc_view_guest_hexdump(out, c.top, off, len, &at);
    fflush(out);
    if (r < 0)
        fprintf(err, "%s: read failed at guest offset %llu: %s\n", prog, (unsigned long long)at,
                r == -ENOTSUP ? "encrypted data" : strerror(EIO));
    else if (c.top->backing_skipped && note)
        fprintf(err, "%s: note: backing file not opened (--backing reads through it); "
                "unallocated ranges read as zeros\n", prog);
    qc_chain_close(&c);
    return r < 0 ? 1 : 0;
}

int qc_view_map_failed(FILE *out, FILE *err, const char *prog)
{
    fflush(out);
    fprintf(err, "%s: Could not read file metadata: %s\n", prog, strerror(EIO));
    return 1;
}

int qc_view_map_cmd(FILE *out, FILE *err, const char *prog, const char *path, bool qemu_json)
{
    struct qc_chain c;
    uint64_t at = 0;
    int r;

    if ((r = qc_view_open_chain(&c, path, 0, err, prog)) != 0)
        return r;
    if (qc_chain_encrypted(&c))
        qc_view_note_keyless(err, prog, path, "mapped");
    if (qemu_json)
        r = qc_view_map_json(out, &c, &at);
    else
        r = qc_view_map_text(out, &c, &at);
    qc_chain_close(&c);
    return r < 0 ? qc_view_map_failed(out, err, prog) : 0;
}

int qc_view_hexdump_cmd(FILE *out, FILE *err, const char *prog, struct qc_image *img,
                        const char *path, uint64_t off, uint64_t len)
{
    int r = qc_view_host_hexdump(out, &img->file, off, len);

    if (r < 0) {
        fflush(out);
        fprintf(err, "%s: %s: %s\n", prog, path, qc_strerror(r));
        return 1;
    }
    return 0;
}
