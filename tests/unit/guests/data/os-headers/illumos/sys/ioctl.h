/* illumos <sys/ioctl.h>: <sys/ioccom.h> and ioctl(int, int, ...). */
#ifndef SHIM_SYS_IOCTL_H
#define SHIM_SYS_IOCTL_H
#include <sys/ioccom.h>
extern int ioctl(int, int, ...);
#endif
