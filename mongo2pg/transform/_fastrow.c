/* One document's raw BSON -> its COPY text line, without building Python objects for its values.
 *
 * The compiled Python row (transform.compile_row) is the reference: this settles only the cases it is
 * sure to settle the same way (valid UTF-8 strings without NUL, int32/int64 in range, booleans, dates
 * in years 1-9999, ObjectIds, enum values, binaries, nulls by the column's rule) and answers None for
 * anything else, a malformed document included. The caller then decodes the document and takes the
 * Python path, which rejects or fixes it up by name. tests/test_fastrow.py compares both on generated
 * documents.
 */
#include "../_bson.h"
#include <math.h>

enum kind { K_OTHER = 0, K_UUID, K_TEXT, K_INTEGER, K_BIGINT, K_DOUBLE, K_BOOLEAN, K_TIMESTAMP, K_ENUM, K_BYTEA,
            K_JSONB, K_TEXT_ARRAY, K_UUID_ARRAY, K_INTEGER_ARRAY };
enum null_rule { N_NULL = 0, N_FILL, N_OID_TIME, N_SLOW };

typedef struct {
    Py_ssize_t key;      /* index into keys */
    int kind, null_rule;
    const char *fill; Py_ssize_t fill_len;
    Py_ssize_t n_enum; const char **enum_in; Py_ssize_t *enum_in_len; const char **enum_out; Py_ssize_t *enum_out_len;
} field_t;
typedef struct {
    Py_ssize_t key;
    const char *head; Py_ssize_t head_len;   /* linkstage.row_parts */
    const char *tail; Py_ssize_t tail_len;
    int own_is_left;
} junction_t;

typedef struct {
    PyObject_HEAD
    PyObject *keep;      /* the Python objects whose buffers the pointers below read */
    Py_ssize_t n_keys, n_fields, n_junctions, id_key;
    bkey_t *keys; field_t *fields; junction_t *junctions; bval_t *values;
    outbuf_t out;
    Py_ssize_t hints[KEY_HINTS];  /* key_index's guesses from the previous document */
    int ready;           /* set once __init__ has filled everything above */
} Plan;

/* ---- output buffer ---- */
static int grow(Plan *pl, size_t need) { return out_grow(&pl->out, need); }
#define PUT(pl, n, src) do { if (grow(pl, pos + (n)) < 0) return -1; memcpy((pl)->out.buf + pos, (src), (n)); pos += (n); } while (0)

static void uuid_bytes(const uint8_t *oid, uint8_t *out) { /* ids.uuid_from_objectid's 16 bytes */
    memcpy(out, oid, 6);
    memcpy(out + 6, "\x80\x00\x80\x00", 4);
    memcpy(out + 10, oid + 6, 6);
}

static void uuid_hex(const uint8_t *oid, char *out) { /* a copy of ids.uuid_hex_from_oid_hex (12 hex, ids.MIDDLE_HEX, 12 hex); tests/test_ids.py holds them equal */
    memcpy(put_hex(out, oid, 6), "80008000", 8);
    put_hex(out + 20, oid + 6, 6);
}

/* transform.copy_escape: backslash, tab, newline and CR escaped for COPY text. */
static int put_escaped(Plan *pl, size_t *ppos, const uint8_t *s, Py_ssize_t n) {
    size_t pos = *ppos;
    if (grow(pl, pos + 2 * (size_t)n) < 0) return -1;
    char *o = pl->out.buf + pos;
    for (Py_ssize_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        switch (c) {
        case '\\': *o++ = '\\'; *o++ = '\\'; break;
        case '\t': *o++ = '\\'; *o++ = 't'; break;
        case '\n': *o++ = '\\'; *o++ = 'n'; break;
        case '\r': *o++ = '\\'; *o++ = 'r'; break;
        default: *o++ = (char)c;
        }
    }
    *ppos = (size_t)(o - pl->out.buf);
    return 0;
}

/* timestamp(3) text of ms since 1970, as transform.timestamp_text writes it. 0 when outside years 1-9999
 * (pymongo then decodes a DatetimeMS, which the Python path rejects). */
static int put_timestamp(Plan *pl, size_t *ppos, int64_t ms) {
    char tmp[32];
    int n = ms_text(ms, tmp);
    if (n == 0) return 0;
    size_t pos = *ppos;
    PUT(pl, (size_t)n, tmp);
    *ppos = pos;
    return 1;
}

/* repr(float), with the texts given for NaN and the infinities. */
static int put_double(Plan *pl, size_t *ppos, double x, const char *nan, const char *inf, const char *ninf) {
    size_t pos = *ppos;
    const char *fixed = isnan(x) ? nan : isinf(x) ? (x > 0 ? inf : ninf) : NULL;
    if (fixed) {
        PUT(pl, strlen(fixed), fixed);
    } else {
        char *r = PyOS_double_to_string(x, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
        if (!r) return -1;
        size_t n = strlen(r);
        if (grow(pl, pos + n) < 0) { PyMem_Free(r); return -1; }
        memcpy(pl->out.buf + pos, r, n); pos += n;
        PyMem_Free(r);
    }
    *ppos = pos;
    return 0;
}

/* ---- jsonb and arrays ---- */
/* A JSON string as json.JSONEncoder(ensure_ascii=False) writes it, then every backslash doubled for COPY
 * (transform.conv_jsonb). 0 for invalid UTF-8 or a NUL (Python rejects them by name). */
static int put_json_string(Plan *pl, size_t *ppos, const uint8_t *s, Py_ssize_t n) {
    if (!valid_text(s, n)) return 0;
    size_t pos = *ppos;
    if (grow(pl, pos + 2 + 12 * (size_t)n) < 0) return -1;
    char *o = pl->out.buf + pos;
    *o++ = '"';
    for (Py_ssize_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        const char *e = NULL;
        switch (c) {
        case '"': e = "\\\\\""; break;
        case '\\': e = "\\\\\\\\"; break;
        case '\n': e = "\\\\n"; break;
        case '\r': e = "\\\\r"; break;
        case '\t': e = "\\\\t"; break;
        case '\b': e = "\\\\b"; break;
        case '\f': e = "\\\\f"; break;
        }
        if (e) { size_t l = strlen(e); memcpy(o, e, l); o += l; }
        else if (c < 0x20) { o += sprintf(o, "\\\\u%04x", c); }
        else *o++ = (char)c;
    }
    *o++ = '"';
    *ppos = (size_t)(o - pl->out.buf);
    return 1;
}

/* A BSON value as JSON text the way conv_jsonb's encoder writes the decoded value: dicts, lists, strings,
 * numbers, booleans and null. 0 for anything else (BSON types that need extended JSON, NaN, DBRef-like
 * keys, duplicate keys in a nested document): Python decides. */
static int put_json(Plan *pl, size_t *ppos, uint8_t t, const uint8_t *p, Py_ssize_t len, int depth) {
    size_t pos = *ppos;
    char tmp[32];
    int rc;
    switch (t) {
    case 0x0A: PUT(pl, 4, "null"); break;
    case 0x08: if (p[0]) PUT(pl, 4, "true"); else PUT(pl, 5, "false"); break;
    case 0x10: case 0x12: {
        int n = int_text(rd_int(t, p), tmp);
        PUT(pl, (size_t)n, tmp);
        break;
    }
    case 0x01: {
        double x; memcpy(&x, p, 8);
        if (isnan(x) || isinf(x)) return 0;
        if (put_double(pl, &pos, x, NULL, NULL, NULL) < 0) return -1;
        break;
    }
    case 0x02:
        rc = put_json_string(pl, &pos, p + 4, len - 5);
        if (rc != 1) return rc;
        break;
    case 0x03: case 0x04: {
        if (depth > 100) return 0;
        iter_t it = iter_of(p, (int32_t)len);
        uint8_t et; const uint8_t *name, *val; Py_ssize_t nl, size;
        const uint8_t *names[64]; Py_ssize_t name_lens[64]; int n_names = 0;
        PUT(pl, 1, t == 0x03 ? "{" : "[");
        int first = 1;
        while (next_elem(&it, &et, &name, &nl, &val, &size)) {
            if (!first) PUT(pl, 1, ",");
            first = 0;
            if (t == 0x03) {
                if (nl > 0 && name[0] == '$') return 0;  /* $ref/$id: pymongo may decode a DBRef */
                if (n_names == 64) return 0;
                for (int i = 0; i < n_names; i++)
                    if (name_lens[i] == nl && memcmp(names[i], name, (size_t)nl) == 0) return 0;
                names[n_names] = name; name_lens[n_names++] = nl;
                rc = put_json_string(pl, &pos, name, nl);
                if (rc != 1) return rc;
                PUT(pl, 1, ":");
            }
            rc = put_json(pl, &pos, et, val, size, depth + 1);
            if (rc != 1) return rc;
        }
        PUT(pl, 1, t == 0x03 ? "}" : "]");
        break;
    }
    default: return 0;
    }
    *ppos = pos;
    return 1;
}

/* text[], uuid[] and integer[] literals as transform.conv_*_array write them, escaped for COPY. */
static int put_array(Plan *pl, size_t *ppos, int kind, const bval_t *v) {
    if (v->type != 0x04) return 0;
    size_t pos = *ppos;
    char tmp[40];
    iter_t it = iter_of(v->p, v->len);
    uint8_t t; const uint8_t *name, *val; Py_ssize_t nl, size;
    PUT(pl, 1, "{");
    int first = 1;
    while (next_elem(&it, &t, &name, &nl, &val, &size)) {
        if (!first) PUT(pl, 1, ",");
        first = 0;
        if (t == 0x0A) { PUT(pl, 4, "NULL"); continue; }
        if (kind == K_UUID_ARRAY) {
            if (t != 0x07) return 0;
            uuid_hex(val, tmp);
            PUT(pl, 32, tmp);
        } else if (kind == K_INTEGER_ARRAY || t == 0x10 || t == 0x12) {
            if (t != 0x10 && t != 0x12) return 0;
            long long x = rd_int(t, val);
            if (kind == K_INTEGER_ARRAY && (x < INT32_MIN || x > INT32_MAX)) return 0;
            if (kind == K_INTEGER_ARRAY) {
                int n = int_text(x, tmp);
                PUT(pl, (size_t)n, tmp);
            } else {  /* a number in a text array: its text, quoted */
                int n = int_text(x, tmp + 1);
                tmp[0] = '"'; tmp[n + 1] = '"';
                PUT(pl, (size_t)n + 2, tmp);
            }
        } else if (t == 0x02) {  /* "elem", its backslashes and quotes escaped, then the whole escaped for COPY */
            const uint8_t *s = val + 4;
            Py_ssize_t n = size - 5;
            if (!valid_text(s, n)) return 0;
            if (grow(pl, pos + 2 + 4 * (size_t)n) < 0) return -1;
            char *o = pl->out.buf + pos;
            *o++ = '"';
            for (Py_ssize_t i = 0; i < n; i++) {
                uint8_t c = s[i];
                switch (c) {
                case '\\': memcpy(o, "\\\\\\\\", 4); o += 4; break;
                case '"': memcpy(o, "\\\\\"", 3); o += 3; break;
                case '\t': memcpy(o, "\\t", 2); o += 2; break;
                case '\n': memcpy(o, "\\n", 2); o += 2; break;
                case '\r': memcpy(o, "\\r", 2); o += 2; break;
                default: *o++ = (char)c;
                }
            }
            *o++ = '"';
            pos = (size_t)(o - pl->out.buf);
        } else {
            return 0;  /* floats, nested values: Python */
        }
    }
    PUT(pl, 1, "}");
    *ppos = pos;
    return 1;
}

/* ---- the row ---- */
static int put_field(Plan *pl, size_t *ppos, const field_t *f, const bval_t *v, const uint8_t *oid) {
    size_t pos = *ppos;
    char tmp[40];
    if (v->p == NULL || v->type == 0x0A) {  /* missing or null */
        switch (f->null_rule) {
        case N_NULL: PUT(pl, 2, "\\N"); break;
        case N_FILL: PUT(pl, (size_t)f->fill_len, f->fill); break;
        case N_OID_TIME: {
            uint32_t secs = ((uint32_t)oid[0] << 24) | ((uint32_t)oid[1] << 16) | ((uint32_t)oid[2] << 8) | oid[3];
            if (put_timestamp(pl, &pos, (int64_t)secs * 1000) != 1) return 0;
            break;
        }
        default: return 0;
        }
        *ppos = pos;
        return 1;
    }
    const uint8_t *p = v->p;
    switch (f->kind) {
    case K_UUID:
        if (v->type != 0x07) return 0;
        uuid_hex(p, tmp);
        PUT(pl, 32, tmp);
        break;
    case K_TEXT:  /* transform.conv_text: a string, or an ObjectId's or a number's str() */
        if (v->type == 0x07) {
            put_hex(tmp, p, 12);
            PUT(pl, 24, tmp);
            break;
        }
        if (v->type == 0x10 || v->type == 0x12) {
            int n = int_text(rd_int(v->type, p), tmp);
            PUT(pl, (size_t)n, tmp);
            break;
        }
        if (v->type == 0x01) {
            double x; memcpy(&x, p, 8);
            if (put_double(pl, &pos, x, "nan", "inf", "-inf") < 0) return -1;
            break;
        }
        if (v->type != 0x02 || !valid_text(p + 4, v->len - 5)) return 0;
        if (put_escaped(pl, &pos, p + 4, v->len - 5) < 0) return -1;
        break;
    case K_INTEGER: case K_BIGINT: {
        if (v->type != 0x10 && v->type != 0x12) return 0;
        long long x = rd_int(v->type, p);
        if (f->kind == K_INTEGER && (x < INT32_MIN || x > INT32_MAX)) return 0;
        int n = int_text(x, tmp);
        PUT(pl, (size_t)n, tmp);
        break;
    }
    case K_DOUBLE: {
        if (v->type != 0x01) return 0;
        double x; memcpy(&x, p, 8);
        if (put_double(pl, &pos, x, "NaN", "Infinity", "-Infinity") < 0) return -1;  /* transform.conv_double */
        break;
    }
    case K_BOOLEAN:
        if (v->type != 0x08) return 0;
        PUT(pl, 1, p[0] ? "t" : "f");
        break;
    case K_TIMESTAMP:
        if (v->type != 0x09) return 0;
        if (put_timestamp(pl, &pos, rd64(p)) != 1) return 0;
        break;
    case K_ENUM: {
        if (v->type != 0x02) return 0;
        Py_ssize_t n = v->len - 5;
        Py_ssize_t i;
        for (i = 0; i < f->n_enum; i++)
            if (f->enum_in_len[i] == n && memcmp(f->enum_in[i], p + 4, (size_t)n) == 0) break;
        if (i == f->n_enum) return 0;
        PUT(pl, (size_t)f->enum_out_len[i], f->enum_out[i]);
        break;
    }
    case K_BYTEA: {  /* bytea hex input, its backslash doubled for COPY */
        if (v->type != 0x05) return 0;
        Py_ssize_t n = rd32(p);
        if (grow(pl, pos + 3 + 2 * (size_t)n) < 0) return -1;
        char *o = pl->out.buf + pos;
        *o++ = '\\'; *o++ = '\\'; *o++ = 'x';
        pos = (size_t)(put_hex(o, p + 5, n) - pl->out.buf);
        break;
    }
    case K_JSONB: {
        int rc = put_json(pl, &pos, v->type, p, v->len, 0);
        if (rc != 1) return rc;
        break;
    }
    case K_TEXT_ARRAY: case K_UUID_ARRAY: case K_INTEGER_ARRAY: {
        int rc = put_array(pl, &pos, f->kind, v);
        if (rc != 1) return rc;
        break;
    }
    default:
        return 0;
    }
    *ppos = pos;
    return 1;
}

/* A junction array's links: their link stage tuples (binary COPY, linkstage.py; duplicates skipped and
 * counted), or 0 for Python. own: this document's UUID, 16 bytes. */
static int junction_links(Plan *pl, const junction_t *j, const bval_t *v, const uint8_t *own, PyObject *stage,
                          long *dups) {
    if (v->p == NULL || v->type == 0x0A) return 1;
    if (v->type != 0x04) return 0;
    const uint8_t *p = v->p, *end = v->p + v->len - 1;
    const uint8_t *q = p + 4;
    const uint8_t *seen[256];
    int n_seen = 0;
    long total = 0;
    while (q < end) {
        uint8_t t = *q++;
        const uint8_t *nul = memchr(q, 0, (size_t)(end - q));
        if (!nul || t != 0x07) return 0;
        q = nul + 1;
        if (end - q < 12) return 0;
        int dup = 0;
        for (int i = 0; i < n_seen; i++) if (memcmp(seen[i], q, 12) == 0) { dup = 1; break; }
        if (!dup) {
            if (n_seen == 256) return 0;  /* a long array: Python's set */
            seen[n_seen++] = q;
        }
        q += 12;
        total++;
    }
    if (q != end) return 0;
    for (int i = 0; i < n_seen; i++) {  /* linkstage.row: head, left id, its length, right id, tail */
        uint8_t other[16];
        uuid_bytes(seen[i], other);
        const uint8_t *left = j->own_is_left ? own : other, *right = j->own_is_left ? other : own;
        size_t pos = 0;
        PUT(pl, (size_t)j->head_len, j->head);
        PUT(pl, 16, left); PUT(pl, 4, "\0\0\0\x10"); PUT(pl, 16, right);
        PUT(pl, (size_t)j->tail_len, j->tail);
        PyObject *row = PyBytes_FromStringAndSize(pl->out.buf, (Py_ssize_t)pos);
        if (!row) return -1;
        int rc = PyList_Append(stage, row);
        Py_DECREF(row);
        if (rc < 0) return -1;
    }
    *dups = total - n_seen;
    return 1;
}

/* read_fields' other(): a field name the mapping does not know, into the list *ctx (made on the first). */
static int add_unknown(void *ctx, const uint8_t *name, Py_ssize_t len) {
    PyObject **unknown = ctx;
    if (!valid_text(name, len)) return 0;
    if (!*unknown && !(*unknown = PyList_New(0))) return -1;
    PyObject *s = PyUnicode_DecodeUTF8((const char *)name, len, NULL);
    if (!s) return -1;
    int rc = PyList_Append(*unknown, s);
    Py_DECREF(s);
    return rc < 0 ? -1 : 1;
}

/* Plan.row(data) -> (line, own, stage, unknown keys, duplicate links) or None: see the top. */
static PyObject *Plan_row(Plan *pl, PyObject *arg) {
    if (!pl->ready) {
        PyErr_SetString(PyExc_RuntimeError, "Plan.row before Plan.__init__");
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    const uint8_t *d = view.buf;
    Py_ssize_t n = view.len;
    PyObject *result = NULL, *unknown = NULL, *stage = NULL, *line = NULL, *own_s = NULL;
    int read = read_fields(d, n, pl->keys, pl->n_keys, pl->hints, pl->values, add_unknown, &unknown);
    if (read < 0) goto fail;
    if (read == 0) goto slow;
    const bval_t *id = &pl->values[pl->id_key];
    if (id->p == NULL || id->type != 0x07) goto slow;
    char own[32];
    uuid_hex(id->p, own);
    size_t pos = 0;
    if (grow(pl, 64) < 0) goto fail;
    memcpy(pl->out.buf, own, 32); pos = 32;
    for (Py_ssize_t i = 0; i < pl->n_fields; i++) {
        if (grow(pl, pos + 1) < 0) goto fail;
        pl->out.buf[pos++] = '\t';
        int rc = put_field(pl, &pos, &pl->fields[i], &pl->values[pl->fields[i].key], id->p);
        if (rc < 0) goto fail;
        if (rc == 0) goto slow;
    }
    if (grow(pl, pos + 1) < 0) goto fail;
    pl->out.buf[pos++] = '\n';
    if (!(line = PyUnicode_DecodeUTF8(pl->out.buf, (Py_ssize_t)pos, NULL))) goto fail;
    if (!(stage = PyList_New(0))) goto fail;
    long dups = 0;
    uint8_t own_uuid[16];
    uuid_bytes(id->p, own_uuid);
    for (Py_ssize_t i = 0; i < pl->n_junctions; i++) {
        long dj = 0;
        int rc = junction_links(pl, &pl->junctions[i], &pl->values[pl->junctions[i].key], own_uuid, stage, &dj);
        if (rc < 0) goto fail;
        if (rc == 0) goto slow;
        dups += dj;
    }
    if (!(own_s = PyUnicode_FromStringAndSize(own, 32))) goto fail;
    result = Py_BuildValue("(NNNOl)", line, own_s, stage, unknown ? unknown : Py_None, dups);
    line = own_s = stage = NULL;
    goto done;
slow:
    result = Py_None; Py_INCREF(Py_None);
    goto done;
fail:
    result = NULL;
done:
    Py_XDECREF(line); Py_XDECREF(own_s); Py_XDECREF(stage); Py_XDECREF(unknown);
    PyBuffer_Release(&view);
    return result;
}

/* ---- construction: Plan(keys, id_key, fields, junctions) ----
 * keys: tuple of bytes (every field name the table knows); fields: tuple of (key index, kind, null rule,
 * fill text bytes or None, enum dict bytes->bytes or None); junctions: tuple of (key index, head bytes,
 * tail bytes, own_is_left). */
static int bytes_of(PyObject *o, const char **p, Py_ssize_t *n) {
    if (!PyBytes_Check(o)) { PyErr_SetString(PyExc_TypeError, "expected bytes"); return -1; }
    *p = PyBytes_AS_STRING(o); *n = PyBytes_GET_SIZE(o);
    return 0;
}

static int Plan_init(Plan *pl, PyObject *args, PyObject *kw) {
    PyObject *keys, *fields, *junctions;
    Py_ssize_t id_key;
    if (!PyArg_ParseTuple(args, "O!nO!O!", &PyTuple_Type, &keys, &id_key, &PyTuple_Type, &fields, &PyTuple_Type,
                          &junctions))
        return -1;
    if (pl->keep) { PyErr_SetString(PyExc_RuntimeError, "Plan is initialised once"); return -1; }
    pl->keep = PyTuple_Pack(3, keys, fields, junctions);
    if (!pl->keep) return -1;
    pl->n_keys = PyTuple_GET_SIZE(keys);
    pl->n_fields = PyTuple_GET_SIZE(fields);
    pl->n_junctions = PyTuple_GET_SIZE(junctions);
    if (id_key < 0 || id_key >= pl->n_keys) { PyErr_SetString(PyExc_ValueError, "id_key out of range"); return -1; }
    pl->id_key = id_key;
    pl->keys = PyMem_Calloc((size_t)pl->n_keys + 1, sizeof(bkey_t));
    pl->values = PyMem_Calloc((size_t)pl->n_keys + 1, sizeof(bval_t));
    pl->fields = PyMem_Calloc((size_t)pl->n_fields + 1, sizeof(field_t));
    pl->junctions = PyMem_Calloc((size_t)pl->n_junctions + 1, sizeof(junction_t));
    if (!pl->keys || !pl->values || !pl->fields || !pl->junctions) { PyErr_NoMemory(); return -1; }
    for (Py_ssize_t i = 0; i < pl->n_keys; i++)
        if (bytes_of(PyTuple_GET_ITEM(keys, i), &pl->keys[i].name, &pl->keys[i].len) < 0) return -1;
    for (Py_ssize_t i = 0; i < pl->n_fields; i++) {
        field_t *f = &pl->fields[i];
        PyObject *fill, *enums;
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(fields, i), "niiOO", &f->key, &f->kind, &f->null_rule, &fill, &enums))
            return -1;
        if (f->key < 0 || f->key >= pl->n_keys) { PyErr_SetString(PyExc_ValueError, "key out of range"); return -1; }
        if (fill != Py_None && bytes_of(fill, &f->fill, &f->fill_len) < 0) return -1;
        if (f->null_rule == N_FILL && fill == Py_None) { PyErr_SetString(PyExc_ValueError, "fill text missing"); return -1; }
        if (enums != Py_None) {
            if (!PyDict_Check(enums)) { PyErr_SetString(PyExc_TypeError, "enum values: a dict"); return -1; }
            f->n_enum = PyDict_Size(enums);
            f->enum_in = PyMem_Calloc((size_t)f->n_enum + 1, sizeof(char *));
            f->enum_out = PyMem_Calloc((size_t)f->n_enum + 1, sizeof(char *));
            f->enum_in_len = PyMem_Calloc((size_t)f->n_enum + 1, sizeof(Py_ssize_t));
            f->enum_out_len = PyMem_Calloc((size_t)f->n_enum + 1, sizeof(Py_ssize_t));
            if (!f->enum_in || !f->enum_out || !f->enum_in_len || !f->enum_out_len) { PyErr_NoMemory(); return -1; }
            Py_ssize_t ppos = 0, e = 0;
            PyObject *k, *v;
            while (PyDict_Next(enums, &ppos, &k, &v)) {
                if (bytes_of(k, &f->enum_in[e], &f->enum_in_len[e]) < 0) return -1;
                if (bytes_of(v, &f->enum_out[e], &f->enum_out_len[e]) < 0) return -1;
                e++;
            }
        } else if (f->kind == K_ENUM) { PyErr_SetString(PyExc_ValueError, "enum values missing"); return -1; }
    }
    for (Py_ssize_t i = 0; i < pl->n_junctions; i++) {
        junction_t *j = &pl->junctions[i];
        PyObject *head, *tail;
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(junctions, i), "nSSp", &j->key, &head, &tail, &j->own_is_left))
            return -1;
        if (j->key < 0 || j->key >= pl->n_keys) { PyErr_SetString(PyExc_ValueError, "key out of range"); return -1; }
        bytes_of(head, &j->head, &j->head_len);
        bytes_of(tail, &j->tail, &j->tail_len);
    }
    pl->ready = 1;
    return 0;
}

static void Plan_dealloc(Plan *pl) {
    if (pl->fields)
        for (Py_ssize_t i = 0; i < pl->n_fields; i++) {
            PyMem_Free(pl->fields[i].enum_in); PyMem_Free(pl->fields[i].enum_out);
            PyMem_Free(pl->fields[i].enum_in_len); PyMem_Free(pl->fields[i].enum_out_len);
        }
    PyMem_Free(pl->keys); PyMem_Free(pl->values); PyMem_Free(pl->fields); PyMem_Free(pl->junctions);
    PyMem_Free(pl->out.buf);
    Py_XDECREF(pl->keep);
    Py_TYPE(pl)->tp_free((PyObject *)pl);
}

static PyMethodDef Plan_methods[] = {
    {"row", (PyCFunction)Plan_row, METH_O,
     "row(bson) -> (line, own id hex, stage lines, unknown keys or None, duplicate links) or None"},
    {NULL, NULL, 0, NULL}
};

static PyTypeObject PlanType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "mongo2pg._fastrow.Plan",
    .tp_basicsize = sizeof(Plan),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A table's row plan for raw BSON documents",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Plan_init,
    .tp_dealloc = (destructor)Plan_dealloc,
    .tp_methods = Plan_methods,
};

static struct PyModuleDef fastrow_module = {PyModuleDef_HEAD_INIT, "_fastrow", NULL, -1, NULL};

PyMODINIT_FUNC PyInit__fastrow(void) {
    if (PyType_Ready(&PlanType) < 0) return NULL;
    PyObject *m = PyModule_Create(&fastrow_module);
    if (!m) return NULL;
    Py_INCREF(&PlanType);
    if (PyModule_AddObject(m, "Plan", (PyObject *)&PlanType) < 0) { Py_DECREF(&PlanType); Py_DECREF(m); return NULL; }
    return m;
}
