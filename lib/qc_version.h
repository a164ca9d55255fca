#ifndef QC_VERSION_H
#define QC_VERSION_H
#define QC_VERSION "0.1.0"
#endif
