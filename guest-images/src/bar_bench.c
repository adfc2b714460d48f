/*
 * bar_bench: time 32-bit loads from one offset of a PCI memory BAR, the
 * floor under every register access a driver makes.  For a function behind
 * x-pci-proxy-dev each load is one round trip to the device process.
 *
 * usage: bar_bench RESOURCE_FILE OFFSET COUNT
 *   RESOURCE_FILE  e.g. /sys/bus/pci/devices/0000:00:10.0/resource0 (the
 *                  device must decode memory: a bound driver enables it)
 *   OFFSET         byte offset of a side-effect-free register (hex ok)
 * Prints "BENCH bar_read_us <mean microseconds per load>" and the value
 * read; exit 1 on errors, 2 on usage errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct timespec t0, t1;
	volatile uint32_t *reg;
	unsigned long offset, count, i;
	uint32_t value = 0;
	void *map;
	long page = sysconf(_SC_PAGESIZE);
	int fd;

	if (argc != 4) {
		fprintf(stderr, "usage: bar_bench RESOURCE_FILE OFFSET COUNT\n");
		return 2;
	}
	offset = strtoul(argv[2], NULL, 0);
	count = strtoul(argv[3], NULL, 0);
	if (offset % 4 || count == 0) {
		fprintf(stderr, "bar_bench: OFFSET must be 4-aligned and COUNT > 0\n");
		return 2;
	}
	fd = open(argv[1], O_RDWR | O_SYNC);
	if (fd < 0) {
		fprintf(stderr, "bar_bench: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	map = mmap(NULL, (offset / page + 1) * page, PROT_READ | PROT_WRITE,
		   MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		fprintf(stderr, "bar_bench: mmap %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	reg = (volatile uint32_t *)((char *)map + offset);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < count; i++)
		value = *reg;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("BENCH bar_read_us %.2f\n",
	       ((t1.tv_sec - t0.tv_sec) * 1e6 + (t1.tv_nsec - t0.tv_nsec) / 1e3) / count);
	printf("value 0x%08x\n", value);
	return 0;
}
