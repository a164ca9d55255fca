/* The reverse map and the forward map of one offset, for people: what a
 * host cluster is used for, and where a guest offset lives. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qc_chain.h"
#include "qc_cluster.h"
#include "qc_endian.h"
#include "qc_l2.h"
#include "qc_map.h"
#include "qc_util.h"
#include "qc_view.h"

int qc_view_cluster(FILE *out, FILE *err, const char *prog, struct qc_image *img,
                    const char *path, uint64_t off)
{
    struct qc_cluster_info info;
    uint64_t k;
    int r;

    if (!img->geometry_ok) {
        fprintf(err, "%s: %s: no cluster size: the header is not one QEMU would open\n",
                prog, path);
        return 1;
    }
    k = off >> img->cluster_bits;
    r = qc_cluster_query(path, &k, 1, &info);
    if (r < 0) {
        fprintf(err, "%s: %s: %s\n", prog, path, qc_strerror(r));
        return 1;
    }
    if (info.state == QC_CLUSTER_UNKNOWN) {
        fprintf(err, "%s: %s: %s\n", prog, path, info.message ? qc_esc_qemu(info.message) : "unknown");
        qc_cluster_info_free(&info);
        return 1;
    }
    fprintf(out, "cluster %" PRIu64 ": host bytes 0x%" PRIx64 "-0x%" PRIx64 "%s\n", k,
            k << img->cluster_bits, ((k + 1) << img->cluster_bits) - 1,
            (k << img->cluster_bits) >= img->file.size ? " (past the end of the file)" : "");
    if (info.state == QC_CLUSTER_UNREADABLE)
        fprintf(out, "refcount: unreadable\n");
    else
        fprintf(out, "refcount: %" PRIu64 " (%s)\n", info.refcount,
                qc_cluster_state_name(info.state));
    if (!info.n)
        fprintf(out, "used by: nothing\n");
    for (size_t i = 0; i < info.n; i++) {
        char *d = qc_cluster_use_describe(&info.uses[i]);
        fprintf(out, "used by: %s", d ? d : "?");
        if (info.uses[i].entry)
            fprintf(out, ", entry 0x%016" PRIx64, info.uses[i].entry);
        fputc('\n', out);
        free(d);
    }
    qc_cluster_info_free(&info);
    return 0;
}

/* The L2 entry of guest cluster L2_INDEX in the table at L2_OFF, as the
 * file holds it. */
static int read_l2_entry(struct qc_node *n, uint64_t l2_off, uint64_t l2_index,
                         uint64_t *raw, uint64_t *bitmap, uint64_t *at)
{
    uint8_t b[16];
    unsigned es = n->img.l2_entry_size;
    int r;

    *at = l2_off + l2_index * es;
    if ((r = qc_file_read(n->file, *at, b, es)) < 0)
        return r;
    *raw = qc_be64(b);
    *bitmap = es == 16 ? qc_be64(b + 8) : 0;
    return 0;
}

int qc_view_guest_where(FILE *out, FILE *err, const char *prog, const char *path, uint64_t off)
{
    struct qc_chain c;
    struct qc_node *n;
    struct qc_image *img;
    struct qc_l1_entry l1e;
    struct qc_l2_entry l2e;
    struct qc_host_range hr;
    uint64_t l1_index, l2_index, raw, bitmap, at;
    int r, rc = 0;

    if ((r = qc_view_open_chain(&c, path, QC_CHAIN_NO_BACKING, err, prog)) != 0)
        return r;
    n = c.top;
    img = &n->img;
    if (off >= n->length) {
        fprintf(err, "%s: guest offset 0x%" PRIx64 " is past the end of the disk "
                "(%" PRIu64 " bytes)\n", prog, off, n->length);
        rc = 1;
        goto out;
    }
    l1_index = off >> (img->cluster_bits + img->l2_bits);
    l2_index = (off >> img->cluster_bits) & (img->l2_entries - 1);
    fprintf(out, "guest offset 0x%" PRIx64 ": guest cluster %" PRIu64 ", L1 index %" PRIu64
            ", L2 index %" PRIu64 "\n", off, off >> img->cluster_bits, l1_index, l2_index);
    if (l1_index >= n->l1_size) {
        fprintf(out, "L1 entry: none (the L1 table has %" PRIu32 " entries)\n", n->l1_size);
        goto status;
    }
    l1e = qc_l1_entry_decode(n->l1[l1_index]);
    fprintf(out, "L1 entry 0x%016" PRIx64 " at host offset 0x%" PRIx64 ": ", l1e.raw,
            img->hdr.l1_table_offset + 8 * l1_index);
    if (!l1e.l2_offset) {
        fprintf(out, "no L2 table\n");
        goto status;
    }
    fprintf(out, "L2 table at 0x%" PRIx64 "%s\n", l1e.l2_offset, l1e.copied ? ", copied" : "");
    if ((r = read_l2_entry(n, l1e.l2_offset, l2_index, &raw, &bitmap, &at)) < 0) {
        fprintf(out, "L2 entry at host offset 0x%" PRIx64 ": past the end of the file\n", at);
        goto status;
    }
    l2e = qc_l2_entry_decode(raw, bitmap, img->extended_l2, n->has_data_file);
    fprintf(out, "L2 entry 0x%016" PRIx64, raw);
    if (img->extended_l2)
        fprintf(out, " bitmap 0x%016" PRIx64, bitmap);
    fprintf(out, " at host offset 0x%" PRIx64 ": %s", at, qc_cluster_type_name(l2e.type));
    if (l2e.type == QC_CT_COMPRESSED) {
        struct qc_compressed_geom g = qc_compressed_geom(img->cluster_bits);
        struct qc_compressed_desc d = qc_compressed_decode(&g, raw & ~(QC_OFLAG_COPIED |
                                                                        QC_OFLAG_COMPRESSED));
        fprintf(out, ", %" PRIu64 " bytes at 0x%" PRIx64, d.size, d.offset);
    } else if (l2e.offset) {
        fprintf(out, ", cluster at 0x%" PRIx64, l2e.offset);
    }
    if (l2e.copied)
        fprintf(out, ", copied");
    fputc('\n', out);
    if (img->extended_l2) {
        unsigned sc = (unsigned)((off >> (img->cluster_bits - 5)) & 31);
        fprintf(out, "subcluster %u: %s\n", sc,
                qc_subcluster_type_name(qc_l2_subcluster_type(&l2e, true, sc)));
    }
status:
    /* QEMU's answer for the byte, corruption reports included */
    fflush(out);
    if (qc_node_host_offset(n, off, 1, &hr) < 0) {
        fprintf(err, "%s: guest offset 0x%" PRIx64 ": %s\n", prog, off, strerror(EIO));
        rc = 1;
        goto out;
    }
    fprintf(out, "reads as: %s", qc_subcluster_type_name(hr.type));
    switch (hr.type) {
    case QC_SCT_NORMAL:
    case QC_SCT_ZERO_ALLOC:
        fprintf(out, ", host offset 0x%" PRIx64 "%s", hr.host,
                n->has_data_file ? " in the data file" : "");
        break;
    case QC_SCT_UNALLOCATED_PLAIN:
    case QC_SCT_UNALLOCATED_ALLOC:
        fprintf(out, n->backing_skipped ? " (from the backing file)" : " (zeros)");
        break;
    default:
        break;
    }
    fputc('\n', out);
out:
    qc_chain_close(&c);
    return rc;
}
