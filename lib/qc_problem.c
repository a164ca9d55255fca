#include "qc_util.h"
#include "qc_problem.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct qc_problem_info catalogue[QC_P_COUNT] = {
#define QC_PK_INFO(name, id, sev, fix, desc) \
    [QC_P_##name] = { id, QC_SEV_##sev, fix, desc },
    QC_PROBLEM_KINDS(QC_PK_INFO)
#undef QC_PK_INFO
};

const struct qc_problem_info *qc_problem_info(enum qc_problem_kind kind)
{
    static const struct qc_problem_info unknown = { "unknown", QC_SEV_INFO, false, "" };
    return (unsigned)kind < QC_P_COUNT ? &catalogue[kind] : &unknown;
}

const char *qc_severity_name(enum qc_severity sev)
{
    switch (sev) {
    case QC_SEV_LEAK: return "leak";
    case QC_SEV_CORRUPTION: return "corruption";
    case QC_SEV_ERROR: return "error";
    default: return "info";
    }
}

/* A hostile image can produce one problem per cluster; past this many the
 * list keeps counting but stops storing. */
#define QC_PROBLEMS_DEFAULT_LIMIT 100000

static struct qc_problem *add_v(struct qc_problems *list, enum qc_problem_kind kind,
                                enum qc_severity sev, uint64_t offset,
                                const char *fmt, va_list ap)
{
    size_t limit = list->limit ? list->limit : QC_PROBLEMS_DEFAULT_LIMIT;
    struct qc_problem *p;
    char *msg = NULL;

    if (list->n >= limit) {
        list->dropped++;
        return NULL;
    }
    if (list->n == list->cap) {
        size_t cap = list->cap ? list->cap * 2 : 16;
        struct qc_problem *v = realloc(list->v, cap * sizeof *v);
        if (!v) {
            list->dropped++;
            return NULL;
        }
        list->v = v;
        list->cap = cap;
    }
    msg = qc_vasprintf(fmt, ap);
    p = &list->v[list->n++];
    p->kind = kind;
    p->severity = sev;
    p->offset = offset;
    p->cluster = QC_NO_OFFSET;
    p->value = 0;
    p->message = msg;
    return p;
}

struct qc_problem *qc_problem_add(struct qc_problems *list, enum qc_problem_kind kind,
                                  uint64_t offset, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    struct qc_problem *p = add_v(list, kind, qc_problem_info(kind)->severity,
                                 offset, fmt, ap);
    va_end(ap);
    return p;
}

struct qc_problem *qc_problem_add_sev(struct qc_problems *list, enum qc_problem_kind kind,
                                      enum qc_severity sev, uint64_t offset,
                                      const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    struct qc_problem *p = add_v(list, kind, sev, offset, fmt, ap);
    va_end(ap);
    return p;
}

bool qc_problems_has(const struct qc_problems *list, enum qc_problem_kind kind)
{
    for (size_t i = 0; i < list->n; i++)
        if (list->v[i].kind == kind)
            return true;
    return false;
}

void qc_problems_free(struct qc_problems *list)
{
    for (size_t i = 0; i < list->n; i++)
        free(list->v[i].message);
    free(list->v);
    memset(list, 0, sizeof *list);
}
