/* qc-qcow2py: qemu-iotests' qcow2.py, command line, output, exit status
 * and written bytes included (lib/qc_pyscript.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qc_io.h"
#include "qc_pyscript.h"

struct command {
    const char *name;
    int nargs;
    const char *desc;
};

static const struct command commands[] = {
    { "dump-header", 0, "Dump image header and header extensions" },
    { "dump-header-exts", 0, "Dump image header extensions" },
    { "set-header", 2, "Set a field in the header" },
    { "add-header-ext", 2, "Add a header extension" },
    { "add-header-ext-stdio", 1, "Add a header extension, data from stdin" },
    { "del-header-ext", 1, "Delete a header extension" },
    { "set-feature-bit", 2, "Set a feature bit" },
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(const char *prog)
{
    printf("Usage: %s <file> <cmd> [<arg>, ...] [<key>, ...]\n\nSupported commands:\n", prog);
    for (size_t i = 0; i < NCOMMANDS; i++)
        printf("    %-20s - %s\n", commands[i].name, commands[i].desc);
    printf("\nSupported keys:\n    %-20s - %s\n", "-j", "Dump in JSON format");
}

/* Drops the first "-j" from ARGV as the script does; returns whether there
 * was one. */
static bool take_json_flag(int *argc, char **argv)
{
    for (int i = 0; i < *argc; i++) {
        if (strcmp(argv[i], "-j") == 0) {
            memmove(&argv[i], &argv[i + 1], (size_t)(*argc - i) * sizeof *argv);
            (*argc)--;
            return true;
        }
    }
    return false;
}

static int run(struct qc_file *f, size_t cmd, char **args, bool json, struct qc_py_exc *exc)
{
    char *text;
    int r;

    switch (cmd) {
    case 0: case 1:
        return qc_pyscript_dump(stdout, f, cmd == 0, json, exc);
    case 2: return qc_pyscript_edit(stdout, f, QC_PY_SET_HEADER, args[0], args[1], exc);
    case 3: return qc_pyscript_edit(stdout, f, QC_PY_ADD_EXT, args[0], args[1], exc);
    case 4:
        text = qc_py_read_text(stdin);
        if (!text) {
            snprintf(exc->type, sizeof exc->type, "MemoryError");
            return 1;
        }
        r = qc_pyscript_edit(stdout, f, QC_PY_ADD_EXT, args[0], text, exc);
        free(text);
        return r;
    case 5: return qc_pyscript_edit(stdout, f, QC_PY_DEL_EXT, args[0], NULL, exc);
    default: return qc_pyscript_edit(stdout, f, QC_PY_SET_FEATURE_BIT, args[0], args[1], exc);
    }
}

int main(int argc, char **argv)
{
    struct qc_py_exc exc = { "", "" };
    struct qc_file f;
    bool json;
    int r = 0;

    if (argc < 3) {
        usage(argv[0]);
        return 1;
    }
    json = take_json_flag(&argc, argv);
    if (argc < 3) {
        snprintf(exc.type, sizeof exc.type, "IndexError");
        snprintf(exc.msg, sizeof exc.msg, "list index out of range");
        qc_py_exc_print(stderr, &exc);
        return 1;
    }
    if (qc_pyscript_open(&f, argv[1], &exc) < 0) {
        qc_py_exc_print(stderr, &exc);
        return 1;
    }
    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (strcmp(argv[2], commands[i].name) != 0)
            continue;
        if (argc - 3 != commands[i].nargs)
            usage(argv[0]);
        else
            r = run(&f, i, argv + 3, json, &exc);
        goto done;
    }
    printf("Unknown command '%s'\n", argv[2]);
done:
    qc_file_close(&f);
    fflush(stdout);
    if (exc.type[0])
        qc_py_exc_print(stderr, &exc);
    return r;
}
