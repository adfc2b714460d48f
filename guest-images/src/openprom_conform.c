/*
 * openprom_conform - /dev/openprom as the guest sees it, for vhw's report.
 *
 * Runs as /init of vhw's SPARC guests.  Walks the whole tree, then makes
 * every openprom(4) ioctl of the seed (4.4BSD OPIOC*: GETOPTNODE, GETNEXT,
 * GETCHILD, GET, SET, NEXTPROP and their errnos) and the Sun OPROM* calls,
 * and prints what it passed and what came back.  It judges nothing: the
 * host (vhw/prom/conform.py) replays every call against the seed's model.
 *
 * Output, one line per write(), each starting "@@vhw " (bytes as lowercase
 * hex, "-" for none; node ids hex):
 *   begin arch=<sparc64|sparc32> token=<env vhwtoken>
 *   node <id> parent=<id|0>
 *   prop <node> <namehex> <len> <valuehex> [truncated=1]
 *      (names by OPROMSETCUR + OPROMNXTPROP, values by OPIOCGET with an
 *      8192-byte buffer; len -1 and "-" when OPIOCGET failed, values over
 *      1024 bytes: the first 1024 and truncated=1)
 *   op <seq> <label> <IOCTL> fd=<rw|ro> node=<id> name=<hex> inlen=<n> value=<hex|->
 *      rc=<0|-1> errno=<n> outnode=<id> outlen=<n> out=<hex|->
 *      [truncated=1 namelen=<n> valuelen=<n>]  (long fields: first 1024 bytes;
 *      long test names and values are one repeated byte)
 *   For the Sun OPROM* calls name= is the oprom_array bytes passed in (with
 *   the NUL where the call takes a string), inlen= the oprom_size passed, and
 *   outnode= the node in oprom_array after OPROMNEXT/OPROMCHILD/OPROMSETCUR.
 *   final <node> <namehex> <len> <valuehex>    (the options node after the calls)
 *   note <text> | fatal <text>
 *   end ops=<number of op lines>
 * then sync and halt: on sun4u Linux calls the PROM's exit and the firmware
 * shows its ok prompt, where vhw reads printenv and the firmware's own tree;
 * on sun4m (SS-5) OpenBIOS's romvec halt powers the machine off.  Before
 * printing, the console log level is set to 1, so kernel messages other than
 * KERN_EMERG do not interleave with the output.
 *
 * Environment (boot arguments): vhwtoken (default "none"), vhwvar (the
 * option to write, default "vhw-test-var").
 *
 * NetBSD and OpenBSD sparc64: an ordinary program (hosted_rt.h; cc in the
 * guest, guest-images/src/programs.toml) over their openprom(4), the seed's
 * own 4.4BSD interface (<machine/openpromio.h>).  The lines are the same;
 * property names come from OPIOCNEXTPROP, which returns names there, the
 * Sun OPROM* calls are left out (the header has none, a note says so), and
 * the program exits 0 after the end line instead of halting.  vhwtoken and
 * vhwvar come from the environment or from NAME=VALUE arguments.
 */
#if !defined(__sparc__) || \
	!(defined(__linux__) || defined(__NetBSD__) || defined(__OpenBSD__))
/* guest-images/linux-x86/build compiles every .c file in src/ for the x86 guest:
 * there is no /dev/openprom there (openprom-sparc.md §10), so say so. */
#include <stdio.h>

int main(void)
{
	fputs("openprom_conform: SPARC guests only (no /dev/openprom on this architecture)\n", stderr);
	return 1;
}
#else
#if defined(__linux__)
#include "sparc_rt.h"
#include <asm/openpromio.h>
#else
#include "hosted_rt.h"
#include <machine/openpromio.h>
#endif

/* The Sun OPROM* calls exist where the header declares them (Linux). */
#ifdef OPROMNXTPROP
#define HAVE_SUN_OPROM 1
/* What lists property names for the walk. */
#define NAME_LISTER "OPROMNXTPROP"
#else
#define HAVE_SUN_OPROM 0
#define NAME_LISTER "OPIOCNEXTPROP"
#endif

#if HAVE_SUN_OPROM
/* SunOS/illumos OPROMGETPROPLEN is (OIOC | 17), OIOC = 'O' << 8, encoded
 * like the other OPROM* numbers (an _IO: 0x20004F01...); Linux has none. */
#ifndef OPROMGETPROPLEN
#define OPROMGETPROPLEN _IO('O', 17)
#endif
#define SUN_MAX OPROMMAXPARAM
#endif

#define FIELD_MAX 1024
#define BUF 8192
#define MAX_OPTIONS 128
#define NAME_MAX_LEN 64

static int fd_rw = -1, fd_ro = -1, seq, out_fd = 1;
static char line[16384];
static size_t pos;
static const char *token = "none", *var = "vhw-test-var";

/* ------------------------------------------------------------- output */

static void put(const char *s)
{
	while (*s && pos < sizeof(line) - 2)
		line[pos++] = *s++;
}

static void put_dec(long v)
{
	if (pos < sizeof(line) - 26)
		pos += rt_fmt_dec(line + pos, v);
}

static void put_x(unsigned int v)
{
	if (pos < sizeof(line) - 10)
		pos += rt_fmt_hex(line + pos, v);
}

/* Hex of n bytes (at most FIELD_MAX); "-" for none; 1 if cut. */
static int put_hex(const void *p, long n)
{
	const unsigned char *b = p;
	long m = n > FIELD_MAX ? FIELD_MAX : n;
	if (!p || n <= 0) {
		put("-");
		return 0;
	}
	if (m > (long)(sizeof(line) - 3 - pos) / 2)
		m = (long)(sizeof(line) - 3 - pos) / 2;
	pos += rt_fmt_bytes(line + pos, b, m);
	return n > FIELD_MAX;
}

static void begin(const char *kind)
{
	pos = 0;
	put("@@vhw ");
	put(kind);
}

static void end_line(void)
{
	line[pos++] = '\n';
	rt_write(out_fd, line, pos);
	pos = 0;
}

static void say(const char *kind, const char *a, const char *b)
{
	begin(kind);
	put(" ");
	put(a);
	if (b) {
		put(" ");
		put(b);
	}
	end_line();
}

/* ------------------------------------------------------ observed calls */

struct call {
	const char *label, *ioctl;
	int ro, node;
	const char *name;
	long namelen;
	long inlen;
	const char *value;
	long valuelen;
	int rc, err, outnode;
	long outlen;
	const char *out;
	long outcap;
};

static void emit(const struct call *c)
{
	int cut = 0;
	long shown = 0;
	begin("op ");
	put_dec(++seq);
	put(" ");
	put(c->label);
	put(" ");
	put(c->ioctl);
	put(c->ro ? " fd=ro node=" : " fd=rw node=");
	put_x((unsigned int)c->node);
	put(" name=");
	cut |= put_hex(c->name, c->namelen);
	put(" inlen=");
	put_dec(c->inlen);
	put(" value=");
	cut |= put_hex(c->value, c->value ? c->valuelen : 0);
	put(" rc=");
	put_dec(c->rc);
	put(" errno=");
	put_dec(c->err);
	put(" outnode=");
	put_x((unsigned int)c->outnode);
	put(" outlen=");
	put_dec(c->outlen);
	put(" out=");
	if (c->rc == 0 && c->out && c->outlen > 0)
		shown = c->outlen < c->outcap ? c->outlen : c->outcap;
	cut |= put_hex(c->out, shown);
	if (cut) {
		put(" truncated=1 namelen=");
		put_dec(c->namelen);
		put(" valuelen=");
		put_dec(c->value ? c->valuelen : 0);
	}
	end_line();
}

static int fd_for(int ro) { return ro ? fd_ro : fd_rw; }

static int do_ioctl(int fd, unsigned long cmd, void *arg, int *err)
{
	int r = rt_ioctl(fd, cmd, arg);
	*err = r < 0 ? -r : 0;
	return r < 0 ? -1 : 0;
}

static char bsd_buf[BUF + 8];

/* OPIOCGET / OPIOCSET / OPIOCNEXTPROP; returns rc, fills *outlen. */
static int bsd_desc(const char *label, const char *ioc, unsigned long cmd, int ro, int node, const char *name,
		    long namelen, long buflen, const char *setval, long *outlen, int log)
{
	struct opiocdesc d;
	struct call c = { label, ioc, ro, node, name, namelen, buflen, setval, buflen, 0, 0, 0, 0, bsd_buf, BUF };
	memset(bsd_buf, 0, sizeof(bsd_buf));
	d.op_nodeid = node;
	d.op_namelen = (int)namelen;
	d.op_name = (char *)name;
	d.op_buflen = (int)buflen;
	d.op_buf = setval ? (char *)setval : bsd_buf;
	c.rc = do_ioctl(fd_for(ro), cmd, &d, &c.err);
	c.outlen = d.op_buflen;
	if (setval)
		c.out = 0;
	if (log)
		emit(&c);
	if (outlen)
		*outlen = c.rc ? -2 : d.op_buflen;
	return c.rc;
}

/* The node returned, 0 on error (phandles may look negative as ints). */
static int bsd_node(const char *label, const char *ioc, unsigned long cmd, int node, int log)
{
	int n = node, err;
	struct call c = { label, ioc, 0, node, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
	c.rc = do_ioctl(fd_rw, cmd, &n, &err);
	c.err = err;
	c.outnode = c.rc ? 0 : n;
	if (log)
		emit(&c);
	return c.rc ? 0 : n;
}

#if HAVE_SUN_OPROM
static union {
	struct openpromio o;
	char raw[sizeof(unsigned int) + SUN_MAX + 8];
} sun;

/* A Sun call: in = the oprom_array bytes passed, shown = how many to print. */
static int sun_call(const char *label, const char *ioc, unsigned long cmd, int ro, const char *in, long inbytes,
		    long shown, long size, int nav, int node, int log)
{
	struct call c = { label, ioc, ro, nav ? node : 0, in, shown, size, 0, 0, 0, 0, 0, 0, sun.o.oprom_array,
			  SUN_MAX };
	memset(&sun, 0, sizeof(sun));
	sun.o.oprom_size = (unsigned int)size;
	memcpy(sun.o.oprom_array, in, inbytes);
	c.rc = do_ioctl(fd_for(ro), cmd, &sun.o, &c.err);
	c.outlen = (int)sun.o.oprom_size;
	if (nav && c.rc == 0)
		memcpy(&c.outnode, sun.o.oprom_array, 4);
	if (log)
		emit(&c);
	return c.rc;
}

static int sun_named(const char *label, const char *ioc, unsigned long cmd, const char *name, long size)
{
	long n = strlen(name);
	return sun_call(label, ioc, cmd, 0, name, n + 1, n + 1, size, 0, 0, 1);
}

static int sun_nav(const char *label, const char *ioc, unsigned long cmd, int node, int log)
{
	return sun_call(label, ioc, cmd, 0, (const char *)&node, 4, 4, 4, 1, node, log);
}
#endif

/* ----------------------------------------------------------- the walk */

static char options_names[MAX_OPTIONS][NAME_MAX_LEN];
static int n_options, options_node, root_node, empty_node;
static char empty_name[NAME_MAX_LEN];
/* The first property OPROMNXTPROP listed but OPIOCGET refused in the walk:
 * under Linux that is a property without a value (a boolean). */
static int failed_node;
static char failed_name[NAME_MAX_LEN];
static long longest_len;
static char longest_name[NAME_MAX_LEN];

#if HAVE_SUN_OPROM
/* Property names of a node, by the Sun calls (Linux's OPIOCNEXTPROP returns values). */
static int prop_names(int node, char names[][NAME_MAX_LEN], int max)
{
	char prev[NAME_MAX_LEN] = "";
	int n = 0;
	if (sun_nav("walk", "OPROMSETCUR", OPROMSETCUR, node, 0))
		return 0;
	while (n < max) {
		long l = strlen(prev);
		if (sun_call("walk", "OPROMNXTPROP", OPROMNXTPROP, 0, prev, l + 1, l, SUN_MAX, 0, 0, 0))
			break;
		if (sun.o.oprom_size == 0 || sun.o.oprom_array[0] == 0 || sun.o.oprom_size >= NAME_MAX_LEN)
			break;
		memcpy(names[n], sun.o.oprom_array, sun.o.oprom_size);
		names[n][sun.o.oprom_size] = 0;
		memcpy(prev, names[n], sun.o.oprom_size + 1);
		n++;
	}
	return n;
}
#else
/*
 * Property names of a node, by OPIOCNEXTPROP: on the BSDs it returns the
 * next name in the value field, as the seed says.  NetBSD's
 * openpromioctl lets OF_nextprop write a whole name (up to 32 bytes) into
 * a buffer of op_buflen bytes, so the buffer offered is never smaller.
 */
static int prop_names(int node, char names[][NAME_MAX_LEN], int max)
{
	char prev[NAME_MAX_LEN] = "";
	int n = 0;
	while (n < max) {
		long l = strlen(prev), got;
		if (bsd_desc("walk", "OPIOCNEXTPROP", OPIOCNEXTPROP, 0, node, prev, l, 256, 0, &got, 0))
			break;
		if (got <= 0 || bsd_buf[0] == 0 || got >= NAME_MAX_LEN)
			break;
		memcpy(names[n], bsd_buf, got);
		names[n][got] = 0;
		memcpy(prev, names[n], got + 1);
		n++;
	}
	return n;
}
#endif

static void dump_props(const char *kind, int node, int remember)
{
	static char names[MAX_OPTIONS][NAME_MAX_LEN];
	int i, n = prop_names(node, names, MAX_OPTIONS);
	for (i = 0; i < n; i++) {
		long len, nl = strlen(names[i]);
		int rc = bsd_desc("walk", "OPIOCGET", OPIOCGET, 0, node, names[i], nl, BUF, 0, &len, 0);
		begin(kind);
		put(" ");
		put_x((unsigned int)node);
		put(" ");
		put_hex(names[i], nl);
		put(" ");
		put_dec(rc ? -1 : len);
		put(" ");
		if (rc == 0 && len > FIELD_MAX) {
			put_hex(bsd_buf, FIELD_MAX);
			put(" truncated=1");
		} else {
			put_hex(bsd_buf, rc ? 0 : len);
		}
		end_line();
		if (rc == 0 && len == 0 && !empty_node) {
			empty_node = node;
			memcpy(empty_name, names[i], nl + 1);
		}
		if (rc != 0 && !failed_node) {
			failed_node = node;
			memcpy(failed_name, names[i], nl + 1);
		}
		if (remember && n_options < MAX_OPTIONS) {
			memcpy(options_names[n_options++], names[i], nl + 1);
			if (rc == 0 && len > longest_len && names[i][0] != '.' && rt_strncmp(names[i], "name", 5)) {
				longest_len = len;
				memcpy(longest_name, names[i], nl + 1);
			}
		}
	}
}

static void walk(int node, int parent, int depth)
{
	int child;
	begin("node ");
	put_x((unsigned int)node);
	put(" parent=");
	put_x((unsigned int)parent);
	end_line();
	dump_props("prop", node, node == options_node);
	if (depth > 32)
		return;
	for (child = bsd_node("walk", "OPIOCGETCHILD", OPIOCGETCHILD, node, 0); child != 0;
	     child = bsd_node("walk", "OPIOCGETNEXT", OPIOCGETNEXT, child, 0))
		walk(child, node, depth + 1);
}

/* ----------------------------------------------------------- the checks */

static char big[BUF + 1];

static void set_str(const char *label, int ro, const char *name, const char *value)
{
	bsd_desc(label, "OPIOCSET", OPIOCSET, ro, options_node, name, strlen(name), strlen(value), value, 0, 1);
}

static void get_str(const char *label, int node, const char *name, long buflen)
{
	bsd_desc(label, "OPIOCGET", OPIOCGET, 0, node, name, strlen(name), buflen, 0, 0, 1);
}

static void checks(void)
{
	static char setval[128], newname[128], sunbuf[256];
	int i, step;
	long l;
	char prev[NAME_MAX_LEN];
	const char *small = longest_len ? longest_name : var;

	memcpy(setval, "set-by-guest-", 14);
	memcpy(setval + 13, token, strlen(token) + 1 > 100 ? 100 : strlen(token) + 1);
	setval[113] = 0;
	memcpy(newname, "vhw-brand-new-", 15);
	memcpy(newname + 14, token, strlen(token) + 1 > 100 ? 100 : strlen(token) + 1);
	newname[114] = 0;
	for (i = 0; i < n_options; i++)
		if (!rt_strncmp(options_names[i], "my-spaced", 10))
			small = "my-spaced";

	/* the tree */
	bsd_node("getoptnode", "OPIOCGETOPTNODE", OPIOCGETOPTNODE, 0, 1);
	bsd_node("getnext-zero", "OPIOCGETNEXT", OPIOCGETNEXT, 0, 1);
	bsd_node("getchild-zero", "OPIOCGETCHILD", OPIOCGETCHILD, 0, 1);
	bsd_node("getnext-bad-node", "OPIOCGETNEXT", OPIOCGETNEXT, 0x7ffffff0, 1);
	bsd_node("getchild-bad-node", "OPIOCGETCHILD", OPIOCGETCHILD, 0x7ffffff0, 1);
	bsd_node("getchild-root", "OPIOCGETCHILD", OPIOCGETCHILD, root_node, 1);

	/* reading properties */
	for (i = 0; i < n_options; i++)
		get_str("get-every-option", options_node, options_names[i], BUF);
	get_str("get-missing", options_node, "vhw-no-such-property", BUF);
	if (empty_node) {
		get_str("get-empty", empty_node, empty_name, BUF);
	} else if (failed_node) {
		begin("note get-empty: no property read back with length 0; using node ");
		put_x((unsigned int)failed_node);
		put(" property ");
		put(failed_name);
		put(", listed by " NAME_LISTER " but refused by OPIOCGET in the walk (a value-less property?)");
		end_line();
		get_str("get-empty", failed_node, failed_name, BUF);
	} else {
		say("note", "get-empty: no", "zero-length property in the tree");
	}
	get_str("get-small-buffer", options_node, small, 2);
	get_str("get-bad-node", 0x7ffffff0, "name", BUF);

	/* NEXTPROP */
	bsd_desc("nextprop-first", "OPIOCNEXTPROP", OPIOCNEXTPROP, 0, options_node, "", 0, 256, 0, &l, 1);
	prev[0] = 0;
	for (step = 0; step < 200; step++) {
		long n = strlen(prev);
		if (bsd_desc("nextprop-iterate", "OPIOCNEXTPROP", OPIOCNEXTPROP, 0, options_node, prev, n, 256, 0,
			     &l, 1) || l <= 0 || !bsd_buf[0])
			break;
		for (n = 0; n < NAME_MAX_LEN - 1 && n < l && bsd_buf[n]; n++)
			prev[n] = bsd_buf[n];
		prev[n] = 0;
	}
	bsd_desc("nextprop-bad-name", "OPIOCNEXTPROP", OPIOCNEXTPROP, 0, options_node, "vhw-no-such-property", 20,
		 256, 0, &l, 1);

	/* lengths over 8191 bytes */
	memset(big, 'a', BUF);
	bsd_desc("get-name-8192", "OPIOCGET", OPIOCGET, 0, options_node, big, BUF, BUF, 0, 0, 1);
	memset(big, 'b', BUF);
	bsd_desc("set-value-8192", "OPIOCSET", OPIOCSET, 0, options_node, var, strlen(var), BUF, big, 0, 1);

	/* writing */
	set_str("set-readonly-fd", 1, var, setval);
	set_str("set-existing", 0, var, setval);
	get_str("get-after-set", options_node, var, BUF);
	set_str("set-new-name", 0, newname, "x");
	get_str("get-new-name", options_node, newname, BUF);

#if HAVE_SUN_OPROM
	/* the Sun calls */
	sun_named("sun-getopt", "OPROMGETOPT", OPROMGETOPT, var, 1024);
	sun_named("sun-getopt-missing", "OPROMGETOPT", OPROMGETOPT, "vhw-no-such-property", 1024);
	sun_named("sun-nxtopt", "OPROMNXTOPT", OPROMNXTOPT, "", 1024);
	sun_nav("sun-next-zero", "OPROMNEXT", OPROMNEXT, 0, 1);
	sun_nav("sun-child-zero", "OPROMCHILD", OPROMCHILD, 0, 1);
	sun_nav("sun-next-root", "OPROMNEXT", OPROMNEXT, root_node, 1);
	sun_nav("sun-child-root", "OPROMCHILD", OPROMCHILD, root_node, 1);
	sun_nav("sun-setcur-root", "OPROMSETCUR", OPROMSETCUR, root_node, 1);
	sun_named("sun-getprop-name", "OPROMGETPROP", OPROMGETPROP, "name", 1024);
	sun_named("sun-getprop-missing", "OPROMGETPROP", OPROMGETPROP, "vhw-no-such-property", 1024);
	sun_named("sun-nxtprop", "OPROMNXTPROP", OPROMNXTPROP, "", 1024);
	sun_named("sun-getproplen", "OPROMGETPROPLEN", OPROMGETPROPLEN, "name", 1024);
	l = strlen(var);
	memcpy(sunbuf, var, l + 1);
	memcpy(sunbuf + l + 1, setval, strlen(setval) + 1);
	/* oprom_size is "the real size of the following array" (openpromio.h): name, NUL, value, NUL.
	 * Linux stores oprom_size minus the name as the value, so a larger size would store padding. */
	sun_call("sun-setopt", "OPROMSETOPT", OPROMSETOPT, 0, sunbuf, l + 1 + strlen(setval) + 1,
		 l + 1 + strlen(setval) + 1, l + 1 + strlen(setval) + 1, 0, 0, 1);
	sun_call("sun-setopt-readonly-fd", "OPROMSETOPT", OPROMSETOPT, 1, sunbuf, l + 1 + strlen(setval) + 1,
		 l + 1 + strlen(setval) + 1, l + 1 + strlen(setval) + 1, 0, 0, 1);
	sun_call("sun-setopt2", "OPROMSETOPT2", OPROMSETOPT2, 0, sunbuf, l + 1 + strlen(setval),
		 l + 1 + strlen(setval), l + 1 + strlen(setval), 0, 0, 1);
#else
	(void)sunbuf;
	say("note", "Sun OPROM* calls:", "none in <machine/openpromio.h>, not made");
#endif
	get_str("get-final", options_node, var, BUF);
}

int main(int argc, char **argv, char **envp)
{
	const char *v;
	(void)argc;
	(void)argv;
	if ((v = rt_getenv(envp, "vhwtoken")) && *v)
		token = v;
	if ((v = rt_getenv(envp, "vhwvar")) && *v)
		var = v;
#ifdef RT_HOSTED
	/* A hosted run also takes them as NAME=VALUE arguments. */
	for (int i = 1; i < argc; i++) {
		if (!rt_strncmp(argv[i], "vhwtoken=", 9) && argv[i][9])
			token = argv[i] + 9;
		else if (!rt_strncmp(argv[i], "vhwvar=", 7) && argv[i][7])
			var = argv[i] + 7;
	}
#endif
	/* Keep kernel messages (KERN_EMERG aside, e.g. "reboot: System halted")
	 * off the console, so that none lands inside an @@vhw line. */
	rt_console_loglevel(1);
	/* The kernel opens /dev/console as fds 0-2 of init; if it could not, try. */
	if (rt_write(1, "", 0) < 0) {
		int fd = rt_open("/dev/console", O_RDWR);
		if (fd >= 0)
			out_fd = fd;
	}
	begin("begin arch=");
#ifdef __arch64__
	put("sparc64");
#else
	put("sparc32");
#endif
	put(" token=");
	put(token);
	end_line();

	fd_rw = rt_open("/dev/openprom", O_RDWR);
	fd_ro = rt_open("/dev/openprom", O_RDONLY);
	if (fd_rw < 0 || fd_ro < 0) {
		begin("fatal open /dev/openprom: errno ");
		put_dec(-(fd_rw < 0 ? fd_rw : fd_ro));
		end_line();
	} else {
		options_node = bsd_node("walk", "OPIOCGETOPTNODE", OPIOCGETOPTNODE, 0, 0);
		root_node = bsd_node("walk", "OPIOCGETNEXT", OPIOCGETNEXT, 0, 0);
		if (root_node == 0) {
			say("fatal", "OPIOCGETNEXT(0)", "gave no root");
		} else {
			walk(root_node, 0, 0);
			checks();
			dump_props("final", options_node, 0);
			begin("end ops=");
			put_dec(seq);
			end_line();
		}
	}
	/* The halt prints "reboot: System halted" straight to the UART and stops
	 * the machine: whatever the tty still buffered of our lines would be cut
	 * short by it, or lost.  Let the console send it all first. */
	rt_tcdrain(out_fd);
	rt_sync();
	rt_halt();
#ifdef RT_HOSTED
	/* A hosted run ends: 0 once the end line is out, 1 after a fatal line. */
	rt_exit(fd_rw < 0 || fd_ro < 0 || root_node == 0);
#else
	rt_exit(0);
#endif
}
#endif /* __sparc__ */
