/* illumos <time.h>: clock_gettime; CLOCK_MONOTONIC is CLOCK_HIGHRES, 4. */
#ifndef SHIM_TIME_H
#define SHIM_TIME_H
#include <sys/types.h>
typedef int clockid_t;
typedef struct timespec {
	time_t tv_sec;
	long tv_nsec;
} timespec_t;
#define CLOCK_MONOTONIC 4
extern int clock_gettime(clockid_t, struct timespec *);
#endif
