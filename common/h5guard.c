/* common/h5guard.c - see h5guard.h. Layouts: the HDF5 File Format
 * Specification, version 3 (B-tree III.A.1, symbol table node III.C, local
 * heap III.D, global heap III.E, object headers IV.A.1, dataspace IV.A.2.b,
 * datatype IV.A.2.d, link IV.A.2.g, layout IV.A.2.i, attribute IV.A.2.m,
 * symbol table IV.A.2.r), parsed as libhdf5 1.10 parses them. */
#include "common/h5guard.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Limits on what a sound file needs: dure reads object header chunks of at
 * most 16 MiB, follows at most 1024 continuation chunks per header, reads a
 * heap (global collection, group names) of at most 1 GiB, and walks at most
 * 4 Mi objects and 4 Mi group nodes per file. */
#define HDR_CHUNK_MAX (16u << 20)
#define HDR_CHUNKS_MAX 1024
#define HEAP_MAX ((uint64_t)1 << 30)
#define TREE_OBJECTS_MAX ((size_t)1 << 22)
#define TREE_NODES_MAX ((uint64_t)1 << 22)

/* Reads of metadata go through a direct-mapped cache of 64 blocks of 64 KiB
 * (a file's headers and heaps sit close together): one pread per block
 * instead of three or four per object. Larger reads bypass it. */
#define CACHE_BLOCK ((uint64_t)64 << 10)
#define CACHE_SLOTS 64
struct cache {
    uint64_t tag[CACHE_SLOTS]; /* block index + 1; 0: empty */
    uint8_t *mem;              /* [CACHE_SLOTS][CACHE_BLOCK] */
};

/* The file behind an HDF5 object, read with pread. */
struct h5f {
    int fd;
    uint64_t size;           /* bytes in the file */
    uint64_t base;           /* where address 0 is: the superblock (after a user block) */
    unsigned sa;             /* bytes of an address */
    unsigned ss;             /* bytes of a length */
    unsigned sym_ik, sym_lk; /* group B-tree nodes: 2ik children; leaves: 2lk members;
                                0: unknown */
    const char *what;
    char name[512];      /* "file 'PATH'": `what` when the caller gave none */
    struct cache *cache; /* NULL: reads go to the file */
};

/* The global heap collection read last: its objects' sizes by index. */
struct heap {
    uint64_t addr; /* 0: none loaded */
    uint8_t *buf;
    int64_t *size; /* [n]; -1: no such object */
    unsigned n;    /* 1 + the largest object index (indices are 16-bit) */
};

/* The whole file's walk (h5guard_path): objects still to walk, those seen. */
struct tree {
    struct pending {
        uint64_t addr;
        char *path;
    } *todo;
    size_t ntodo, captodo;
    /* Open addressing of the objects seen: per object the hard links found
     * to it (the root's superblock counts as one) and the links its header
     * counts (0: not walked yet). libhdf5 1.10's H5Ovisit/H5Lvisit remember
     * only objects whose header counts more than one link: one reached
     * again through a link its header does not count is walked again, and
     * a loop of such links never ends. */
    struct seen {
        uint64_t key; /* addr + 1; 0: empty */
        uint32_t links, counted;
    } *seen;
    int uncounted; /* walking the superblock's copy of the root's symbol
                      table: its members' links are counted from the root's
                      header */
    size_t nseen, capseen;
    const char *cur; /* the path of the object being walked */
    uint64_t nodes;  /* group B-tree and symbol table nodes read */
};

/* One walk of an object header: what it checks, what it found. */
struct visit {
    const struct h5f *f;
    struct heap *h;
    const char *obj;  /* for messages: "object '/a/b'", "attribute 'y'", ... */
    const char *attr; /* the variable-length string attribute sought, or NULL */
    size_t cap;
    int found;
    struct tree *t; /* the whole file's walk, or NULL */
    /* In the header walked: the dataspace's rank and the chunked layout's
     * dimensions (rank + 1 before layout version 4), -1 when none. */
    int rank, chunk_dims, chunk_want;
    uint32_t refcount; /* the hard links the header counts */
};

static uint64_t le(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = n; i-- > 0;) {
        v = v << 8 | p[i];
    }
    return v;
}

static uint64_t align8(uint64_t n) { return (n + 7) & ~(uint64_t)7; }

/* 1 when the n bytes at file address addr (relative to the base) lie
 * inside the file. */
static int inside(const struct h5f *f, uint64_t addr, uint64_t n)
{
    uint64_t off = f->base + addr;
    return addr <= f->size && off >= addr && off <= f->size && n <= f->size - off;
}

/* n bytes at file offset off into buf, from the file. */
static int pread_all(int fd, uint64_t off, void *buf, uint64_t n)
{
    for (uint64_t done = 0; done < n;) {
        ssize_t r = pread(fd, (char *)buf + done, n - done, (off_t)(off + done));
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return -1;
        }
        done += (uint64_t)r;
    }
    return 0;
}

/* n bytes at file address addr into buf; 0 when they all lie inside. */
static int rd(const struct h5f *f, uint64_t addr, void *buf, uint64_t n)
{
    uint64_t off = f->base + addr;
    struct cache *c = f->cache;
    if (!inside(f, addr, n)) {
        return -1;
    }
    if (!c || n > CACHE_BLOCK) {
        return pread_all(f->fd, off, buf, n);
    }
    for (uint64_t done = 0; done < n;) {
        uint64_t b = (off + done) / CACHE_BLOCK, at = (off + done) % CACHE_BLOCK;
        uint8_t *blk = c->mem + (b % CACHE_SLOTS) * CACHE_BLOCK;
        if (c->tag[b % CACHE_SLOTS] != b + 1) {
            uint64_t len = f->size - b * CACHE_BLOCK;
            if (pread_all(f->fd, b * CACHE_BLOCK, blk, len < CACHE_BLOCK ? len : CACHE_BLOCK)) {
                c->tag[b % CACHE_SLOTS] = 0;
                return -1;
            }
            c->tag[b % CACHE_SLOTS] = b + 1;
        }
        uint64_t k = CACHE_BLOCK - at < n - done ? CACHE_BLOCK - at : n - done;
        memcpy((uint8_t *)buf + done, blk + at, k);
        done += k;
    }
    return 0;
}

/* Where the root group is, from the superblock: its object header, and
 * (versions 0-1, cache type 1) its cached B-tree and local heap addresses,
 * which libhdf5 uses when it opens the root. */
struct root {
    uint64_t addr;
    uint8_t stab[16];
    int has_stab;
};

/* The superblock (II.A, versions 0-3), found where libhdf5 looks for it:
 * at 0, 512, 1024, ... It sets f's sizes, base and group K values, and r. */
static dure_status_t superblock(struct h5f *f, struct root *r)
{
    dure_status_t st = DURE_OK;
    static const uint8_t sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    uint8_t sb[128];
    uint64_t at = 0;
    for (;; at = at ? 2 * at : 512) {
        DURE_CHECK(at + sizeof sig <= f->size, DURE_ERR_FORMAT,
                   "%s: no HDF5 superblock signature", f->what);
        DURE_CHECK(pread_all(f->fd, at, sb, sizeof sig) == 0, DURE_ERR_FORMAT,
                   "%s: cannot read it", f->what);
        if (memcmp(sb, sig, sizeof sig) == 0) {
            break;
        }
    }
    uint64_t n = f->size - at < sizeof sb ? f->size - at : sizeof sb;
    memset(sb, 0, sizeof sb);
    DURE_CHECK(pread_all(f->fd, at, sb, n) == 0, DURE_ERR_FORMAT,
               "%s: cannot read its superblock", f->what);
    unsigned ver = sb[8], p = 0;
    r->has_stab = 0;
    if (ver <= 1) {
        f->sa = sb[13];
        f->ss = sb[14];
        f->sym_lk = (unsigned)le(sb + 16, 2);
        f->sym_ik = (unsigned)le(sb + 18, 2);
        p = ver == 0 ? 24 : 28;
    } else if (ver <= 3) {
        f->sa = sb[9];
        f->ss = sb[10];
        p = 12;
    }
    DURE_CHECK(ver <= 3 && (f->sa == 2 || f->sa == 4 || f->sa == 8) &&
                   (f->ss == 2 || f->ss == 4 || f->ss == 8),
               DURE_ERR_FORMAT,
               "%s: superblock version %u with addresses of %u and lengths of %u bytes: "
               "damaged, or not one dure reads",
               f->what, ver, f->sa, f->ss);
    f->base = at; /* libhdf5 takes the superblock's place as the base */
    DURE_CHECK(p + 3u * f->sa <= n, DURE_ERR_FORMAT, "%s: its superblock is truncated",
               f->what);
    /* After the base address and the free space or extension address; as
     * libhdf5 compares it (H5F__super_read), with the whole file's size. */
    uint64_t eof = le(sb + p + 2u * f->sa, f->sa);
    DURE_CHECK(eof <= f->size, DURE_ERR_FORMAT,
               "%s is truncated (%llu bytes on disk, its superblock says %llu)", f->what,
               (unsigned long long)f->size, (unsigned long long)eof);
    if (ver <= 1) {
        /* base, free space, end of file, driver block; the root's entry:
         * name offset, header, cache type, reserved, scratch pad. */
        uint64_t e = p + 4u * f->sa;
        DURE_CHECK(e + f->ss + f->sa + 8 + 2u * f->sa <= n, DURE_ERR_FORMAT,
                   "%s: its superblock is truncated", f->what);
        r->addr = le(sb + e + f->ss, f->sa);
        if (le(sb + e + f->ss + f->sa, 4) == 1) {
            memcpy(r->stab, sb + e + f->ss + f->sa + 8, 2u * f->sa);
            r->has_stab = 1;
        }
    } else {
        /* base, superblock extension, end of file, root header. */
        DURE_CHECK(p + 4u * f->sa <= n, DURE_ERR_FORMAT, "%s: its superblock is truncated",
                   f->what);
        r->addr = le(sb + p + 3u * f->sa, f->sa);
    }
out:
    return st;
}

/* Open path for reading into f (f->what set by the caller): its size, a
 * block cache, and what its superblock says (r). */
static dure_status_t file_attach(struct h5f *f, const char *path, struct root *r)
{
    dure_status_t st = DURE_OK;
    struct stat sb;
    f->fd = open(path, O_RDONLY | O_CLOEXEC);
    DURE_SYS_TRY(f->fd >= 0 && fstat(f->fd, &sb) == 0, "%s: open '%s' to check it", f->what,
                 path);
    f->size = (uint64_t)sb.st_size;
    f->cache = calloc(1, sizeof *f->cache);
    DURE_ALLOC_TRY(f->cache, sizeof *f->cache);
    /* A file smaller than the cache needs only its own size: its block b
     * sits in slot b and ends at most at byte size. */
    uint64_t mem = f->size < CACHE_SLOTS * CACHE_BLOCK ? f->size : CACHE_SLOTS * CACHE_BLOCK;
    f->cache->mem = malloc(mem ? mem : 1);
    DURE_ALLOC_TRY(f->cache->mem, mem);
    DURE_TRY(superblock(f, r));
out:
    return st;
}

/* Open the file behind obj for reading; *skip = 1 (and nothing opened)
 * when HDF5 has it open for writing: dure checks the files it reads, not
 * the ones it writes, whose newest parts may not be on disk yet. */
static dure_status_t file_open(hid_t obj, const char *what, struct h5f *f, int *skip)
{
    dure_status_t st = DURE_OK;
    hid_t fid = H5I_INVALID_HID;
    char *path = NULL;
    struct root r;
    unsigned intent = 0;

    memset(f, 0, sizeof *f);
    f->fd = -1;
    f->what = what ? what : "HDF5 file";
    *skip = 0;
    fid = H5Iget_file_id(obj);
    DURE_CHECK(fid >= 0 && H5Fget_intent(fid, &intent) >= 0, DURE_ERR_HDF5,
               "%s: no HDF5 file behind the object", f->what);
    if (intent & H5F_ACC_RDWR) {
        *skip = 1;
        goto out;
    }
    ssize_t len = H5Fget_name(fid, NULL, 0);
    DURE_CHECK(len > 0, DURE_ERR_HDF5, "%s: the file has no name", f->what);
    path = malloc((size_t)len + 1);
    DURE_ALLOC_TRY(path, (size_t)len + 1);
    DURE_CHECK(H5Fget_name(fid, path, (size_t)len + 1) == len, DURE_ERR_HDF5,
               "%s: the file's name", f->what);
    if (!what) {
        snprintf(f->name, sizeof f->name, "file '%s'", path);
        f->what = f->name;
    }
    DURE_TRY(file_attach(f, path, &r));
out:
    free(path);
    if (fid >= 0) H5Fclose(fid);
    return st;
}

static void file_close(struct h5f *f)
{
    if (f->fd >= 0) {
        close(f->fd);
    }
    f->fd = -1;
    if (f->cache) {
        free(f->cache->mem);
        free(f->cache);
        f->cache = NULL;
    }
}

/* Load the collection at addr into h, as libhdf5's H5HG__cache_heap_deserialize
 * parses it, refusing what it would read past: an object or free space
 * beyond the collection, free space smaller than an object header (on which
 * libhdf5 loops forever). */
static dure_status_t heap_load(const struct h5f *f, struct heap *h, uint64_t addr,
                               const char *obj)
{
    dure_status_t st = DURE_OK;
    uint64_t hdr = align8(8 + f->ss), objhdr = align8(8 + f->ss), csize = 0;
    uint8_t head[16];
    uint8_t *buf = NULL;

    if (h->addr == addr) {
        goto out;
    }
    h->addr = 0;
    DURE_CHECK(rd(f, addr, head, 8 + f->ss) == 0 && memcmp(head, "GCOL", 4) == 0 &&
                   head[4] == 1,
               DURE_ERR_FORMAT,
               "%s: %s: its string's global heap at address %llu is not a heap collection",
               f->what, obj, (unsigned long long)addr);
    csize = le(head + 8, f->ss);
    DURE_CHECK(csize >= hdr && csize <= HEAP_MAX && inside(f, addr, csize), DURE_ERR_FORMAT,
               "%s: %s: the global heap collection at address %llu claims %llu bytes, "
               "past the end of the file: damaged",
               f->what, obj, (unsigned long long)addr, (unsigned long long)csize);
    buf = realloc(h->buf, csize);
    DURE_ALLOC_TRY(buf, csize);
    h->buf = buf;
    DURE_CHECK(rd(f, addr, buf, csize) == 0, DURE_ERR_FORMAT,
               "%s: %s: cannot read the global heap collection at address %llu", f->what,
               obj, (unsigned long long)addr);
    h->n = 0;
    for (uint64_t p = hdr; p < csize;) {
        if (p + objhdr > csize) {
            break; /* tail free space, too small for a header */
        }
        unsigned idx = (unsigned)le(buf + p, 2);
        uint64_t size = le(buf + p + 8, f->ss);
        uint64_t need = idx > 0 ? objhdr + align8(size) : size;
        DURE_CHECK(size <= csize && need >= objhdr && need <= csize - p, DURE_ERR_FORMAT,
                   "%s: %s: object %u of the global heap at address %llu claims %llu "
                   "bytes, %llu are left in its collection: damaged",
                   f->what, obj, idx, (unsigned long long)addr, (unsigned long long)size,
                   (unsigned long long)(csize - p));
        if (idx >= h->n) {
            int64_t *ns = realloc(h->size, (idx + 1) * sizeof *ns);
            DURE_ALLOC_TRY(ns, (idx + 1) * sizeof *ns);
            for (unsigned i = h->n; i <= idx; i++) {
                ns[i] = -1;
            }
            h->size = ns;
            h->n = idx + 1;
        }
        h->size[idx] = (int64_t)size;
        p += need;
    }
    h->addr = addr;
out:
    return st;
}

static void heap_free(struct heap *h)
{
    free(h->buf);
    free(h->size);
}

/* One variable-length element as stored: length, heap collection, index. */
static dure_status_t element_check(const struct h5f *f, struct heap *h, const uint8_t *el,
                                   size_t cap, const char *obj)
{
    dure_status_t st = DURE_OK;
    uint64_t len = le(el, 4), addr = le(el + 4, f->sa);
    unsigned idx = (unsigned)le(el + 4 + f->sa, 4);
    if (addr == 0) {
        goto out; /* a null string: libhdf5 reads no heap */
    }
    DURE_CHECK(len <= cap, DURE_ERR_FORMAT,
               "%s: %s: a string of %llu bytes; dure reads at most %zu", f->what, obj,
               (unsigned long long)len, cap);
    DURE_TRY(heap_load(f, h, addr, obj));
    DURE_CHECK(idx > 0 && idx < h->n && h->size[idx] >= 0, DURE_ERR_FORMAT,
               "%s: %s: its string is object %u of the global heap at address %llu, "
               "which has no such object: damaged",
               f->what, obj, idx, (unsigned long long)addr);
    DURE_CHECK((uint64_t)h->size[idx] == len, DURE_ERR_FORMAT,
               "%s: %s: its string claims %llu bytes, its global heap object holds %lld: "
               "damaged",
               f->what, obj, (unsigned long long)len, (long long)h->size[idx]);
out:
    return st;
}

/* Elements of a dataspace message (versions 1-2) into *np; -1 when it is
 * not one libhdf5 would decode. */
static int dspace_points(const struct h5f *f, const uint8_t *s, uint64_t len, uint64_t *np)
{
    unsigned nd = len >= 4 ? s[1] : 0;
    uint64_t p = 0, n = 1;
    if (len < 4 || nd > 32 || s[0] < 1 || s[0] > 2) {
        return -1;
    }
    if (s[0] == 1) {
        p = 8;
    } else if (s[3] == 2) {
        *np = 0; /* the null dataspace */
        return 0;
    } else {
        p = 4;
    }
    if (p + (uint64_t)nd * f->ss > len) {
        return -1;
    }
    for (unsigned i = 0; i < nd; i++) {
        uint64_t d = le(s + p + (uint64_t)i * f->ss, f->ss);
        if (d && n > UINT64_MAX / d) {
            return -1;
        }
        n *= d;
    }
    *np = n;
    return 0;
}

/* Bytes libhdf5 uses for a compound member's offset in a type of `size`
 * bytes (version 3 types: H5VM_limit_enc_size). */
static unsigned offset_bytes(uint64_t size)
{
    unsigned log2 = 0;
    while (size >>= 1) {
        log2++;
    }
    return log2 / 8 + 1;
}

/* A datatype encoding in d[len] as libhdf5 1.10's H5O_dtype_decode_helper
 * reads it, which takes member and enum names up to their NUL and nested
 * types wherever they start: 0 when all of it lies inside, with *used the
 * bytes it takes; -1 otherwise; -2 for a variable-length string whose
 * characters are not bytes; -3 for a number whose bits lie outside its
 * size; -4 for a variable-length type whose size is not its stored form's
 * (sa: the file's address size). Classes it does not know are left to it. */
static int dtype_ok(const uint8_t *d, uint64_t len, unsigned sa, int depth, uint64_t *used)
{
    if (len < 8 || depth > 32) {
        return -1;
    }
    unsigned cls = d[0] & 0x0F, ver = d[0] >> 4;
    uint64_t bits = le(d + 1, 3), size = le(d + 4, 4), p = 8, u = 0;
    unsigned n = (unsigned)(bits & 0xFFFF);
    int rc;
    switch (cls) {
    case 0: /* fixed-point */
    case 4: /* bitfield */
    case 1: /* floating-point: also where its sign, exponent and mantissa are */
        p += cls == 1 ? 12 : 4;
        if (p > len) {
            return -1;
        }
        /* Conversions read the bits at [offset, offset + precision) of
         * each element (H5T__bit_find), which libhdf5 1.10 never compares
         * with the element's size. */
        uint64_t off = le(d + 8, 2), prec = le(d + 10, 2);
        if (prec == 0 || off + prec > 8 * size) {
            return -3;
        }
        if (cls == 1 && (((bits >> 8) & 0xFF) >= prec || (uint64_t)d[12] + d[13] > prec ||
                         (uint64_t)d[14] + d[15] > prec)) {
            return -3;
        }
        break;
    case 2: /* time */
        p += 2;
        break;
    case 5: /* opaque: a tag of (bits & 0xFF) bytes */
        p += bits & 0xFF;
        break;
    case 6: /* compound */
        for (unsigned i = 0; i < n; i++) {
            const uint8_t *z = p < len ? memchr(d + p, 0, len - p) : NULL;
            if (!z) {
                return -1;
            }
            uint64_t nl = (uint64_t)(z - (d + p)) + 1;
            p += ver < 3 ? align8(nl) : nl;
            p += ver < 3 ? 4 : offset_bytes(size);
            p += ver == 1 ? 28 : 0; /* dimensionality, permutation, 4 sizes */
            if (p > len) {
                return -1;
            }
            if ((rc = dtype_ok(d + p, len - p, sa, depth + 1, &u)) != 0) {
                return rc;
            }
            p += u;
        }
        break;
    case 8: { /* enumeration: base type, names, values */
        if ((rc = dtype_ok(d + p, len - p, sa, depth + 1, &u)) != 0) {
            return rc;
        }
        uint64_t base = le(d + p + 4, 4);
        p += u;
        for (unsigned i = 0; i < n; i++) {
            const uint8_t *z = p < len ? memchr(d + p, 0, len - p) : NULL;
            if (!z) {
                return -1;
            }
            uint64_t nl = (uint64_t)(z - (d + p)) + 1;
            p += ver < 3 ? align8(nl) : nl;
        }
        if (base && n > (len - (p < len ? p : len)) / base) {
            return -1;
        }
        p += (uint64_t)n * base;
        break;
    }
    case 9: { /* variable-length: base type; a string's characters are bytes
                 (H5T__conv_vlen allocates length x base size) */
        if ((rc = dtype_ok(d + p, len - p, sa, depth + 1, &u)) != 0) {
            return rc;
        }
        if ((bits & 0x0F) == 1 && le(d + p + 4, 4) != 1) {
            return -2;
        }
        /* Stored as a length, a global heap address and an index: libhdf5
         * sizes an attribute's value by the size declared here and reads
         * the stored form (H5A__read). */
        if (size != 8 + (uint64_t)sa) {
            return -4;
        }
        p += u;
        break;
    }
    case 10: { /* array: rank, dimensions, (version 2) permutation, base */
        if (p >= len) {
            return -1;
        }
        unsigned nd = d[p];
        p += (ver < 3 ? 4 : 1) + (uint64_t)nd * 4 * (ver < 3 ? 2 : 1);
        if (p > len) {
            return -1;
        }
        if ((rc = dtype_ok(d + p, len - p, sa, depth + 1, &u)) != 0) {
            return rc;
        }
        p += u;
        break;
    }
    default: /* string, reference, or one libhdf5 refuses */
        break;
    }
    if (p > len) {
        return -1;
    }
    *used = p;
    return 0;
}

static const char *dtype_fault(int rc)
{
    return rc == -2   ? "is a variable-length string of characters wider than a byte"
           : rc == -3 ? "is a number whose bits (offset, precision, or a float's sign, "
                        "exponent or mantissa) lie outside its size"
           : rc == -4 ? "is variable-length with a size other than its stored form's (4 + "
                        "address + 4 bytes)"
                      : "overruns its header message";
}

/* A datatype message, unless shared. */
static dure_status_t dtype_message(struct visit *v, const uint8_t *d, uint64_t size)
{
    dure_status_t st = DURE_OK;
    uint64_t used = 0;
    int rc = dtype_ok(d, size, v->f->sa, 0, &used);
    DURE_CHECK(rc == 0, DURE_ERR_FORMAT, "%s: %s: its datatype %s: damaged", v->f->what,
               v->obj, dtype_fault(rc));
out:
    return st;
}

/* A filter pipeline message (versions 1-2): libhdf5 1.10 takes a filter's
 * name up to its NUL and its client data at the count stated, without
 * comparing either with the message. */
static dure_status_t pline_message(struct visit *v, const uint8_t *d, uint64_t size)
{
    dure_status_t st = DURE_OK;
    const struct h5f *f = v->f;
    if (size < 2 || d[0] < 1 || d[0] > 2) {
        goto out; /* libhdf5 refuses these itself */
    }
    uint64_t p = d[0] == 1 ? 8 : 2;
    for (unsigned i = 0; i < d[1] && p <= size; i++) {
        uint64_t id = p + 2 <= size ? le(d + p, 2) : 0, nlen = 0;
        p += 2;
        if ((d[0] == 1 || id >= 256) && p + 2 <= size) {
            nlen = le(d + p, 2);
            p += 2;
        }
        uint64_t ncd = p + 4 <= size ? le(d + p + 2, 2) : 0;
        p += 4;
        DURE_CHECK(nlen == 0 || (p + nlen <= size && memchr(d + p, 0, nlen)),
                   DURE_ERR_FORMAT,
                   "%s: %s: the name of filter %u runs past its pipeline message: damaged",
                   f->what, v->obj, i);
        p += nlen + 4 * ncd + (d[0] == 1 && (ncd & 1) ? 4 : 0);
    }
    DURE_CHECK(p <= size, DURE_ERR_FORMAT,
               "%s: %s: its filter pipeline overruns its header message: damaged", f->what,
               v->obj);
out:
    return st;
}

/* An attribute message (versions 1-3). libhdf5 1.10 copies its value,
 * points × type size bytes, without comparing them with the message
 * (H5O_attr_decode), and takes its name up to a NUL: both must lie inside.
 * The attribute sought also has its string checked. */
static dure_status_t attr_message(struct visit *v, const uint8_t *d, uint64_t size)
{
    dure_status_t st = DURE_OK;
    const struct h5f *f = v->f;
    if (size < 8 || d[0] < 1 || d[0] > 3) {
        goto out; /* libhdf5 refuses these itself */
    }
    int v1 = d[0] == 1;
    unsigned flags = v1 ? 0 : d[1];
    uint64_t nlen = le(d + 2, 2), tlen = le(d + 4, 2), slen = le(d + 6, 2);
    uint64_t p = d[0] == 3 ? 9 : 8;
    DURE_CHECK(p < size && memchr(d + p, 0, size - p), DURE_ERR_FORMAT,
               "%s: %s: an attribute's name runs past its header message: damaged", f->what,
               v->obj);
    const char *name = (const char *)d + p;
    uint64_t t = p + (v1 ? align8(nlen) : nlen);
    uint64_t sp = t + (v1 ? align8(tlen) : tlen);
    uint64_t val = sp + (v1 ? align8(slen) : slen);
    DURE_CHECK(val <= size, DURE_ERR_FORMAT,
               "%s: %s: attribute '%s': its name, type and shape (%llu bytes) overrun its "
               "header message (%llu): damaged",
               f->what, v->obj, name, (unsigned long long)val, (unsigned long long)size);
    if ((flags & 3) == 0) { /* neither type nor shape shared: both are here */
        uint64_t np = 0, tsz = tlen >= 8 ? le(d + t + 4, 4) : 0, used = 0;
        int rc = dtype_ok(d + t, size - t, f->sa, 0, &used);
        DURE_CHECK(rc == 0, DURE_ERR_FORMAT, "%s: %s: attribute '%s': its datatype %s: damaged",
                   f->what, v->obj, name, dtype_fault(rc));
        DURE_CHECK(tlen >= 8 && dspace_points(f, d + sp, slen, &np) == 0 &&
                       (tsz == 0 || np <= (size - val) / tsz),
                   DURE_ERR_FORMAT,
                   "%s: %s: attribute '%s': its value (%llu elements of %llu bytes) "
                   "overruns its header message (%llu bytes left): damaged",
                   f->what, v->obj, name, (unsigned long long)np, (unsigned long long)tsz,
                   (unsigned long long)(size - val));
    }
    if (v->attr && strcmp(name, v->attr) == 0) {
        v->found++;
        DURE_CHECK(size - val >= 8u + f->sa, DURE_ERR_FORMAT,
                   "%s: %s: its value lies outside its header message: damaged", f->what,
                   v->obj);
        DURE_TRY(element_check(f, v->h, d + val, v->cap, v->obj));
    }
out:
    return st;
}

/* A layout message (versions 1-4): libhdf5 1.10 divides by the chunk's
 * dimensions (H5D__chunk_set_info), so none may be 0. */
static dure_status_t layout_message(struct visit *v, const uint8_t *d, uint64_t size)
{
    dure_status_t st = DURE_OK;
    const struct h5f *f = v->f;
    uint64_t p = 0, w = 4;
    unsigned nd = 0;
    if (size < 3) {
        goto out;
    }
    if ((d[0] == 1 || d[0] == 2) && d[2] == 2) {
        nd = d[1];
        p = 8 + f->sa;
    } else if (d[0] == 3 && d[1] == 2) {
        nd = d[2];
        p = 3 + f->sa;
    } else if (d[0] == 4 && d[1] == 2 && size >= 5) {
        nd = d[3];
        w = d[4];
        p = 5;
    } else {
        goto out; /* not chunked, or not decoded by libhdf5 either */
    }
    if (w < 1 || w > 8 || p + nd * w > size) {
        goto out; /* libhdf5 refuses these itself */
    }
    v->chunk_dims = (int)nd;
    v->chunk_want = d[0] < 4 ? 1 : 0; /* dimensions beyond the dataspace's rank */
    for (unsigned i = 0; i < nd; i++) {
        DURE_CHECK(le(d + p + i * w, (unsigned)w) != 0, DURE_ERR_FORMAT,
                   "%s: %s: chunk dimension %u of %u is 0: damaged", f->what, v->obj, i, nd);
    }
out:
    return st;
}

/* The array at *pv (a pointer to any element type; *cap elements of `elem`
 * bytes) holds at least n + 1: doubled. The pointer is read and written
 * with memcpy, as its type is the caller's. */
static dure_status_t grow(void *pv, size_t *cap, size_t n, size_t elem)
{
    dure_status_t st = DURE_OK;
    void *v = NULL;
    if (n < *cap) {
        goto out;
    }
    size_t c = *cap ? 2 * *cap : 64;
    memcpy(&v, pv, sizeof v);
    void *nv = realloc(v, c * elem);
    DURE_ALLOC_TRY(nv, c * elem);
    memcpy(pv, &nv, sizeof nv);
    *cap = c;
out:
    return st;
}

/* The slot of key (addr + 1) in a table of cap slots: where it is, or the
 * empty one where it goes. */
static size_t tree_slot(const struct seen *seen, size_t cap, uint64_t key)
{
    size_t k = (size_t)(key * 0x9E3779B97F4A7C15ull) & (cap - 1);
    while (seen[k].key && seen[k].key != key) {
        k = (k + 1) & (cap - 1);
    }
    return k;
}

/* *was = 1 when addr was seen before; else records it. Either way *slot
 * is its slot, and one more link to it is counted (unless t->uncounted). */
static dure_status_t tree_seen(struct tree *t, uint64_t addr, int *was, size_t *slot)
{
    dure_status_t st = DURE_OK;
    if (2 * (t->nseen + 1) > t->capseen) {
        size_t cap = t->capseen ? 2 * t->capseen : 1024;
        struct seen *n = calloc(cap, sizeof *n);
        DURE_ALLOC_TRY(n, cap * sizeof *n);
        for (size_t i = 0; i < t->capseen; i++) {
            if (t->seen[i].key) {
                n[tree_slot(n, cap, t->seen[i].key)] = t->seen[i];
            }
        }
        free(t->seen);
        t->seen = n;
        t->capseen = cap;
    }
    size_t k = tree_slot(t->seen, t->capseen, addr + 1);
    *was = t->seen[k].key != 0;
    if (!*was) {
        t->seen[k].key = addr + 1;
        t->nseen++;
    }
    if (!t->uncounted && t->seen[k].links < UINT32_MAX) {
        t->seen[k].links++;
    }
    *slot = k;
out:
    return st;
}

/* The object in slot k is reached through more hard links than its header
 * counts (once walked): libhdf5 would walk it again, maybe in a loop. The
 * object is named path, or path/name when len > 0. */
static dure_status_t tree_links_ok(const struct visit *v, size_t k, const char *path,
                                   const char *name, size_t len)
{
    dure_status_t st = DURE_OK;
    const struct seen *s = &v->t->seen[k];
    DURE_CHECK(s->counted == 0 || s->links <= s->counted, DURE_ERR_FORMAT,
               "%s: object '%s%s%.*s' is reached through %u hard links, its object "
               "header counts %u: damaged (libhdf5 would visit it again, in a loop if the "
               "links form one)",
               v->f->what, path, len ? "/" : "", (int)(len < 256 ? len : 256), name, s->links,
               s->counted);
out:
    return st;
}

/* The object at addr, named `name` (len bytes) in the group being walked,
 * is walked later unless it was seen. */
static dure_status_t tree_push(struct visit *v, uint64_t addr, const char *name, size_t len)
{
    dure_status_t st = DURE_OK;
    struct tree *t = v->t;
    char *path = NULL;
    int was = 0;
    size_t slot = 0;
    DURE_TRY(tree_seen(t, addr, &was, &slot));
    if (was) {
        DURE_TRY(tree_links_ok(v, slot, strcmp(t->cur, "/") == 0 ? "" : t->cur, name, len));
        goto out;
    }
    DURE_CHECK(t->nseen <= TREE_OBJECTS_MAX, DURE_ERR_FORMAT,
               "%s: more than %zu objects: dure does not check files this large",
               v->f->what, TREE_OBJECTS_MAX);
    DURE_TRY(grow(&t->todo, &t->captodo, t->ntodo, sizeof *t->todo));
    const char *parent = strcmp(t->cur, "/") == 0 ? "" : t->cur;
    size_t plen = strlen(parent) + 1 + len + 1;
    path = malloc(plen);
    DURE_ALLOC_TRY(path, plen);
    snprintf(path, plen, "%s/%.*s", parent, (int)len, name);
    t->todo[t->ntodo++] = (struct pending){addr, path};
    path = NULL;
out:
    free(path);
    return st;
}

/* A group's version 1 B-tree (node type 0) and its symbol table nodes:
 * every node lies inside the file and holds at most what the file's K
 * values allow (libhdf5 sizes its buffers by them), every member's name
 * lies inside the group's local heap (names[seg]; libhdf5 1.10 does not
 * check the offset), and every member is walked next. */
static dure_status_t group_btree(struct visit *v, uint64_t btree, const uint8_t *names,
                                 uint64_t seg)
{
    dure_status_t st = DURE_OK;
    const struct h5f *f = v->f;
    struct node {
        uint64_t addr;
        int level; /* expected; -1: the root, any */
    } *stack = NULL;
    uint8_t *buf = NULL, *ents = NULL;
    size_t n = 0, cap = 0;
    /* K values unknown (0: a version 2-3 superblock keeps them in its
     * extension): only the 16-bit counts bound the nodes. */
    unsigned ik = f->sym_ik ? f->sym_ik : 32767, lk = f->sym_lk ? f->sym_lk : 32767;
    uint64_t hdr = 8 + 2u * f->sa, ent = (uint64_t)f->ss + f->sa + 24; /* a member */

    DURE_TRY(grow(&stack, &cap, 0, sizeof *stack));
    buf = malloc(hdr + (uint64_t)(2 * ik + 1) * (f->ss + f->sa));
    DURE_ALLOC_TRY(buf, hdr + (uint64_t)(2 * ik + 1) * (f->ss + f->sa));
    ents = malloc(2 * (uint64_t)lk * ent);
    DURE_ALLOC_TRY(ents, 2 * (uint64_t)lk * ent);
    stack[n++] = (struct node){btree, -1};
    while (n > 0) {
        struct node nd = stack[--n];
        DURE_CHECK(++v->t->nodes <= TREE_NODES_MAX, DURE_ERR_FORMAT,
                   "%s: more than %llu group nodes: dure does not check files this large",
                   f->what, (unsigned long long)TREE_NODES_MAX);
        DURE_CHECK(rd(f, nd.addr, buf, hdr) == 0 && memcmp(buf, "TREE", 4) == 0 &&
                       buf[4] == 0 && (nd.level < 0 || buf[5] == nd.level),
                   DURE_ERR_FORMAT,
                   "%s: %s: its group's B-tree node at address %llu is not one: damaged",
                   f->what, v->obj, (unsigned long long)nd.addr);
        unsigned level = buf[5], used = (unsigned)le(buf + 6, 2);
        DURE_CHECK(used <= 2 * ik, DURE_ERR_FORMAT,
                   "%s: %s: a B-tree node of its group holds %u children; the file allows "
                   "%u: damaged",
                   f->what, v->obj, used, 2 * ik);
        uint64_t body = (uint64_t)used * (f->ss + f->sa) + f->ss;
        DURE_CHECK(rd(f, nd.addr + hdr, buf, body) == 0, DURE_ERR_FORMAT,
                   "%s: %s: a B-tree node of its group lies outside the file", f->what,
                   v->obj);
        for (unsigned i = 0; i < used; i++) {
            uint64_t child = le(buf + (uint64_t)i * (f->ss + f->sa) + f->ss, f->sa);
            if (level > 0) {
                DURE_TRY(grow(&stack, &cap, n, sizeof *stack));
                stack[n++] = (struct node){child, (int)level - 1};
                continue;
            }
            /* A symbol table node: "SNOD", version 1, reserved, count. */
            uint8_t sn[8];
            DURE_CHECK(rd(f, child, sn, 8) == 0 && memcmp(sn, "SNOD", 4) == 0,
                       DURE_ERR_FORMAT,
                       "%s: %s: its group's symbol table node at address %llu is not one: "
                       "damaged",
                       f->what, v->obj, (unsigned long long)child);
            unsigned syms = (unsigned)le(sn + 6, 2);
            DURE_CHECK(syms <= 2 * lk, DURE_ERR_FORMAT,
                       "%s: %s: a symbol table node of its group holds %u members; the "
                       "file allows %u: damaged",
                       f->what, v->obj, syms, 2 * lk);
            DURE_CHECK(rd(f, child + 8, ents, syms * ent) == 0, DURE_ERR_FORMAT,
                       "%s: %s: a symbol table node of its group lies outside the file",
                       f->what, v->obj);
            for (unsigned k = 0; k < syms; k++) {
                uint64_t off = le(ents + k * ent, f->ss);
                uint64_t obj = le(ents + k * ent + f->ss, f->sa);
                DURE_CHECK(off < seg && memchr(names + off, 0, seg - off), DURE_ERR_FORMAT,
                           "%s: %s: member %u of a symbol table node names offset %llu of "
                           "its group's local heap of %llu bytes: damaged",
                           f->what, v->obj, k, (unsigned long long)off,
                           (unsigned long long)seg);
                DURE_TRY(tree_push(v, obj, (const char *)names + off,
                                   strlen((const char *)names + off)));
            }
        }
    }
out:
    free(ents);
    free(buf);
    free(stack);
    return st;
}

/* A symbol table message: an old-style group's B-tree and local heap,
 * whose data segment libhdf5 1.10 reads whole at the size the heap states
 * (H5HL_protect: a size of exabytes fails to allocate, and the read goes on
 * into NULL): the segment must lie inside the file. In the whole file's
 * walk, the group's members are walked next. */
static dure_status_t symtab_message(struct visit *v, const uint8_t *d, uint64_t size)
{
    dure_status_t st = DURE_OK;
    const struct h5f *f = v->f;
    uint8_t pre[40];
    uint8_t *names = NULL;
    if (size < 2u * f->sa) {
        goto out; /* libhdf5 refuses it itself */
    }
    uint64_t heap = le(d + f->sa, f->sa);
    unsigned n = 8u + 2u * f->ss + f->sa;
    DURE_CHECK(rd(f, heap, pre, n) == 0 && memcmp(pre, "HEAP", 4) == 0, DURE_ERR_FORMAT,
               "%s: %s: its group's local heap at address %llu is not one: damaged", f->what,
               v->obj, (unsigned long long)heap);
    uint64_t seg = le(pre + 8, f->ss), at = le(pre + 8 + 2u * f->ss, f->sa);
    DURE_CHECK(inside(f, at, seg), DURE_ERR_FORMAT,
               "%s: %s: its group's local heap claims %llu bytes at address %llu, past the "
               "end of the file: damaged",
               f->what, v->obj, (unsigned long long)seg, (unsigned long long)at);
    if (v->t) {
        DURE_CHECK(seg <= HEAP_MAX, DURE_ERR_FORMAT,
                   "%s: %s: its group's local heap of %llu bytes is larger than dure reads",
                   f->what, v->obj, (unsigned long long)seg);
        names = malloc(seg ? seg : 1);
        DURE_ALLOC_TRY(names, seg);
        DURE_CHECK(rd(f, at, names, seg) == 0, DURE_ERR_FORMAT,
                   "%s: %s: cannot read its group's local heap", f->what, v->obj);
        DURE_TRY(group_btree(v, le(d, f->sa), names, seg));
    }
out:
    free(names);
    return st;
}

/* A link message (version 1): its name and target lie inside it; in the
 * whole file's walk, a hard link's object is walked next. */
static dure_status_t link_message(struct visit *v, const uint8_t *d, uint64_t size)
{
    dure_status_t st = DURE_OK;
    const struct h5f *f = v->f;
    if (size < 2 || d[0] != 1) {
        goto out; /* libhdf5 refuses it itself */
    }
    unsigned flags = d[1], type = 0;
    uint64_t p = 2, w = 1u << (flags & 3);
    if (flags & 0x08) {
        type = p < size ? d[p] : 0;
        p++;
    }
    p += ((flags & 0x04) ? 8 : 0) + ((flags & 0x10) ? 1 : 0);
    uint64_t nlen = p + w <= size ? le(d + p, (unsigned)w) : 0;
    DURE_CHECK(p + w <= size && nlen <= size - p - w &&
                   (type != 0 || size - p - w - nlen >= f->sa),
               DURE_ERR_FORMAT, "%s: %s: a link message overruns itself: damaged", f->what,
               v->obj);
    if (type == 0 && v->t) {
        DURE_TRY(tree_push(v, le(d + p + w + nlen, f->sa), (const char *)d + p + w,
                           (size_t)nlen));
    }
out:
    return st;
}

/* One header message, of the types checked. */
static dure_status_t message(struct visit *v, unsigned type, const uint8_t *d, uint64_t size)
{
    switch (type) {
    case 0x01: /* dataspace: its rank, for the layout's */
        if (size >= 2 && d[0] >= 1 && d[0] <= 2) {
            v->rank = d[1];
        }
        return DURE_OK;
    case 0x03:
        return dtype_message(v, d, size);
    case 0x06:
        return link_message(v, d, size);
    case 0x08:
        return layout_message(v, d, size);
    case 0x0B:
        return pline_message(v, d, size);
    case 0x0C:
        return attr_message(v, d, size);
    case 0x11:
        return symtab_message(v, d, size);
    case 0x16: /* object reference count: version 0, then the count */
        if (size >= 5 && d[0] == 0) {
            v->refcount = (uint32_t)le(d + 1, 4);
        }
        return DURE_OK;
    default:
        return DURE_OK;
    }
}

/* A chunk of header messages to walk. */
struct chunk {
    uint64_t addr, len;
};

/* Walk every message of the object header at addr (versions 1 and 2, with
 * their continuation chunks), checking attribute, layout, symbol table and
 * link messages. */
static dure_status_t header_walk(struct visit *v, uint64_t addr)
{
    dure_status_t st = DURE_OK;
    const struct h5f *f = v->f;
    struct chunk *q = NULL;
    uint8_t *buf = NULL;
    uint8_t pre[40];
    int nq = 0, v2 = 0, crt = 0;

    q = malloc(HDR_CHUNKS_MAX * sizeof *q);
    DURE_ALLOC_TRY(q, HDR_CHUNKS_MAX * sizeof *q);
    DURE_CHECK(rd(f, addr, pre, 16) == 0, DURE_ERR_FORMAT,
               "%s: %s: its object header at address %llu lies outside the file", f->what,
               v->obj, (unsigned long long)addr);
    if (memcmp(pre, "OHDR", 4) == 0) {
        unsigned flags = pre[5];
        uint64_t p = 6 + ((flags & 0x20) ? 16 : 0) + ((flags & 0x10) ? 4 : 0);
        unsigned w = 1u << (flags & 3);
        DURE_CHECK(pre[4] == 2 && rd(f, addr, pre, p + w) == 0, DURE_ERR_FORMAT,
                   "%s: %s: its object header at address %llu is damaged", f->what, v->obj,
                   (unsigned long long)addr);
        v2 = 1;
        crt = (flags & 0x04) != 0;
        q[nq++] = (struct chunk){addr + p + w, le(pre + p, w)};
        v->refcount = 1; /* unless a reference count message says more */
    } else {
        DURE_CHECK(pre[0] == 1, DURE_ERR_FORMAT,
                   "%s: %s: its object header at address %llu has version %u: damaged",
                   f->what, v->obj, (unsigned long long)addr, pre[0]);
        q[nq++] = (struct chunk){addr + 16, le(pre + 8, 4)};
        v->refcount = (uint32_t)le(pre + 4, 4);
    }
    unsigned mh = v2 ? 4u + (crt ? 2u : 0u) : 8u; /* bytes of a message's header */
    v->rank = v->chunk_dims = -1;
    for (int c = 0; c < nq; c++) {
        uint64_t len = q[c].len;
        DURE_CHECK(len <= HDR_CHUNK_MAX, DURE_ERR_FORMAT,
                   "%s: %s: an object header chunk of %llu bytes: damaged", f->what, v->obj,
                   (unsigned long long)len);
        uint8_t *nb = realloc(buf, len ? len : 1);
        DURE_ALLOC_TRY(nb, len);
        buf = nb;
        DURE_CHECK(rd(f, q[c].addr, buf, len) == 0, DURE_ERR_FORMAT,
                   "%s: %s: an object header chunk at address %llu lies outside the file",
                   f->what, v->obj, (unsigned long long)q[c].addr);
        for (uint64_t p = 0; p + mh <= len;) {
            unsigned type = v2 ? buf[p] : (unsigned)le(buf + p, 2);
            uint64_t size = le(buf + p + (v2 ? 1 : 2), 2);
            int shared = (buf[p + (v2 ? 3 : 4)] & 0x02) != 0; /* a reference, not the message */
            p += mh;
            DURE_CHECK(size <= len - p, DURE_ERR_FORMAT,
                       "%s: %s: an object header message of %llu bytes overruns its chunk "
                       "at address %llu: damaged",
                       f->what, v->obj, (unsigned long long)size,
                       (unsigned long long)q[c].addr);
            if (!shared) { /* a shared one is checked where it is stored */
                DURE_TRY(message(v, type, buf + p, size));
            }
            if (type == 0x10 && size >= (uint64_t)f->sa + f->ss) {
                DURE_CHECK(nq < HDR_CHUNKS_MAX, DURE_ERR_FORMAT,
                           "%s: %s: more than %d object header chunks", f->what, v->obj,
                           HDR_CHUNKS_MAX);
                uint64_t ca = le(buf + p, f->sa), cl = le(buf + p + f->sa, f->ss);
                /* Version 2 continuation chunks: "OCHK", messages, checksum. */
                q[nq++] = v2 ? (struct chunk){ca + 4, cl >= 8 ? cl - 8 : 0}
                             : (struct chunk){ca, cl};
            }
            p += size;
        }
    }
    /* libhdf5 1.10 reads as many chunk dimensions as the dataspace has
     * (H5D__chunk_set_info), whatever the layout stores. */
    DURE_CHECK(v->chunk_dims < 0 || v->rank < 0 || v->chunk_dims == v->rank + v->chunk_want,
               DURE_ERR_FORMAT,
               "%s: %s: its chunked layout stores %d dimensions, its dataspace of rank %d "
               "needs %d: damaged",
               f->what, v->obj, v->chunk_dims, v->rank, v->rank + v->chunk_want);
    if (v->t) {
        size_t k = tree_slot(v->t->seen, v->t->capseen, addr + 1);
        v->t->seen[k].counted = v->refcount ? v->refcount : 1;
        DURE_TRY(tree_links_ok(v, k, v->t->cur, "", 0));
    }
out:
    free(buf);
    free(q);
    return st;
}

dure_status_t h5guard_path(const char *path, const char *what)
{
    dure_status_t st = DURE_OK;
    struct h5f f = {.fd = -1};
    struct heap h = {0};
    struct tree t = {0};
    struct root r;
    char obj[160];
    int was = 0;

    f.what = what;
    DURE_TRY(file_attach(&f, path, &r));
    struct visit v = {.f = &f, .h = &h, .obj = obj, .t = &t};
    size_t slot = 0;
    DURE_TRY(tree_seen(&t, r.addr, &was, &slot)); /* the superblock's link */
    t.cur = "/";
    snprintf(obj, sizeof obj, "object '/'");
    if (r.has_stab) { /* the root's cached symbol table, as a message */
        t.uncounted = 1;
        DURE_TRY(symtab_message(&v, r.stab, 2u * f.sa));
        t.uncounted = 0;
    }
    DURE_TRY(header_walk(&v, r.addr));
    while (t.ntodo > 0) {
        struct pending p = t.todo[--t.ntodo];
        t.cur = p.path;
        snprintf(obj, sizeof obj, "object '%s'", p.path);
        st = header_walk(&v, p.addr);
        free(p.path);
        t.cur = "/";
        DURE_TRY(st);
    }
out:
    for (size_t i = 0; i < t.ntodo; i++) {
        free(t.todo[i].path);
    }
    free(t.todo);
    free(t.seen);
    heap_free(&h);
    file_close(&f);
    return st;
}

dure_status_t h5guard_vlen_attr(hid_t obj, const char *name, size_t cap, const char *what)
{
    dure_status_t st = DURE_OK;
    struct h5f f = {.fd = -1};
    struct heap h = {0};
    H5O_info_t oi;
    char label[160];
    hid_t at = H5I_INVALID_HID, sp = H5I_INVALID_HID;
    int skip = 0;

    DURE_TRY(file_open(obj, what, &f, &skip));
    if (skip) {
        goto out;
    }
    snprintf(label, sizeof label, "attribute '%s'", name);
    struct visit v = {.f = &f, .h = &h, .obj = label, .attr = name, .cap = cap};
    DURE_CHECK(H5Oget_info2(obj, &oi, H5O_INFO_BASIC) >= 0, DURE_ERR_FORMAT,
               "%s: %s: cannot find its object header", f.what, label);
    DURE_TRY(header_walk(&v, oi.addr));
    DURE_CHECK(v.found > 0, DURE_ERR_FORMAT,
               "%s: %s is not in its object header (dense or shared attribute storage), "
               "so dure cannot check its string before libhdf5 reads it",
               f.what, label);
    DURE_CHECK((at = H5Aopen(obj, name, H5P_DEFAULT)) >= 0 && (sp = H5Aget_space(at)) >= 0,
               DURE_ERR_FORMAT, "%s: cannot open %s", f.what, label);
    DURE_CHECK(H5Sget_simple_extent_npoints(sp) == 1, DURE_ERR_FORMAT,
               "%s: %s holds %lld strings; dure reads one", f.what, label,
               (long long)H5Sget_simple_extent_npoints(sp));
out:
    heap_free(&h);
    file_close(&f);
    if (sp >= 0) H5Sclose(sp);
    if (at >= 0) H5Aclose(at);
    H5Eclear2(H5E_DEFAULT);
    return st;
}

dure_status_t h5guard_vlen_dataset(hid_t d, const char *name, int64_t n, size_t cap,
                                   const char *what)
{
    dure_status_t st = DURE_OK;
    struct h5f f = {.fd = -1};
    struct heap h = {0};
    hid_t dcpl = H5I_INVALID_HID;
    uint8_t *el = NULL;
    char obj[160];
    int skip = 0;
    enum { BATCH = 4096 };

    snprintf(obj, sizeof obj, "dataset '%s'", name);
    DURE_TRY(file_open(d, what, &f, &skip));
    if (skip) {
        goto out;
    }
    dcpl = H5Dget_create_plist(d);
    DURE_CHECK(dcpl >= 0, DURE_ERR_HDF5, "%s: the layout of %s", f.what, obj);
    DURE_CHECK(H5Pget_layout(dcpl) == H5D_CONTIGUOUS, DURE_ERR_FORMAT,
               "%s: %s holds variable-length strings and is not contiguous, so dure "
               "cannot check them before libhdf5 reads them",
               f.what, obj);
    haddr_t off = H5Dget_offset(d);
    if (off == HADDR_UNDEF || n == 0) {
        goto out; /* never written: libhdf5 reads fill values, no heap */
    }
    uint64_t es = 8u + f.sa;
    el = malloc(BATCH * es);
    DURE_ALLOC_TRY(el, BATCH * es);
    /* H5Dget_offset counts from the start of the file, rd from the base. */
    DURE_CHECK(off >= f.base, DURE_ERR_FORMAT, "%s: %s: its data lies before the file's base",
               f.what, obj);
    for (int64_t i = 0; i < n; i += BATCH) {
        int64_t k = n - i < BATCH ? n - i : BATCH;
        DURE_CHECK(rd(&f, off - f.base + (uint64_t)i * es, el, (uint64_t)k * es) == 0,
                   DURE_ERR_FORMAT,
                   "%s: %s: its %lld strings' %llu bytes at offset %llu lie outside the file",
                   f.what, obj, (long long)n, (unsigned long long)((uint64_t)n * es),
                   (unsigned long long)off);
        for (int64_t j = 0; j < k; j++) {
            DURE_TRY(element_check(&f, &h, el + (uint64_t)j * es, cap, obj));
        }
    }
out:
    free(el);
    heap_free(&h);
    file_close(&f);
    if (dcpl >= 0) H5Pclose(dcpl);
    H5Eclear2(H5E_DEFAULT);
    return st;
}
