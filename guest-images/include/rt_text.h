/*
 * rt_text.h - the string and number helpers of vhw's in-guest runtimes.
 *
 * Shared by the freestanding Linux SPARC runtime (sparc_rt.h, which
 * defines strlen itself) and the hosted one for the BSDs (hosted_rt.h,
 * strlen from <string.h>); include it after one of them.
 */
#ifndef VHW_RT_TEXT_H
#define VHW_RT_TEXT_H

static int rt_strncmp(const char *a, const char *b, size_t n)
{
	for (; n; n--, a++, b++) {
		if (*a != *b)
			return (unsigned char)*a - (unsigned char)*b;
		if (!*a)
			return 0;
	}
	return 0;
}

/* The value of NAME in envp (Linux hands unknown key=value boot args to init). */
static const char *rt_getenv(char **envp, const char *name)
{
	size_t n = strlen(name);
	for (; envp && *envp; envp++)
		if (!rt_strncmp(*envp, name, n) && (*envp)[n] == '=')
			return *envp + n + 1;
	return 0;
}

/* Number formatting into BUF (no NUL); returns the number of characters. */
static inline int rt_fmt_dec(char *buf, long v)
{
	char tmp[24];
	int n = 0, m = 0;
	unsigned long u = v < 0 ? -(unsigned long)v : (unsigned long)v;
	do
		tmp[n++] = '0' + u % 10;
	while ((u /= 10) && n < 23);
	if (v < 0)
		buf[m++] = '-';
	while (n)
		buf[m++] = tmp[--n];
	return m;
}

static inline int rt_fmt_hex(char *buf, unsigned long v)
{
	char tmp[17];
	int n = 0, m = 0;
	do
		tmp[n++] = "0123456789abcdef"[v & 15];
	while ((v >>= 4) && n < 16);
	while (n)
		buf[m++] = tmp[--n];
	return m;
}

/* Lowercase hex of N bytes into BUF (2N characters). */
static inline size_t rt_fmt_bytes(char *buf, const void *p, size_t n)
{
	const unsigned char *b = p;
	size_t i;
	for (i = 0; i < n; i++) {
		buf[2 * i] = "0123456789abcdef"[b[i] >> 4];
		buf[2 * i + 1] = "0123456789abcdef"[b[i] & 15];
	}
	return 2 * n;
}

#endif
