/* NetBSD <sys/stat.h>: stat() and the members the programs read. */
#ifndef SHIM_SYS_STAT_H
#define SHIM_SYS_STAT_H
#include <sys/types.h>
struct stat {
	dev_t st_dev;
	mode_t st_mode;
	uint64_t st_ino;
	uint32_t st_nlink;
	uint32_t st_uid;
	uint32_t st_gid;
	dev_t st_rdev;
	/* times, size, blocks: not used */
};
#define S_IFMT		0170000
#define S_IFCHR		0020000
#define S_ISCHR(m)	(((m) & S_IFMT) == S_IFCHR)
int stat(const char *, struct stat *);
#endif
