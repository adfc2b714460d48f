/* FreeBSD <sys/ioctl.h>: brings in <sys/ioccom.h> (and ioctl()). */
#ifndef SHIM_SYS_IOCTL_H
#define SHIM_SYS_IOCTL_H
#include <sys/ioccom.h>
#endif
