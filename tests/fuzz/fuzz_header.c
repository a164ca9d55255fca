/* Fuzz target: the header and its extensions.  Every input is opened as an
 * image (header, extensions, names, QEMU's open rules in each mode), shown
 * in every header view, and edited in memory (a plan, never a write). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <json-c/json.h>

#include "qc_edit.h"
#include "qc_image.h"
#include "qc_view.h"

static FILE *devnull;

static void views(struct qc_image *img)
{
    struct json_object *doc = json_object_new_object();

    qc_view_header(devnull, img, QC_ERA_CURRENT);
    qc_view_header(devnull, img, QC_ERA_LEGACY);
    qc_view_exts(devnull, img, QC_ERA_CURRENT);
    qc_view_hex(devnull, img);
    qc_view_features(devnull, img);
    json_object_object_add(doc, "header", qc_json_header(img));
    json_object_object_add(doc, "extensions", qc_json_extensions(img));
    json_object_object_add(doc, "feature_table", qc_json_feature_table(img));
    json_object_object_add(doc, "features", qc_json_features(img));
    json_object_object_add(doc, "problems", qc_json_problems(&img->problems));
    qc_json_print(devnull, doc);
    json_object_put(doc);
}

/* Plans one edit chosen by the input's last byte. */
static void edit(struct qc_image *img, uint8_t pick)
{
    struct qc_edit e;

    if (qc_edit_init(&e, img) == 0) {
        switch (pick % 5) {
        case 0: qc_edit_feature(&e, QC_FG_INCOMPATIBLE, pick % 64, true); break;
        case 1: qc_edit_feature(&e, QC_FG_COMPATIBLE, 0, false); break;
        case 2: qc_edit_add_ext(&e, 0x12345678, (const uint8_t *)"fuzz", 4); break;
        case 3: qc_edit_del_ext(&e, QC_EXT_FEATURE_TABLE); break;
        default: qc_edit_set_field(&e, QC_HF_HEADER_LENGTH, 104 + 8 * (pick % 4)); break;
        }
        if (qc_edit_plan(&e) == 0) {
            qc_edit_print_summary(devnull, &e);
            qc_edit_print_diff(devnull, &e);
        }
    }
    qc_edit_free(&e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const enum qc_validate_mode modes[] = { QC_VALIDATE_CHECK, QC_VALIDATE_WRITE };
    struct qc_image img;
    char path[64];
    int fd, r;

    if (!devnull && !(devnull = fopen("/dev/null", "w")))
        abort();
    fd = memfd_create("fuzz_header", 0);
    if (fd < 0)
        abort();
    if (size && write(fd, data, size) != (ssize_t)size)
        abort();
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    r = qc_image_open(&img, path, 0, QC_VALIDATE_OPEN, NULL);
    if (r == 0 || r == QC_E_FORMAT) {
        views(&img);
        if (r == 0) {
            for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
                qc_image_validate(&img, modes[i]);
            edit(&img, size ? data[size - 1] : 0);
        }
        qc_image_close(&img);
    }
    close(fd);
    return 0;
}
