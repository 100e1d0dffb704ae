/* Reading raw BSON without building Python objects, for the C builders (_fastrow.c: the load's COPY
 * lines; _fastdigest.c: validation's expected digest text). Only what any reader needs lives here
 * (element extents, field names, strict UTF-8, numbers and dates as digits, the civil calendar); what a
 * value becomes stays in each builder, written from its own Python reference (transform.py,
 * validation/expect.py) and compared with it by its own tests, so the two never share a rule.
 */
#ifndef MONGO2PG_BSON_H
#define MONGO2PG_BSON_H
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* ---- a growing output buffer ---- */
typedef struct { char *buf; size_t cap; } outbuf_t;

static int out_grow(outbuf_t *b, size_t need) {
    if (need <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < need) cap *= 2;
    char *p = PyMem_Realloc(b->buf, cap);
    if (!p) { PyErr_NoMemory(); return -1; }
    b->buf = p; b->cap = cap;
    return 0;
}

static const char HEX[] = "0123456789abcdef";

/* The lowercase hex of n bytes at o; returns the end. */
static char *put_hex(char *o, const uint8_t *p, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++) { *o++ = HEX[p[i] >> 4]; *o++ = HEX[p[i] & 15]; }
    return o;
}

static int32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return (int32_t)v; }  /* little-endian host */
static int64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return (int64_t)v; }
/* An int32 (type 0x10) or int64 (0x12) value. */
static long long rd_int(uint8_t t, const uint8_t *p) { return t == 0x10 ? (long long)rd32(p) : (long long)rd64(p); }

/* Strict UTF-8 as Python decodes it: no overlongs, no surrogates, nothing past U+10FFFF. Also refuses
 * NUL (PostgreSQL text cannot hold it). Returns 1 when valid. */
static int valid_text(const uint8_t *s, Py_ssize_t n) {
    Py_ssize_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) { if (c == 0) return 0; i++; continue; }
        if (c >= 0xC2 && c <= 0xDF) {
            if (i + 1 >= n || (s[i + 1] & 0xC0) != 0x80) return 0;
            i += 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            if (i + 2 >= n || (s[i + 1] & 0xC0) != 0x80 || (s[i + 2] & 0xC0) != 0x80) return 0;
            if (c == 0xE0 && s[i + 1] < 0xA0) return 0;   /* overlong */
            if (c == 0xED && s[i + 1] >= 0xA0) return 0;  /* surrogate */
            i += 3;
        } else if (c >= 0xF0 && c <= 0xF4) {
            if (i + 3 >= n || (s[i + 1] & 0xC0) != 0x80 || (s[i + 2] & 0xC0) != 0x80 || (s[i + 3] & 0xC0) != 0x80)
                return 0;
            if (c == 0xF0 && s[i + 1] < 0x90) return 0;   /* overlong */
            if (c == 0xF4 && s[i + 1] >= 0x90) return 0;  /* past U+10FFFF */
            i += 4;
        } else return 0;
    }
    return 1;
}

/* Days since 1970-01-01 -> civil date (H. Hinnant's algorithm). */
static void civil(int64_t z, int64_t *y, int *m, int *d) {
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}



#define MS_MIN (-62135596800000LL)  /* 0001-01-01 00:00:00.000 */
#define MS_MAX (253402300799999LL)  /* 9999-12-31 23:59:59.999 */

/* v's last `width` decimal digits, zero-padded, at o; returns the end. */
static char *put_digits(char *o, unsigned v, int width) {
    for (int i = width - 1; i >= 0; i--) { o[i] = (char)('0' + v % 10); v /= 10; }
    return o + width;
}

/* "YYYY-MM-DD HH:MM:SS.mmm" of ms since 1970 into out (32 bytes); its length, or 0 outside years 1-9999
 * (where pymongo decodes a DatetimeMS instead of a datetime). */
static int ms_text(int64_t ms, char *out) {
    if (ms < MS_MIN || ms > MS_MAX) return 0;
    int64_t days = ms >= 0 ? ms / 86400000 : -((-ms + 86399999) / 86400000);
    unsigned rem = (unsigned)(ms - days * 86400000);
    int64_t y; int m, d;
    civil(days, &y, &m, &d);
    char *o = put_digits(out, (unsigned)y, 4);
    *o++ = '-'; o = put_digits(o, (unsigned)m, 2);
    *o++ = '-'; o = put_digits(o, (unsigned)d, 2);
    *o++ = ' '; o = put_digits(o, rem / 3600000, 2);
    *o++ = ':'; o = put_digits(o, rem / 60000 % 60, 2);
    *o++ = ':'; o = put_digits(o, rem / 1000 % 60, 2);
    *o++ = '.'; o = put_digits(o, rem % 1000, 3);
    return (int)(o - out);
}

/* The decimal text of x into out (24 bytes), as "%lld" writes it; its length. */
static int int_text(long long x, char *out) {
    char tmp[24], *e = tmp + sizeof tmp, *o = e;
    unsigned long long u = x < 0 ? 0ULL - (unsigned long long)x : (unsigned long long)x;
    do { *--o = (char)('0' + u % 10); u /= 10; } while (u);
    if (x < 0) *--o = '-';
    memcpy(out, o, (size_t)(e - o));
    return (int)(e - o);
}

/* ---- a document's field names ---- */
typedef struct { const char *name; Py_ssize_t len; } bkey_t;
#define KEY_HINTS 64

/* The index of the name q[0:n] among keys (n_keys when absent). The pos-th element of a document is tried
 * first against the key the previous document had there (hints): a collection's documents mostly share
 * their field order, so a document's names are found in one comparison each. */
static Py_ssize_t key_index(const bkey_t *keys, Py_ssize_t n_keys, Py_ssize_t *hints, Py_ssize_t pos,
                            const uint8_t *q, Py_ssize_t n) {
    if (pos < KEY_HINTS) {
        Py_ssize_t h = hints[pos];
        if (h < n_keys && keys[h].len == n && memcmp(keys[h].name, q, (size_t)n) == 0) return h;
    }
    for (Py_ssize_t k = 0; k < n_keys; k++)
        if (keys[k].len == n && memcmp(keys[k].name, q, (size_t)n) == 0) {
            if (pos < KEY_HINTS) hints[pos] = k;
            return k;
        }
    return n_keys;
}

/* ---- one BSON element's extent ---- */
/* Size of the value of type t at p (bytes left: n), or -1 when malformed or a type left to Python. */
static int well_formed(const uint8_t *d, Py_ssize_t n, int depth);

static Py_ssize_t value_size(uint8_t t, const uint8_t *p, Py_ssize_t n, int depth) {
    int32_t l;
    switch (t) {
    case 0x01: case 0x09: case 0x11: case 0x12: return n >= 8 ? 8 : -1;
    case 0x07: return n >= 12 ? 12 : -1;
    case 0x08: return n >= 1 && p[0] <= 1 ? 1 : -1;  /* pymongo refuses any other byte */
    case 0x0A: case 0x06: case 0x7F: case 0xFF: return 0;
    case 0x10: return n >= 4 ? 4 : -1;
    case 0x13: return n >= 16 ? 16 : -1;
    case 0x02: case 0x0D: case 0x0E:
        if (n < 4) return -1;
        l = rd32(p);
        if (l < 1 || (Py_ssize_t)l > n - 4 || p[4 + l - 1] != 0) return -1;
        return 4 + (Py_ssize_t)l;
    case 0x03: case 0x04:
        if (n < 4) return -1;
        l = rd32(p);
        if (l < 5 || (Py_ssize_t)l > n || p[l - 1] != 0 || depth > 100 || !well_formed(p, l, depth + 1)) return -1;
        return l;
    case 0x05:
        if (n < 5) return -1;
        l = rd32(p);
        if (l < 0 || (Py_ssize_t)l > n - 5 || p[4] == 0x02) return -1;  /* subtype 2's inner length: Python checks */
        return 5 + (Py_ssize_t)l;
    default: return -1;  /* regex, dbpointer, code with scope and unknown types: Python's decoder decides */
    }
}

/* A nested document's elements fill it exactly (pymongo refuses the whole document otherwise). */
static int well_formed(const uint8_t *d, Py_ssize_t n, int depth) {
    const uint8_t *q = d + 4, *end = d + n - 1;
    while (q < end) {
        uint8_t t = *q++;
        const uint8_t *nul = memchr(q, 0, (size_t)(end - q));
        if (!nul) return 0;
        Py_ssize_t size = value_size(t, nul + 1, end - (nul + 1), depth);
        if (size < 0) return 0;
        q = nul + 1 + size;
    }
    return q == end;
}


/* The elements of a BSON document or array value (already checked well formed by value_size). */
typedef struct { const uint8_t *q, *end; } iter_t;
static iter_t iter_of(const uint8_t *p, int32_t len) { iter_t it = {p + 4, p + len - 1}; return it; }
static int next_elem(iter_t *it, uint8_t *t, const uint8_t **name, Py_ssize_t *name_len, const uint8_t **val,
                     Py_ssize_t *size) {
    if (it->q >= it->end) return 0;
    *t = *it->q++;
    const uint8_t *nul = memchr(it->q, 0, (size_t)(it->end - it->q));
    *name = it->q; *name_len = nul - it->q;
    *val = nul + 1;
    *size = value_size(*t, *val, it->end - *val, 0);
    it->q = *val + *size;
    return 1;
}

/* ---- a document's top-level values ---- */
typedef struct { const uint8_t *p; int32_t len; uint8_t type; } bval_t;  /* p NULL: absent */

/* Every top-level element of the document d (n bytes) checked as pymongo's decoder would, each value of a
 * name in keys put in values[k] (the last of duplicate names wins, as in the decoded dict), the others
 * left NULL. A name not in keys goes to other(ctx, name, len) when given (1: go on, 0: leave the document
 * to Python, -1: error). Returns 1 read, 0 not readable here (malformed, or a type left to Python), -1
 * error. */
static int read_fields(const uint8_t *d, Py_ssize_t n, const bkey_t *keys, Py_ssize_t n_keys, Py_ssize_t *hints,
                       bval_t *values, int (*other)(void *ctx, const uint8_t *name, Py_ssize_t len), void *ctx) {
    for (Py_ssize_t k = 0; k < n_keys; k++) values[k].p = NULL;
    if (n < 5 || rd32(d) != n || d[n - 1] != 0) return 0;
    const uint8_t *q = d + 4, *end = d + n - 1;
    Py_ssize_t pos = 0;
    while (q < end) {
        uint8_t t = *q++;
        const uint8_t *nul = memchr(q, 0, (size_t)(end - q));
        if (!nul) return 0;
        Py_ssize_t klen = nul - q;
        const uint8_t *val = nul + 1;
        Py_ssize_t size = value_size(t, val, end - val, 0);
        if (size < 0) return 0;
        Py_ssize_t k = key_index(keys, n_keys, hints, pos++, q, klen);
        if (k < n_keys) {
            values[k].p = val; values[k].len = (int32_t)size; values[k].type = t;
        } else if (other) {
            int rc = other(ctx, q, klen);
            if (rc != 1) return rc;
        }
        q = val + size;
    }
    return q == end;
}

#endif
