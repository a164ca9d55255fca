#include "qc_util.h"
#include "qc_snapshot.h"

#include <stdlib.h>
#include <string.h>

#include "qc_endian.h"
#include "qc_io.h"
#include "qc_reader.h"

#include <errno.h>
#include <stdio.h>

static char *copy_str(const uint8_t *p, size_t n)
{
    char *s = malloc(n + 1);
    if (!s)
        return NULL;
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

int qc_snapshot_table_parse(struct qc_snapshot_table *t, const uint8_t *buf, size_t len,
                            uint64_t offset, uint32_t nb)
{
    size_t off = 0;
    size_t max_entries = len / QC_SNAPSHOT_ENTRY_FIXED + 1;

    memset(t, 0, sizeof *t);
    t->offset = offset;
    if (nb > max_entries)
        nb = (uint32_t)max_entries;   /* each entry takes at least 40 bytes */
    t->v = calloc(nb ? nb : 1, sizeof *t->v);
    if (!t->v)
        return QC_E_NOMEM;
    for (uint32_t i = 0; i < nb; i++) {
        struct qc_snapshot *s = &t->v[t->n];
        const uint8_t *e = buf + off;
        uint64_t need;

        if (len - off < QC_SNAPSHOT_ENTRY_FIXED) {
            t->truncated = true;
            break;
        }
        s->entry_offset = offset + off;
        s->l1_table_offset = qc_be64(e);
        s->l1_size = qc_be32(e + 8);
        s->id_str_size = qc_be16(e + 12);
        s->name_size = qc_be16(e + 14);
        s->date_sec = qc_be32(e + 16);
        s->date_nsec = qc_be32(e + 20);
        s->vm_clock_nsec = qc_be64(e + 24);
        s->vm_state_size = qc_be32(e + 32);
        s->extra_data_size = qc_be32(e + 36);
        if (s->extra_data_size > QC_SNAPSHOT_MAX_EXTRA && !t->too_much_extra)
            t->too_much_extra = i + 1;
        need = (uint64_t)QC_SNAPSHOT_ENTRY_FIXED + s->extra_data_size + s->id_str_size + s->name_size;
        if (need > len - off) {
            t->truncated = true;
            break;
        }
        e += QC_SNAPSHOT_ENTRY_FIXED;
        s->extra = malloc(s->extra_data_size ? s->extra_data_size : 1);
        if (!s->extra)
            return QC_E_NOMEM;
        memcpy(s->extra, e, s->extra_data_size);
        if (s->extra_data_size >= 8) {
            s->has_vm_state_size_large = true;
            s->vm_state_size_large = qc_be64(e);
        }
        if (s->extra_data_size >= 16) {
            s->has_disk_size = true;
            s->disk_size = qc_be64(e + 8);
        }
        if (s->extra_data_size >= 24) {
            s->has_icount = true;
            s->icount = qc_be64(e + 16);
        }
        e += s->extra_data_size;
        s->id_str = copy_str(e, s->id_str_size);
        s->name = copy_str(e + s->id_str_size, s->name_size);
        if (!s->id_str || !s->name) {
            t->n++;
            return QC_E_NOMEM;
        }
        s->entry_len = (need + 7) & ~7ull;
        t->n++;
        off += (size_t)(s->entry_len < len - off ? s->entry_len : len - off);
    }
    t->size = off;
    return 0;
}

void qc_snapshot_table_free(struct qc_snapshot_table *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->v[i].extra);
        free(t->v[i].id_str);
        free(t->v[i].name);
    }
    free(t->v);
    free(t->drops);
    memset(t, 0, sizeof *t);
}

uint64_t qc_snapshot_entry_size(const struct qc_snapshot *s)
{
    uint64_t n = (uint64_t)QC_SNAPSHOT_ENTRY_FIXED + s->extra_data_size + s->id_str_size + s->name_size;
    return (n + 7) & ~7ull;
}

uint64_t qc_snapshot_entry_serialize(const struct qc_snapshot *s, uint8_t *out)
{
    uint64_t n = qc_snapshot_entry_size(s);
    uint8_t *p = out;

    memset(out, 0, n);
    qc_put_be64(p, s->l1_table_offset);
    qc_put_be32(p + 8, s->l1_size);
    qc_put_be16(p + 12, s->id_str_size);
    qc_put_be16(p + 14, s->name_size);
    qc_put_be32(p + 16, s->date_sec);
    qc_put_be32(p + 20, s->date_nsec);
    qc_put_be64(p + 24, s->vm_clock_nsec);
    qc_put_be32(p + 32, s->vm_state_size);
    qc_put_be32(p + 36, s->extra_data_size);
    p += QC_SNAPSHOT_ENTRY_FIXED;
    if (s->extra_data_size)
        memcpy(p, s->extra, s->extra_data_size);
    p += s->extra_data_size;
    memcpy(p, s->id_str, s->id_str_size);
    memcpy(p + s->id_str_size, s->name, s->name_size);
    return n;
}

static char *strdup_printf(const char *fmt, unsigned a, unsigned b)
{
    char *s = NULL;
    if (asprintf(&s, fmt, a, b) < 0)
        return NULL;
    return s;
}

static char *io_message(const char *what, int e)
{
    char *s = NULL;
    if (asprintf(&s, "%s: %s", what, qc_strerror(e)) < 0)
        return NULL;
    return s;
}

static int read_qemu(struct qc_file *f, uint64_t offset, uint32_t nb, bool repair,
                     struct qc_snapshot_table *t, char **err, char **hint)
{
    struct qc_reader rd;
    uint64_t pos = offset, table_length = 0;
    int e = 0;

    memset(t, 0, sizeof *t);
    *err = *hint = NULL;
    t->offset = offset;
    if (!nb)
        return 0;
    /* the caller has checked nb <= 65536 */
    t->v = calloc(nb, sizeof *t->v);
    if (!t->v || qc_reader_init(&rd, f, 1 << 20) < 0) {
        free(t->v);
        t->v = NULL;
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < nb; i++) {
        struct qc_snapshot *s = &t->v[i];
        uint8_t h[QC_SNAPSHOT_ENTRY_FIXED], extra[24];
        uint64_t start = pos, skip = 0;
        size_t known;

        table_length = (table_length + 7) & ~7ull;
        pos = (pos + 7) & ~7ull;
        if ((e = qc_reader_read(&rd, pos, h, sizeof h)) < 0) {
            *err = io_message("Failed to read snapshot table", e);
            goto out;
        }
        s->entry_offset = pos;
        pos += sizeof h;
        s->l1_table_offset = qc_be64(h);
        s->l1_size = qc_be32(h + 8);
        s->id_str_size = qc_be16(h + 12);
        s->name_size = qc_be16(h + 14);
        s->date_sec = qc_be32(h + 16);
        s->date_nsec = qc_be32(h + 20);
        s->vm_clock_nsec = qc_be64(h + 24);
        s->vm_state_size = qc_be32(h + 32);
        s->extra_data_size = qc_be32(h + 36);
        t->n = i + 1;

        if (s->extra_data_size > QC_SNAPSHOT_MAX_EXTRA && repair) {
            struct qc_snapshot_drop *d = realloc(t->drops, (t->ndrops + 1) * sizeof *d);
            if (!d) {
                e = -ENOMEM;
                goto out;
            }
            t->drops = d;
            d[t->ndrops++] = (struct qc_snapshot_drop){ i, s->extra_data_size };
            skip = s->extra_data_size - QC_SNAPSHOT_MAX_EXTRA;
            s->extra_data_size = QC_SNAPSHOT_MAX_EXTRA;
        } else if (s->extra_data_size > QC_SNAPSHOT_MAX_EXTRA) {
            e = -EFBIG;
            *err = strdup_printf("Too much extra metadata in snapshot table entry %u", i, 0);
            *hint = strdup("You can force-remove this extra metadata with qemu-img check -r all");
            goto out;
        }
        known = s->extra_data_size < sizeof extra ? s->extra_data_size : sizeof extra;
        if ((e = qc_reader_read(&rd, pos, extra, known)) < 0) {
            *err = io_message("Failed to read snapshot table", e);
            goto out;
        }
        pos += known;
        if (known >= 8) {
            s->has_vm_state_size_large = true;
            s->vm_state_size_large = qc_be64(extra);
        }
        if (known >= 16) {
            s->has_disk_size = true;
            s->disk_size = qc_be64(extra + 8);
        }
        if (known >= 24) {
            s->has_icount = true;
            s->icount = qc_be64(extra + 16);
        }
        s->extra = malloc(s->extra_data_size ? s->extra_data_size : 1);
        if (!s->extra) {
            e = -ENOMEM;
            goto out;
        }
        memcpy(s->extra, extra, known);
        if (s->extra_data_size > sizeof extra) {
            size_t unknown = s->extra_data_size - sizeof extra;
            if ((e = qc_reader_read(&rd, pos, s->extra + sizeof extra, unknown)) < 0) {
                *err = io_message("Could not read snapshot table", e);
                goto out;
            }
            pos += unknown;
        }
        pos += skip;
        s->id_str = malloc((size_t)s->id_str_size + 1);
        s->name = malloc((size_t)s->name_size + 1);
        if (!s->id_str || !s->name) {
            e = -ENOMEM;
            goto out;
        }
        if ((e = qc_reader_read(&rd, pos, s->id_str, s->id_str_size)) < 0) {
            *err = io_message("Failed to read snapshot table", e);
            goto out;
        }
        s->id_str[s->id_str_size] = '\0';
        pos += s->id_str_size;
        if ((e = qc_reader_read(&rd, pos, s->name, s->name_size)) < 0) {
            *err = io_message("Failed to read snapshot table", e);
            goto out;
        }
        s->name[s->name_size] = '\0';
        pos += s->name_size;
        s->entry_len = qc_snapshot_entry_size(s);

        table_length += QC_SNAPSHOT_ENTRY_FIXED + (uint64_t)s->extra_data_size +
                        s->id_str_size + s->name_size;
        if ((table_length > QC_SNAPSHOT_TABLE_MAX || pos - offset > 0x7fffffffull) && repair) {
            /* this entry and the ones after it go */
            free(s->extra);
            free(s->id_str);
            free(s->name);
            memset(s, 0, sizeof *s);
            t->n = i;
            t->discarded = nb - i;
            pos = start;
            break;
        }
        if (table_length > QC_SNAPSHOT_TABLE_MAX || pos - offset > 0x7fffffffull) {
            e = -EFBIG;
            *err = strdup("Snapshot table is too big");
            *hint = strdup_printf("You can force-remove all %u overhanging snapshots with qemu-img check -r all",
                                  nb - i, 0);
            goto out;
        }
    }
    t->size = pos - offset;
out:
    qc_reader_free(&rd);
    if (e < 0 && !*err && e != -ENOMEM)
        *err = io_message("Failed to read snapshot table", e);
    return e;
}

int qc_snapshot_table_read_qemu(struct qc_file *f, uint64_t offset, uint32_t nb,
                                struct qc_snapshot_table *t, char **err, char **hint)
{
    return read_qemu(f, offset, nb, false, t, err, hint);
}

int qc_snapshot_table_read_qemu_repair(struct qc_file *f, uint64_t offset, uint32_t nb,
                                       struct qc_snapshot_table *t, char **err, char **hint)
{
    return read_qemu(f, offset, nb, true, t, err, hint);
}

int qc_snapshot_table_serialize_qemu(const struct qc_snapshot_table *t, uint64_t disk_size,
                                     uint8_t **out, uint64_t *len)
{
    uint64_t n = 0;
    uint8_t *buf, *p;

    *out = NULL;
    *len = 0;
    for (size_t i = 0; i < t->n; i++) {
        const struct qc_snapshot *s = &t->v[i];
        n = (n + 7) & ~7ull;
        n += QC_SNAPSHOT_ENTRY_FIXED + (s->extra_data_size > 24 ? s->extra_data_size : 24) +
             strlen(s->id_str) + strlen(s->name);
        if (n > QC_SNAPSHOT_TABLE_MAX)
            return -EFBIG;
    }
    if (!n)
        return 0;
    if (!(buf = calloc(1, (size_t)n)))
        return -ENOMEM;
    p = buf;
    for (size_t i = 0; i < t->n; i++) {
        const struct qc_snapshot *s = &t->v[i];
        uint64_t vm = s->has_vm_state_size_large ? s->vm_state_size_large : s->vm_state_size;
        uint32_t extra = s->extra_data_size > 24 ? s->extra_data_size : 24;
        size_t ids = strlen(s->id_str), names = strlen(s->name);

        p = buf + (((size_t)(p - buf) + 7) & ~(size_t)7);
        qc_put_be64(p, s->l1_table_offset);
        qc_put_be32(p + 8, s->l1_size);
        qc_put_be16(p + 12, (uint16_t)ids);
        qc_put_be16(p + 14, (uint16_t)names);
        qc_put_be32(p + 16, s->date_sec);
        qc_put_be32(p + 20, s->date_nsec);
        qc_put_be64(p + 24, s->vm_clock_nsec);
        /* a VM state too large for the old field reads as a disk-only snapshot */
        qc_put_be32(p + 32, vm <= 0xffffffffu ? (uint32_t)vm : 0);
        qc_put_be32(p + 36, extra);
        p += QC_SNAPSHOT_ENTRY_FIXED;
        qc_put_be64(p, vm);
        qc_put_be64(p + 8, s->has_disk_size ? s->disk_size : disk_size);
        qc_put_be64(p + 16, s->has_icount ? s->icount : UINT64_MAX);
        p += 24;
        if (s->extra_data_size > 24) {
            memcpy(p, s->extra + 24, s->extra_data_size - 24);
            p += s->extra_data_size - 24;
        }
        memcpy(p, s->id_str, ids);
        p += ids;
        memcpy(p, s->name, names);
        p += names;
    }
    *out = buf;
    *len = n;
    return 0;
}
