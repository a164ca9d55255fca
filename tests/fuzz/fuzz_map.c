/* Fuzz target: the input is an image file.  It is opened as qemu-img map
 * opens it (backing files not followed, to stay inside the input), mapped,
 * read as guest bytes at the start of every map entry, exported raw, and
 * shown through the metadata table views. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "qc_chain.h"
#include "qc_guest.h"
#include "qc_image.h"
#include "qc_jsonw.h"
#include "qc_map.h"
#include "qc_view.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ENTRIES 4096
#define READ_BYTES  65536

struct walk {
    struct qc_chain *c;
    unsigned entries;
    uint8_t *buf;
    uint64_t checksum;
};

static int on_entry(void *ctx, const struct qc_map_entry *e, bool last)
{
    struct walk *w = ctx;
    uint64_t at = 0;
    size_t n = e->length < READ_BYTES ? (size_t)e->length : READ_BYTES;

    (void)last;
    /* entries must tile the disk in order */
    if (e->length == 0 && e->start != 0)
        abort();
    if (qc_guest_read(w->c->top, e->start, w->buf, n, &at) == 0)
        for (size_t i = 0; i < n; i += 512)
            w->checksum += w->buf[i];
    return ++w->entries >= MAX_ENTRIES;
}

static char *write_input(const uint8_t *data, size_t size)
{
    static char path[64];
    int fd;

    snprintf(path, sizeof path, "/tmp/qc-fuzz-map.%ld", (long)getpid());
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return NULL;
    if (write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return NULL;
    }
    close(fd);
    return path;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t buf[READ_BYTES];
    struct qc_chain c;
    struct qc_image img;
    char *err = NULL;
    char *path = write_input(data, size);
    FILE *null = fopen("/dev/null", "w");

    if (!path || !null) {
        if (null)
            fclose(null);
        return 0;
    }
    if (qc_chain_open(&c, path, QC_CHAIN_NO_BACKING, null, &err) == 0) {
        struct walk w = { &c, 0, buf, 0 };
        uint64_t at = 0;

        qc_map_walk(&c, on_entry, &w, &at);
        /* a raw export only for disks small enough to write quickly */
        if (c.top->length <= (64u << 20) && !c.top->encrypted) {
            char out[80];
            int fd;
            enum qc_export_stage stage;
            snprintf(out, sizeof out, "%s.raw", path);
            fd = open(out, O_RDWR | O_CREAT | O_TRUNC, 0600);
            if (fd >= 0) {
                qc_guest_export_raw(&c, fd, &stage, &at);
                close(fd);
                unlink(out);
            }
        }
        qc_chain_close(&c);
    }
    free(err);
    int r = qc_image_open(&img, path, 0, QC_VALIDATE_OPEN, NULL);
    if (r == 0) {
        struct qc_hexdump hd;
        struct qc_jw w;
        qc_view_l1(null, &img, 0);
        qc_view_l2(null, &img, true, 0, QC_TV_NONZERO);
        qc_view_refcounts(null, &img, QC_TV_NONZERO);
        qc_view_snapshots(null, &img);
        qc_view_bitmaps(null, &img, QC_TV_UNFOLD);
        qc_jw_init(&w, null);
        qc_jw_begin_object(&w, NULL);
        qc_json_l1(&w, "l1", &img, QC_TV_UNFOLD);
        qc_json_l2(&w, "l2", &img, true, 0, 0);
        qc_json_refcounts(&w, "refcounts", &img, 0);
        qc_json_snapshots(&w, "snapshots", &img);
        qc_json_bitmaps(&w, "bitmaps", &img, QC_TV_NONZERO);
        qc_jw_finish(&w);
        qc_hexdump_start(&hd, null, 0);
        qc_hexdump_feed(&hd, data, size < 4096 ? size : 4096);
        qc_hexdump_finish(&hd);
        qc_image_close(&img);
    } else if (r == QC_E_FORMAT) {
        qc_image_close(&img);
    }
    fclose(null);
    unlink(path);
    return 0;
}
