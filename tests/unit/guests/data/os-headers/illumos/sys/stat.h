/* illumos <sys/stat.h>, 64-bit: stat() and the members the programs read. */
#ifndef SHIM_SYS_STAT_H
#define SHIM_SYS_STAT_H
#include <sys/types.h>
struct stat {
	dev_t st_dev;
	uint64_t st_ino;
	mode_t st_mode;
	uint_t st_nlink;
	uint_t st_uid;
	uint_t st_gid;
	dev_t st_rdev;
	/* size, times, blocks: not used */
};
#define S_IFMT		0xF000
#define S_IFCHR		0x2000
#define S_ISCHR(mode)	(((mode) & 0xF000) == 0x2000)
extern int stat(const char *, struct stat *);
#endif
