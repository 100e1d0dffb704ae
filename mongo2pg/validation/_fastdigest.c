/* One source document's raw BSON -> its expected row as validation's chunk digest hashes it, and the
 * junction links it holds, without building Python objects for its values.
 *
 * The reference is validation/expect.py's compiled digest row (compile_expected_row(form="digest")) and
 * rows.py's link collection, never the transform: this settles only the cases those settle (strings as
 * they are, ObjectIds, int32/int64, doubles by repr, booleans, dates in years 1-9999, binaries of
 * subtype 0, plain JSON for jsonb, arrays of strings, NULL for missing or null) and answers "unsettled"
 * for any other value (and for a string holding the digest's separator or NULL mark, so that a row it
 * settles holds exactly the structural ones and rows.py counts them only in expect.py's rows), and None
 * for a document it cannot read at all; the caller then decodes it and takes the Python path.
 * tests/test_fastdigest.py compares both on generated documents.
 */
#include "../_bson.h"
#include <math.h>

/* validation/expect.py: _RAW_DIGEST_KINDS */
enum dkind { D_AS_IS = 1, D_UUID, D_INT, D_DOUBLE, D_BOOL, D_TIMESTAMP, D_JSONB, D_TEXT_ARRAY, D_BYTEA, D_NULL_ONLY };
#define ROW_SEP 0x1f
#define NULL_MARK 0x1e
#define MAX_KEYS 64  /* a jsonb object with more keys: Python sorts them */

typedef struct { Py_ssize_t key; int kind; } dcol_t;
typedef struct { Py_ssize_t key; int own_is_left; PyObject *set; } dlink_t;

typedef struct {
    PyObject_HEAD
    PyObject *keep;      /* the Python objects whose buffers and sets the pointers below use */
    Py_ssize_t n_keys, n_cols, n_links, id_key;
    bkey_t *keys;
    dcol_t *cols; dlink_t *links; bval_t *values;
    outbuf_t out;
    Py_ssize_t hints[KEY_HINTS];  /* key_index's guesses from the previous document */
    int ready;           /* set once __init__ has filled everything above */
} DigestPlan;

#define PUT(pl, n, src) do { if (out_grow(&(pl)->out, pos + (n)) < 0) return -1; \
    memcpy((pl)->out.buf + pos, (src), (n)); pos += (n); } while (0)

/* The digest's UUID: the hex of its 16 bytes, as encode(uuid_send(id), 'hex') prints; a copy of
 * ids.uuid_hex_from_oid_hex (tests/test_ids.py holds them equal). */
static void digest_uuid(const uint8_t *oid, char *out) {
    memcpy(put_hex(out, oid, 6), "80008000", 8);
    put_hex(out + 20, oid + 6, 6);
}

/* A string as json.encoder.encode_basestring writes it (the escapes PostgreSQL's JSON output uses,
 * non-ASCII kept). 0 for invalid UTF-8 or a NUL: Python decides. */
static int put_json_string(DigestPlan *pl, size_t *ppos, const uint8_t *s, Py_ssize_t n) {
    if (!valid_text(s, n)) return 0;
    size_t pos = *ppos;
    if (out_grow(&pl->out, pos + 2 + 6 * (size_t)n) < 0) return -1;
    char *o = pl->out.buf + pos;
    *o++ = '"';
    for (Py_ssize_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        switch (c) {
        case '"': *o++ = '\\'; *o++ = '"'; break;
        case '\\': *o++ = '\\'; *o++ = '\\'; break;
        case '\n': *o++ = '\\'; *o++ = 'n'; break;
        case '\r': *o++ = '\\'; *o++ = 'r'; break;
        case '\t': *o++ = '\\'; *o++ = 't'; break;
        case '\b': *o++ = '\\'; *o++ = 'b'; break;
        case '\f': *o++ = '\\'; *o++ = 'f'; break;
        default:
            if (c < 0x20) { memcpy(o, "\\u00", 4); o[4] = HEX[c >> 4]; o[5] = HEX[c & 15]; o += 6; }
            else *o++ = (char)c;
        }
    }
    *o++ = '"';
    *ppos = (size_t)(o - pl->out.buf);
    return 1;
}

/* repr(float) */
static int put_repr(DigestPlan *pl, size_t *ppos, const uint8_t *p) {
    double x; memcpy(&x, p, 8);
    char *r = PyOS_double_to_string(x, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
    if (!r) return -1;
    size_t pos = *ppos, n = strlen(r);
    if (out_grow(&pl->out, pos + n) < 0) { PyMem_Free(r); return -1; }
    memcpy(pl->out.buf + pos, r, n);
    PyMem_Free(r);
    *ppos = pos + n;
    return 1;
}

static int put_int(DigestPlan *pl, size_t *ppos, uint8_t t, const uint8_t *p) {
    char tmp[24];
    int n = int_text(rd_int(t, p), tmp);
    size_t pos = *ppos;
    PUT(pl, (size_t)n, tmp);
    *ppos = pos;
    return 1;
}

typedef struct { const uint8_t *name, *val; Py_ssize_t name_len, size; uint8_t type; } member_t;

/* PostgreSQL's jsonb key order: shorter first, then bytewise (expect._jsonb_key). */
static int key_before(const member_t *a, const member_t *b) {
    if (a->name_len != b->name_len) return a->name_len < b->name_len;
    return memcmp(a->name, b->name, (size_t)a->name_len) < 0;
}

/* expect.pg_jsonb_text of the decoded value: objects with keys in jsonb order, ", " and ": ", numbers as
 * Python prints them. 0 for anything else (BSON types, non-finite doubles, "$" keys that pymongo may
 * decode as a DBRef, duplicate keys, more than MAX_KEYS keys): Python decides. */
static int put_jsonb(DigestPlan *pl, size_t *ppos, uint8_t t, const uint8_t *p, Py_ssize_t len) {
    size_t pos = *ppos;
    int rc;
    switch (t) {
    case 0x0A: PUT(pl, 4, "null"); break;
    case 0x08: if (p[0]) PUT(pl, 4, "true"); else PUT(pl, 5, "false"); break;
    case 0x10: case 0x12: if ((rc = put_int(pl, &pos, t, p)) != 1) return rc; break;
    case 0x01: {
        double x; memcpy(&x, p, 8);
        if (!isfinite(x)) return 0;
        if ((rc = put_repr(pl, &pos, p)) != 1) return rc;
        break;
    }
    case 0x02: if ((rc = put_json_string(pl, &pos, p + 4, len - 5)) != 1) return rc; break;
    case 0x04: {
        iter_t it = iter_of(p, (int32_t)len);
        uint8_t et; const uint8_t *name, *val; Py_ssize_t nl, size;
        PUT(pl, 1, "[");
        for (int first = 1; next_elem(&it, &et, &name, &nl, &val, &size); first = 0) {
            if (!first) PUT(pl, 2, ", ");
            if ((rc = put_jsonb(pl, &pos, et, val, size)) != 1) return rc;
        }
        PUT(pl, 1, "]");
        break;
    }
    case 0x03: {
        member_t m[MAX_KEYS];
        int n = 0;
        iter_t it = iter_of(p, (int32_t)len);
        member_t e;
        while (next_elem(&it, &e.type, &e.name, &e.name_len, &e.val, &e.size)) {
            if (n == MAX_KEYS || (e.name_len > 0 && e.name[0] == '$')) return 0;
            int at = n;  /* insertion sort: objects are small */
            while (at > 0 && key_before(&e, &m[at - 1])) at--;
            if (at > 0 && m[at - 1].name_len == e.name_len && memcmp(m[at - 1].name, e.name, (size_t)e.name_len) == 0)
                return 0;  /* a duplicate key */
            memmove(&m[at + 1], &m[at], (size_t)(n - at) * sizeof(member_t));
            m[at] = e;
            n++;
        }
        PUT(pl, 1, "{");
        for (int i = 0; i < n; i++) {
            if (i) PUT(pl, 2, ", ");
            if ((rc = put_json_string(pl, &pos, m[i].name, m[i].name_len)) != 1) return rc;
            PUT(pl, 2, ": ");
            if ((rc = put_jsonb(pl, &pos, m[i].type, m[i].val, m[i].size)) != 1) return rc;
        }
        PUT(pl, 1, "}");
        break;
    }
    default: return 0;
    }
    *ppos = pos;
    return 1;
}

/* A column's expected text for a present, non-null value: 1 written, 0 unsettled, -1 error. */
static int put_value(DigestPlan *pl, size_t *ppos, int kind, const bval_t *v) {
    size_t pos = *ppos;
    const uint8_t *p = v->p;
    char tmp[40];
    int rc;
    switch (kind) {
    case D_AS_IS: {  /* text and enum: the string itself; one holding a separator or NULL mark: Python's */
        size_t n = (size_t)(v->len - 5);
        if (v->type != 0x02 || !valid_text(p + 4, v->len - 5) || memchr(p + 4, ROW_SEP, n) || memchr(p + 4, NULL_MARK, n))
            return 0;
        PUT(pl, n, p + 4);
        break;
    }
    case D_UUID:
        if (v->type != 0x07) return 0;
        digest_uuid(p, tmp);
        PUT(pl, 32, tmp);
        break;
    case D_INT:
        if (v->type != 0x10 && v->type != 0x12) return 0;
        if ((rc = put_int(pl, &pos, v->type, p)) != 1) return rc;
        break;
    case D_DOUBLE:
        if (v->type != 0x01) return 0;
        if ((rc = put_repr(pl, &pos, p)) != 1) return rc;
        break;
    case D_BOOL:
        if (v->type != 0x08) return 0;
        if (p[0]) PUT(pl, 4, "true"); else PUT(pl, 5, "false");
        break;
    case D_TIMESTAMP: {
        int n;
        if (v->type != 0x09 || (n = ms_text(rd64(p), tmp)) == 0) return 0;
        PUT(pl, (size_t)n, tmp);
        break;
    }
    case D_JSONB:
        if ((rc = put_jsonb(pl, &pos, v->type, p, v->len)) != 1) return rc;
        break;
    case D_TEXT_ARRAY: {  /* array_to_json of strings: "," between elements */
        if (v->type != 0x04) return 0;
        iter_t it = iter_of(p, v->len);
        uint8_t et; const uint8_t *name, *val; Py_ssize_t nl, size;
        PUT(pl, 1, "[");
        for (int first = 1; next_elem(&it, &et, &name, &nl, &val, &size); first = 0) {
            if (et != 0x02) return 0;
            if (!first) PUT(pl, 1, ",");
            if ((rc = put_json_string(pl, &pos, val + 4, size - 5)) != 1) return rc;
        }
        PUT(pl, 1, "]");
        break;
    }
    case D_BYTEA: {  /* \x and the hex of the bytes; only subtype 0 decodes as bytes */
        if (v->type != 0x05 || p[4] != 0x00) return 0;
        Py_ssize_t n = rd32(p);
        if (out_grow(&pl->out, pos + 2 + 2 * (size_t)n) < 0) return -1;
        char *o = pl->out.buf + pos;
        *o++ = '\\'; *o++ = 'x';
        pos = (size_t)(put_hex(o, p + 5, n) - pl->out.buf);
        break;
    }
    default:  /* D_NULL_ONLY: uuid[] and integer[], settled by the full rules */
        return 0;
    }
    *ppos = pos;
    return 1;
}

/* The ObjectIds of a link array as rows.py collects them: 24 bytes each, this document's id on its side. */
static int add_links(const dlink_t *l, const bval_t *v, const uint8_t *own) {
    if (v->p == NULL || v->type != 0x04) return 0;
    iter_t it = iter_of(v->p, v->len);
    uint8_t et; const uint8_t *name, *val; Py_ssize_t nl, size;
    uint8_t pair[24];
    while (next_elem(&it, &et, &name, &nl, &val, &size)) {
        if (et != 0x07) continue;
        memcpy(pair, l->own_is_left ? own : val, 12);
        memcpy(pair + 12, l->own_is_left ? val : own, 12);
        PyObject *b = PyBytes_FromStringAndSize((const char *)pair, 24);
        if (!b) return -1;
        int rc = PySet_Add(l->set, b);
        Py_DECREF(b);
        if (rc < 0) return -1;
    }
    return 0;
}

/* DigestPlan.row(data) -> (uuid hex, row text bytes or None, NULLs) or None: see the top. */
static PyObject *DigestPlan_row(DigestPlan *pl, PyObject *arg) {
    if (!pl->ready) {
        PyErr_SetString(PyExc_RuntimeError, "DigestPlan.row before DigestPlan.__init__");
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    const uint8_t *d = view.buf;
    Py_ssize_t n = view.len;
    PyObject *result = NULL;
    int read = read_fields(d, n, pl->keys, pl->n_keys, pl->hints, pl->values, NULL, NULL);
    if (read < 0) goto fail;
    if (read == 0) goto unread;
    const bval_t *id = &pl->values[pl->id_key];
    if (id->p == NULL || id->type != 0x07) goto unread;
    for (Py_ssize_t i = 0; i < pl->n_links; i++)
        if (add_links(&pl->links[i], &pl->values[pl->links[i].key], id->p) < 0) goto fail;
    char own[32];
    digest_uuid(id->p, own);
    size_t pos = 32;
    long nulls = 0;
    if (out_grow(&pl->out, 64) < 0) goto fail;
    memcpy(pl->out.buf, own, 32);
    PyObject *text = NULL;
    for (Py_ssize_t i = 0; i < pl->n_cols; i++) {
        const bval_t *v = &pl->values[pl->cols[i].key];
        if (out_grow(&pl->out, pos + 2) < 0) goto fail;
        pl->out.buf[pos++] = ROW_SEP;
        if (v->p == NULL || v->type == 0x0A) {
            pl->out.buf[pos++] = NULL_MARK;
            nulls++;
            continue;
        }
        int rc = put_value(pl, &pos, pl->cols[i].kind, v);
        if (rc < 0) goto fail;
        if (rc == 0) { nulls = -1; break; }
    }
    if (nulls >= 0) {
        if (!(text = PyBytes_FromStringAndSize(pl->out.buf, (Py_ssize_t)pos))) goto fail;
    } else {
        text = Py_None; Py_INCREF(Py_None);
        nulls = 0;
    }
    result = Py_BuildValue("(s#Nl)", own, (Py_ssize_t)32, text, nulls);
    goto done;
unread:
    result = Py_None; Py_INCREF(Py_None);
    goto done;
fail:
    result = NULL;
done:
    PyBuffer_Release(&view);
    return result;
}

/* ---- construction: DigestPlan(keys, id_key, columns, links) ----
 * keys: tuple of bytes (every field name the plan reads); columns: tuple of (key index, kind), the
 * table's non-key columns in order; links: tuple of (key index, own_is_left, set). */
static int DigestPlan_init(DigestPlan *pl, PyObject *args, PyObject *kw) {
    PyObject *keys, *cols, *links;
    Py_ssize_t id_key;
    if (!PyArg_ParseTuple(args, "O!nO!O!", &PyTuple_Type, &keys, &id_key, &PyTuple_Type, &cols, &PyTuple_Type,
                          &links))
        return -1;
    if (pl->keep) { PyErr_SetString(PyExc_RuntimeError, "DigestPlan is initialised once"); return -1; }
    if (!(pl->keep = PyTuple_Pack(3, keys, cols, links))) return -1;
    pl->n_keys = PyTuple_GET_SIZE(keys);
    pl->n_cols = PyTuple_GET_SIZE(cols);
    pl->n_links = PyTuple_GET_SIZE(links);
    if (id_key < 0 || id_key >= pl->n_keys) { PyErr_SetString(PyExc_ValueError, "id_key out of range"); return -1; }
    pl->id_key = id_key;
    pl->keys = PyMem_Calloc((size_t)pl->n_keys + 1, sizeof(bkey_t));
    pl->values = PyMem_Calloc((size_t)pl->n_keys + 1, sizeof(bval_t));
    pl->cols = PyMem_Calloc((size_t)pl->n_cols + 1, sizeof(dcol_t));
    pl->links = PyMem_Calloc((size_t)pl->n_links + 1, sizeof(dlink_t));
    if (!pl->keys || !pl->values || !pl->cols || !pl->links) { PyErr_NoMemory(); return -1; }
    for (Py_ssize_t i = 0; i < pl->n_keys; i++) {
        PyObject *k = PyTuple_GET_ITEM(keys, i);
        if (!PyBytes_Check(k)) { PyErr_SetString(PyExc_TypeError, "keys: bytes"); return -1; }
        pl->keys[i].name = PyBytes_AS_STRING(k); pl->keys[i].len = PyBytes_GET_SIZE(k);
    }
    for (Py_ssize_t i = 0; i < pl->n_cols; i++) {
        dcol_t *c = &pl->cols[i];
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(cols, i), "ni", &c->key, &c->kind)) return -1;
        if (c->key < 0 || c->key >= pl->n_keys) { PyErr_SetString(PyExc_ValueError, "key out of range"); return -1; }
        if (c->kind < D_AS_IS || c->kind > D_NULL_ONLY) { PyErr_SetString(PyExc_ValueError, "unknown kind"); return -1; }
    }
    for (Py_ssize_t i = 0; i < pl->n_links; i++) {
        dlink_t *l = &pl->links[i];
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(links, i), "npO!", &l->key, &l->own_is_left, &PySet_Type, &l->set))
            return -1;
        if (l->key < 0 || l->key >= pl->n_keys) { PyErr_SetString(PyExc_ValueError, "key out of range"); return -1; }
    }
    pl->ready = 1;
    return 0;
}

static void DigestPlan_dealloc(DigestPlan *pl) {
    PyMem_Free(pl->keys); PyMem_Free(pl->values); PyMem_Free(pl->cols);
    PyMem_Free(pl->links); PyMem_Free(pl->out.buf);
    Py_XDECREF(pl->keep);
    Py_TYPE(pl)->tp_free((PyObject *)pl);
}

static PyMethodDef DigestPlan_methods[] = {
    {"row", (PyCFunction)DigestPlan_row, METH_O,
     "row(bson) -> (uuid hex, digest row text or None when unsettled, NULLs) or None when unread"},
    {NULL, NULL, 0, NULL}
};

static PyTypeObject DigestPlanType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "mongo2pg.validation._fastdigest.DigestPlan",
    .tp_basicsize = sizeof(DigestPlan),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A table's expected digest rows for raw BSON documents",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)DigestPlan_init,
    .tp_dealloc = (destructor)DigestPlan_dealloc,
    .tp_methods = DigestPlan_methods,
};

static struct PyModuleDef fastdigest_module = {PyModuleDef_HEAD_INIT, "_fastdigest", NULL, -1, NULL};

PyMODINIT_FUNC PyInit__fastdigest(void) {
    if (PyType_Ready(&DigestPlanType) < 0) return NULL;
    PyObject *m = PyModule_Create(&fastdigest_module);
    if (!m) return NULL;
    Py_INCREF(&DigestPlanType);
    if (PyModule_AddObject(m, "DigestPlan", (PyObject *)&DigestPlanType) < 0) {
        Py_DECREF(&DigestPlanType); Py_DECREF(m); return NULL;
    }
    return m;
}
