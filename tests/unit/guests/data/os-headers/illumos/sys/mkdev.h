/* illumos <sys/mkdev.h>: major() and minor() of a dev_t, as functions. */
#ifndef SHIM_SYS_MKDEV_H
#define SHIM_SYS_MKDEV_H
#include <sys/types.h>
extern major_t major(dev_t);
extern minor_t minor(dev_t);
#endif
