/* The functions TVM's Python RPC server registers for TVM's own RPC test
 * suite (tests/python/runtime/test_runtime_rpc.py), offered only when the
 * server runs with --testing (ferry_session_config.testing).
 *
 * (testing.echo, which TVM has on every server, is a runtime global:
 * src/runtime/vm/vm_globals.c.)
 *
 * Behaviour as TVM's python/tvm/rpc/testing.py defines it (v0.20, v0.26):
 *   rpc.test.addone(x)               x + 1 (int or float)
 *   rpc.test.strcat(name, x)         "<name>:<x>", x printed as Python does
 *   rpc.test.except(name)            raises ValueError(name)
 *   rpc.test.runtime_str_concat(x,y) x + y (strings)
 *   rpc.test.remote_array_func(t)    checks that t equals numpy.ones((3, 4))
 *     (v0.26 calls it rpc.test.remote_tensor_func)
 *   rpc.test.add_to_lhs(x)           returns the function y -> x + y
 *   rpc.test.remote_return_nd(name)  makes a float32 tensor of 10 zeros and
 *     returns a function over it: "get_arr" () -> the tensor, "ref_count"
 *     () -> its reference count, "get_elem" (i) -> element i, "get_arr_elem"
 *     (arr, i) -> element i of arr; another name raises RuntimeError.
 *   testing.test_raise_error_callback(msg)  returns a function of no
 *     arguments that raises an error whose text is msg (TVM's C++, also on
 *     every server; test_rpc_echo calls the returned function remotely).
 * They exercise what a C server must get right anyway: functions returned
 * to the client (closures that own what they captured), strings, remote
 * exceptions and returned tensors.  Written from the behaviour above, in
 * C, with the runtime's public object API only. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/session_internal.h"

typedef int (*testing_fn)(ferry_call *c);

/* ---- helpers ------------------------------------------------------------- */

static int want_args(ferry_call *c, const char *fn, int n) {
  if (c->nargs != n)
    return ferry_err_set(c->err, FERRY_EINVAL,
                         "TypeError: %s() takes %d positional argument%s but %d were given",
                         fn, n, n == 1 ? "" : "s", c->nargs);
  return FERRY_OK;
}

static int is_number(const ferry_value *v) {
  return v->kind == FERRY_KIND_INT || v->kind == FERRY_KIND_BOOL ||
         v->kind == FERRY_KIND_FLOAT;
}

static double as_double(const ferry_value *v) {
  return v->kind == FERRY_KIND_FLOAT ? v->v.f : (double)v->v.i;
}

/* Python's x + y for the kinds that cross RPC: numbers (int + int stays
 * int, wrapping as a 64-bit TVM int does) and str + str. */
static int py_add(ferry_call *c, const ferry_value *x, const ferry_value *y) {
  if (is_number(x) && is_number(y)) {
    if (x->kind == FERRY_KIND_FLOAT || y->kind == FERRY_KIND_FLOAT) {
      c->ret.kind = FERRY_KIND_FLOAT;
      c->ret.v.f = as_double(x) + as_double(y);
    } else {
      c->ret.kind = FERRY_KIND_INT;
      c->ret.v.i = (int64_t)((uint64_t)x->v.i + (uint64_t)y->v.i);
    }
    return FERRY_OK;
  }
  if (x->kind == FERRY_KIND_STR && y->kind == FERRY_KIND_STR) {
    size_t n = x->v.str.len + y->v.str.len;
    char *tmp = malloc(n + 1);
    if (!tmp)
      return ferry_err_set(c->err, FERRY_ENOMEM, "MemoryError: out of memory");
    memcpy(tmp, x->v.str.data, x->v.str.len);
    memcpy(tmp + x->v.str.len, y->v.str.data, y->v.str.len);
    tmp[n] = 0;
    int rc = ferry_call_return_str(c, tmp, n);
    free(tmp);
    return rc ? ferry_err_set(c->err, rc, "RuntimeError: result too large") : FERRY_OK;
  }
  return ferry_err_set(c->err, FERRY_ETYPE,
                       "TypeError: unsupported operand type(s) for +: '%s' and '%s'",
                       ferry_kind_name(x->kind), ferry_kind_name(y->kind));
}

/* A double as Python's repr() prints it: the shortest text that reads back
 * as the same value, with ".0" when it would look like an int. */
static void py_float(double d, char *out, size_t cap) {
  if (isnan(d)) {
    snprintf(out, cap, "nan");
    return;
  }
  if (isinf(d)) {
    snprintf(out, cap, d < 0 ? "-inf" : "inf");
    return;
  }
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(out, cap, "%.*g", prec, d);
    if (strtod(out, NULL) == d)
      break;
  }
  if (!strpbrk(out, ".en"))
    strncat(out, ".0", cap - strlen(out) - 1);
}

/* ---- the stateless functions ------------------------------------------------ */

static int addone_fn(ferry_call *c) {
  int rc = want_args(c, "addone", 1);
  if (rc)
    return rc;
  ferry_value one = {.kind = FERRY_KIND_INT, .v.i = 1};
  return py_add(c, &c->args[0], &one);
}

static int strcat_fn(ferry_call *c) {
  int rc = want_args(c, "strcat", 2);
  if (rc)
    return rc;
  const ferry_value *name = &c->args[0], *x = &c->args[1];
  if (name->kind != FERRY_KIND_STR)
    return ferry_err_set(c->err, FERRY_ETYPE, "TypeError: strcat() name must be str, not %s",
                         ferry_kind_name(name->kind));
  char num[64];
  const char *text = num;
  size_t len;
  switch (x->kind) {
  case FERRY_KIND_INT:
    snprintf(num, sizeof num, "%lld", (long long)x->v.i);
    break;
  case FERRY_KIND_BOOL:
    snprintf(num, sizeof num, "%s", x->v.i ? "True" : "False");
    break;
  case FERRY_KIND_FLOAT:
    py_float(x->v.f, num, sizeof num);
    break;
  case FERRY_KIND_NONE:
    snprintf(num, sizeof num, "None");
    break;
  case FERRY_KIND_STR:
    text = x->v.str.data;
    break;
  default:
    return ferry_err_set(c->err, FERRY_ETYPE, "TypeError: strcat() cannot format a %s",
                         ferry_kind_name(x->kind));
  }
  len = x->kind == FERRY_KIND_STR ? x->v.str.len : strlen(num);
  size_t nlen = name->v.str.len;
  char *tmp = malloc(nlen + 1 + len + 1);
  if (!tmp)
    return ferry_err_set(c->err, FERRY_ENOMEM, "MemoryError: out of memory");
  memcpy(tmp, name->v.str.data, nlen);
  tmp[nlen] = ':';
  memcpy(tmp + nlen + 1, text, len);
  tmp[nlen + 1 + len] = 0;
  rc = ferry_call_return_str(c, tmp, nlen + 1 + len);
  free(tmp);
  return rc ? ferry_err_set(c->err, rc, "RuntimeError: result too large") : FERRY_OK;
}

static int except_fn(ferry_call *c) {
  int rc = want_args(c, "except", 1);
  if (rc)
    return rc;
  if (c->args[0].kind != FERRY_KIND_STR)
    return ferry_err_set(c->err, FERRY_ETYPE, "TypeError: except() wants a str");
  return ferry_err_set(c->err, FERRY_EINVAL, "ValueError: %.*s",
                       (int)(c->args[0].v.str.len > 3000 ? 3000 : c->args[0].v.str.len),
                       c->args[0].v.str.data);
}

static int str_concat_fn(ferry_call *c) {
  int rc = want_args(c, "runtime_str_concat", 2);
  if (rc)
    return rc;
  if (c->args[0].kind != FERRY_KIND_STR || c->args[1].kind != FERRY_KIND_STR)
    return ferry_err_set(c->err, FERRY_ETYPE,
                         "TypeError: runtime_str_concat() wants two strings");
  return py_add(c, &c->args[0], &c->args[1]);
}

/* The tensor of an argument: a DLTensor (already range-checked by the
 * session) or an NDArray object of this session. */
static const DLTensor *tensor_arg(const ferry_value *v) {
  if (v->kind == FERRY_KIND_TENSOR)
    return v->v.tensor;
  if (v->kind == FERRY_KIND_NDARRAY && v->v.obj)
    return &((ferry_ndarray *)v->v.obj)->tensor;
  return NULL;
}

/* Element i of a compact CPU tensor of a float or int type, as a double;
 * i may be negative (from the end), as in numpy. */
static int tensor_elem(ferry_call *c, const DLTensor *t, int64_t i, double *out) {
  uint64_t n = 0;
  if (ferry_tensor_nbytes(t, &n))
    return ferry_err_set(c->err, FERRY_ERANGE, "ValueError: tensor size overflows");
  int64_t count = 1;
  for (int d = 0; d < t->ndim; d++)
    count *= t->shape[d];
  if (i < 0)
    i += count;
  if (i < 0 || i >= count)
    return ferry_err_set(c->err, FERRY_ERANGE,
                         "IndexError: index %lld is out of bounds for a tensor of %lld "
                         "elements",
                         (long long)i, (long long)count);
  const char *base = (const char *)t->data + t->byte_offset;
  DLDataType ty = t->dtype;
  if (ty.lanes != 1)
    return ferry_err_set(c->err, FERRY_EUNSUPPORTED, "TypeError: vector types unsupported");
  if (ty.code == kDLFloat && ty.bits == 32) {
    float f;
    memcpy(&f, base + 4 * i, 4);
    *out = f;
  } else if (ty.code == kDLFloat && ty.bits == 64) {
    memcpy(out, base + 8 * i, 8);
  } else if (ty.code == kDLInt && ty.bits == 32) {
    int32_t v;
    memcpy(&v, base + 4 * i, 4);
    *out = v;
  } else if (ty.code == kDLInt && ty.bits == 64) {
    int64_t v;
    memcpy(&v, base + 8 * i, 8);
    *out = (double)v;
  } else {
    return ferry_err_set(c->err, FERRY_EUNSUPPORTED,
                         "TypeError: element type (code %d, %d bits) is not supported here",
                         ty.code, ty.bits);
  }
  return FERRY_OK;
}

static int remote_array_fn(ferry_call *c) {
  int rc = want_args(c, "remote_array_func", 1);
  if (rc)
    return rc;
  const DLTensor *t = tensor_arg(&c->args[0]);
  if (!t)
    return ferry_err_set(c->err, FERRY_ETYPE, "TypeError: remote_array_func() wants a tensor");
  if (t->ndim != 2 || t->shape[0] != 3 || t->shape[1] != 4)
    return ferry_err_set(c->err, FERRY_EINVAL,
                         "AssertionError: Arrays are not equal (shapes differ from (3, 4))");
  for (int64_t i = 0; i < 12; i++) {
    double d = 0;
    rc = tensor_elem(c, t, i, &d);
    if (rc)
      return rc;
    if (d != 1.0)
      return ferry_err_set(c->err, FERRY_EINVAL,
                           "AssertionError: Arrays are not equal (element %lld is %g, not "
                           "1)",
                           (long long)i, d);
  }
  return FERRY_OK;
}

/* ---- closures ------------------------------------------------------------ */

enum closure_kind { ADD_TO_LHS, GET_ARR, REF_COUNT, GET_ELEM, GET_ARR_ELEM, RAISE };

typedef struct closure {
  ferry_func base;
  enum closure_kind kind;
  ferry_value lhs;   /* ADD_TO_LHS: a number, or a string in text */
  char *text;        /* RAISE: the error's text */
  ferry_ndarray *nd; /* remote_return_nd's tensor (one reference) */
} closure;

static void closure_destroy(ferry_obj *o) {
  closure *f = (closure *)o;
  if (f->nd)
    ferry_obj_release(&f->nd->base);
  free(f->text);
  free(f);
}

static int closure_call(ferry_func *self, ferry_call *c) {
  closure *f = (closure *)self;
  int rc;
  double d = 0;
  switch (f->kind) {
  case ADD_TO_LHS:
    rc = want_args(c, "<lambda>", 1);
    return rc ? rc : py_add(c, &f->lhs, &c->args[0]);
  case GET_ARR:
    rc = want_args(c, "<lambda>", 0);
    if (rc)
      return rc;
    ferry_obj_retain(&f->nd->base);
    c->ret.kind = FERRY_KIND_NDARRAY;
    c->ret.v.obj = &f->nd->base;
    return FERRY_OK;
  case REF_COUNT:
    rc = want_args(c, "<lambda>", 0);
    if (rc)
      return rc;
    c->ret.kind = FERRY_KIND_INT;
    c->ret.v.i = atomic_load(&f->nd->base.refs);
    return FERRY_OK;
  case GET_ELEM:
    rc = want_args(c, "<lambda>", 1);
    if (!rc && c->args[0].kind != FERRY_KIND_INT)
      rc = ferry_err_set(c->err, FERRY_ETYPE, "TypeError: the index must be an int");
    if (!rc)
      rc = tensor_elem(c, &f->nd->tensor, c->args[0].v.i, &d);
    break;
  case GET_ARR_ELEM: {
    rc = want_args(c, "<lambda>", 2);
    const DLTensor *t = rc ? NULL : tensor_arg(&c->args[0]);
    if (!rc && !t)
      rc = ferry_err_set(c->err, FERRY_ETYPE, "TypeError: the first argument must be a tensor");
    if (!rc && c->args[1].kind != FERRY_KIND_INT)
      rc = ferry_err_set(c->err, FERRY_ETYPE, "TypeError: the index must be an int");
    if (!rc)
      rc = tensor_elem(c, t, c->args[1].v.i, &d);
    break;
  }
  case RAISE:
    rc = want_args(c, "<lambda>", 0);
    return rc ? rc : ferry_err_set(c->err, FERRY_EREMOTE, "%s", f->text);
  default:
    return ferry_err_set(c->err, FERRY_ESTATE, "RuntimeError: bad closure");
  }
  if (rc)
    return rc;
  c->ret.kind = FERRY_KIND_FLOAT;
  c->ret.v.f = d;
  return FERRY_OK;
}

static closure *closure_new(enum closure_kind kind) {
  closure *f = calloc(1, sizeof *f);
  if (!f)
    return NULL;
  ferry_obj_init(&f->base.base, FERRY_OBJ_FUNC, closure_destroy);
  f->base.call = closure_call;
  f->kind = kind;
  return f;
}

static int return_closure(ferry_call *c, closure *f) {
  c->ret.kind = FERRY_KIND_FUNC;
  c->ret.v.obj = &f->base.base;
  return FERRY_OK;
}

static int add_to_lhs_fn(ferry_call *c) {
  int rc = want_args(c, "add_to_lhs", 1);
  if (rc)
    return rc;
  const ferry_value *x = &c->args[0];
  if (!is_number(x) && x->kind != FERRY_KIND_STR)
    return ferry_err_set(c->err, FERRY_ETYPE, "TypeError: add_to_lhs() wants a number or str");
  closure *f = closure_new(ADD_TO_LHS);
  if (!f)
    return ferry_err_set(c->err, FERRY_ENOMEM, "MemoryError: out of memory");
  f->lhs = *x;
  if (x->kind == FERRY_KIND_STR) {
    /* The argument is borrowed for the call only: keep a copy. */
    f->text = malloc(x->v.str.len + 1);
    if (!f->text) {
      ferry_obj_release(&f->base.base);
      return ferry_err_set(c->err, FERRY_ENOMEM, "MemoryError: out of memory");
    }
    memcpy(f->text, x->v.str.data, x->v.str.len);
    f->text[x->v.str.len] = 0;
    f->lhs.v.str.data = f->text;
  }
  return return_closure(c, f);
}

static int raise_error_callback_fn(ferry_call *c) {
  int rc = want_args(c, "test_raise_error_callback", 1);
  if (rc)
    return rc;
  if (c->args[0].kind != FERRY_KIND_STR)
    return ferry_err_set(c->err, FERRY_ETYPE,
                         "TypeError: test_raise_error_callback() wants a str");
  closure *f = closure_new(RAISE);
  if (f)
    f->text = strdup(c->args[0].v.str.data);
  if (!f || !f->text) {
    if (f)
      ferry_obj_release(&f->base.base);
    return ferry_err_set(c->err, FERRY_ENOMEM, "MemoryError: out of memory");
  }
  return return_closure(c, f);
}

static void nd_destroy(ferry_obj *o) {
  ferry_ndarray *nd = (ferry_ndarray *)o;
  ferry_err ignored;
  ferry_err_clear(&ignored);
  if (nd->tensor.data) {
    int rc = ferry_rt_free(nd->rt, nd->tensor.device, nd->tensor.data, &ignored);
    (void)rc; /* an allocation the runtime no longer knows: nothing to free */
  }
  free(nd);
}

/* numpy.zeros(10).astype("float32") in this session's memory, so that the
 * client can copy it and pass it back. */
static int zeros10(ferry_call *c, ferry_ndarray **out) {
  ferry_ndarray *nd = calloc(1, sizeof *nd);
  if (!nd)
    return ferry_err_set(c->err, FERRY_ENOMEM, "MemoryError: out of memory");
  ferry_obj_init(&nd->base, FERRY_OBJ_NDARRAY, nd_destroy);
  nd->rt = c->rt;
  nd->shape_storage[0] = 10;
  nd->tensor.ndim = 1;
  nd->tensor.shape = nd->shape_storage;
  nd->tensor.dtype = (DLDataType){kDLFloat, 32, 1};
  nd->tensor.device = (DLDevice){kDLCPU, 0};
  int rc = ferry_rt_alloc_tensor(c->rt, &nd->tensor, NULL, &nd->tensor.data, c->err);
  if (rc) {
    free(nd);
    return rc;
  }
  memset(nd->tensor.data, 0, 40);
  *out = nd;
  return FERRY_OK;
}

static int remote_return_nd_fn(ferry_call *c) {
  int rc = want_args(c, "remote_return_nd", 1);
  if (rc)
    return rc;
  if (c->args[0].kind != FERRY_KIND_STR)
    return ferry_err_set(c->err, FERRY_ETYPE, "TypeError: remote_return_nd() wants a str");
  static const struct {
    const char *name;
    enum closure_kind kind;
  } names[] = {{"get_arr", GET_ARR},
               {"ref_count", REF_COUNT},
               {"get_elem", GET_ELEM},
               {"get_arr_elem", GET_ARR_ELEM}};
  const char *name = c->args[0].v.str.data;
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    if (strcmp(name, names[i].name) != 0)
      continue;
    closure *f = closure_new(names[i].kind);
    if (!f)
      return ferry_err_set(c->err, FERRY_ENOMEM, "MemoryError: out of memory");
    rc = zeros10(c, &f->nd);
    if (rc) {
      ferry_obj_release(&f->base.base);
      return rc;
    }
    return return_closure(c, f);
  }
  return ferry_err_set(c->err, FERRY_ENOTFOUND, "RuntimeError: unknown name");
}

/* ---- lookup ---------------------------------------------------------------- */

static const struct {
  const char *name;
  testing_fn fn;
} testing_table[] = {
    {"rpc.test.addone", addone_fn},
    {"rpc.test.strcat", strcat_fn},
    {"rpc.test.except", except_fn},
    {"rpc.test.runtime_str_concat", str_concat_fn},
    {"rpc.test.remote_array_func", remote_array_fn},
    {"rpc.test.remote_tensor_func", remote_array_fn},
    {"rpc.test.add_to_lhs", add_to_lhs_fn},
    {"rpc.test.remote_return_nd", remote_return_nd_fn},
    {"testing.test_raise_error_callback", raise_error_callback_fn},
};

typedef struct testing_func {
  ferry_func base;
  testing_fn fn;
} testing_func;

static int testing_call(ferry_func *self, ferry_call *c) {
  return ((testing_func *)self)->fn(c);
}

static void testing_destroy(ferry_obj *o) { free(o); }

int session_testing_lookup(const char *name, ferry_func **out) {
  *out = NULL;
  for (size_t i = 0; i < sizeof testing_table / sizeof testing_table[0]; i++) {
    if (strcmp(name, testing_table[i].name) != 0)
      continue;
    testing_func *f = calloc(1, sizeof *f);
    if (!f)
      return FERRY_ENOMEM;
    ferry_obj_init(&f->base.base, FERRY_OBJ_FUNC, testing_destroy);
    f->base.call = testing_call;
    f->fn = testing_table[i].fn;
    *out = &f->base;
    return FERRY_OK;
  }
  return FERRY_ENOTFOUND;
}
