/* OpenCL modules: the "opencl" payload of a module blob (fmt "cl", the
 * function-info map, the OpenCL C source of every kernel), its kernels as
 * functions, and the __tvm_set_device global.
 *
 * As TVM's OpenCLModuleNode: a kernel is built on its first call, per
 * device, from its own piece of the source (SplitKernels); the program is
 * kept for the module's life; a build failure is reported with the build
 * log and leaves the session going.  A kernel function takes the launch
 * convention of TVM's host code (spec device-modules.md 1.5, 1.6): the
 * buffers (data pointers of OpenCL tensors), then the scalars, narrowed
 * per arg_types, then one extent per launch tag. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/device/opencl.h"
#include "wire/devmod.h"

struct cl_kernel_slot {
  cl_program program;
  cl_kernel kernel;
};

struct cl_module {
  ferry_module base;
  ferry_rt *rt;
  ferry_devmod m;
  /* [device][function], built lazily; guarded by rt->lock only for the
   * build itself (calls come from the session thread). */
  struct cl_kernel_slot (*slots)[FERRY_CL_MAX_DEVICES];
};

struct cl_func {
  ferry_func base;
  struct cl_module *mod; /* one reference */
  size_t index;
};

static void module_destroy(ferry_obj *o) {
  struct cl_module *m = (struct cl_module *)o;
  struct ferry_cl *cl = m->rt->cl;
  for (size_t f = 0; f < m->m.nfuncs && cl != NULL; f++)
    for (int d = 0; d < FERRY_CL_MAX_DEVICES; d++) {
      if (m->slots[f][d].kernel)
        cl->api.clReleaseKernel(m->slots[f][d].kernel);
      if (m->slots[f][d].program)
        cl->api.clReleaseProgram(m->slots[f][d].program);
    }
  free(m->slots);
  ferry_devmod_free(&m->m);
  ferry_module_release_imports(&m->base);
  free(m);
}

static void func_destroy(ferry_obj *o) {
  struct cl_func *f = (struct cl_func *)o;
  ferry_obj_release(&f->mod->base.base);
  free(f);
}

/* Builds kernel index of m for device dev (once). */
static int build_kernel(struct cl_module *m, size_t index, int dev, cl_kernel *out,
                        ferry_err *err) {
  struct ferry_cl *cl = m->rt->cl;
  struct cl_kernel_slot *slot = &m->slots[index][dev];
  if (slot->kernel) {
    *out = slot->kernel;
    return FERRY_OK;
  }
  const char *name = m->m.funcs[index].name;
  const char *src = NULL;
  size_t len = 0;
  if (ferry_devmod_kernel_source(m->m.data, m->m.data_len, name, &src, &len) != FERRY_OK)
    return ferry_err_set(err, FERRY_ENOTFOUND,
                         "OpenCL module: its source has no \"// Function: %s\" piece for "
                         "kernel %s",
                         name, name);
  cl_int e = CL_SUCCESS;
  if (slot->program == NULL) {
    cl_program p = cl->api.clCreateProgramWithSource(cl->devs[dev].ctx, 1, &src, &len, &e);
    if (p == NULL || e != CL_SUCCESS)
      return ferry_err_set(err, FERRY_EIO, "OpenCL: clCreateProgramWithSource failed: %s (%d)",
                           ferry_cl_error_name(e), (int)e);
    e = cl->api.clBuildProgram(p, 1, &cl->devs[dev].id, "", NULL, NULL);
    if (e != CL_SUCCESS) {
      /* TVM's message, with the driver's build log. */
      char log[3072] = "";
      size_t got = 0;
      if (cl->api.clGetProgramBuildInfo(p, cl->devs[dev].id, CL_PROGRAM_BUILD_LOG,
                                        sizeof log - 1, log, &got) != CL_SUCCESS)
        snprintf(log, sizeof log, "(no build log)");
      log[sizeof log - 1] = 0;
      cl->api.clReleaseProgram(p);
      /* PoCL's log ends with "Device NAME failed to build the program"
       * itself; say it for drivers whose log does not. */
      int says = strstr(log, "failed to build") != NULL;
      return ferry_err_set(err, FERRY_EINVAL,
                           "OpenCL build error for device=%p\nError: %s\n%s%s%s%s(kernel %s)",
                           (void *)cl->devs[dev].id, ferry_cl_error_name(e), log,
                           says ? "" : "\nDevice ", says ? "" : cl->devs[dev].name,
                           says ? "" : " failed to build the program\n", name);
    }
    slot->program = p;
  }
  cl_kernel k = cl->api.clCreateKernel(slot->program, name, &e);
  if (k == NULL || e != CL_SUCCESS)
    return ferry_err_set(err, FERRY_ENOTFOUND,
                         "OpenCL: the source of kernel %s defines no __kernel %s: %s (%d)", name,
                         name, ferry_cl_error_name(e), (int)e);
  slot->kernel = k;
  *out = k;
  return FERRY_OK;
}

/* Slot of a launch tag: 0-2 grid (blockIdx), 3-5 block (threadIdx), 6 the
 * dynamic shared memory size, -1 unknown. */
static int tag_slot(const char *tag) {
  if (strncmp(tag, "blockIdx.", 9) == 0 && tag[9] >= 'x' && tag[9] <= 'z' && tag[10] == 0)
    return tag[9] - 'x';
  if (strncmp(tag, "threadIdx.", 10) == 0 && tag[10] >= 'x' && tag[10] <= 'z' && tag[11] == 0)
    return 3 + tag[10] - 'x';
  if (strcmp(tag, "tir.use_dyn_shared_memory") == 0 ||
      strcmp(tag, "tirx.use_dyn_shared_memory") == 0)
    return 6;
  return -1;
}

static int set_arg(struct ferry_cl *cl, cl_kernel k, int i, const DLDataType *t,
                   const ferry_value *v, ferry_rt *rt, int dev, const char *name,
                   ferry_err *err) {
  cl_int e;
  if (t->code == kDLOpaqueHandle) {
    if (v->kind != FERRY_KIND_OPAQUE)
      return ferry_err_set(err, FERRY_EINVAL, "%s: argument %d must be a buffer handle", name, i);
    ferry_err why;
    ferry_err_clear(&why);
    struct ferry_cl_buf *b = ferry_cl_buf_lookup(rt, (void *)(uintptr_t)v->v.handle, &why);
    if (b == NULL)
      return ferry_err_set(err, FERRY_EBADHANDLE, "%s: argument %d: %s", name, i, why.msg);
    if (b->dev != dev)
      return ferry_err_set(err, FERRY_EINVAL,
                           "%s: argument %d is a buffer of opencl:%d, the kernel runs on "
                           "opencl:%d",
                           name, i, b->dev, dev);
    e = cl->api.clSetKernelArg(k, (cl_uint)i, sizeof b->mem, &b->mem);
  } else if (t->lanes != 1) {
    return ferry_err_set(err, FERRY_EUNSUPPORTED, "%s: argument %d: vector scalars unsupported",
                         name, i);
  } else if ((t->code == kDLInt || t->code == kDLUInt) && (t->bits == 32 || t->bits == 64)) {
    if (v->kind != FERRY_KIND_INT && v->kind != FERRY_KIND_BOOL)
      return ferry_err_set(err, FERRY_EINVAL, "%s: argument %d must be an integer", name, i);
    if (t->bits == 32) {
      int32_t x = (int32_t)v->v.i; /* narrowed, as TVM's PackFuncVoidAddr */
      e = cl->api.clSetKernelArg(k, (cl_uint)i, sizeof x, &x);
    } else {
      int64_t x = v->v.i;
      e = cl->api.clSetKernelArg(k, (cl_uint)i, sizeof x, &x);
    }
  } else if (t->code == kDLFloat && (t->bits == 32 || t->bits == 64)) {
    double d = v->kind == FERRY_KIND_FLOAT ? v->v.f : v->kind == FERRY_KIND_INT ? (double)v->v.i : 0;
    if (v->kind != FERRY_KIND_FLOAT && v->kind != FERRY_KIND_INT)
      return ferry_err_set(err, FERRY_EINVAL, "%s: argument %d must be a number", name, i);
    if (t->bits == 32) {
      float x = (float)d;
      e = cl->api.clSetKernelArg(k, (cl_uint)i, sizeof x, &x);
    } else {
      e = cl->api.clSetKernelArg(k, (cl_uint)i, sizeof d, &d);
    }
  } else {
    /* TVM's GetArgConvertCode accepts only these (int8/16, fp16 fatal). */
    return ferry_err_set(err, FERRY_EUNSUPPORTED,
                         "%s: argument %d has type code %d bits %d: only int32/64, uint32, "
                         "float32/64 and handles can be kernel arguments",
                         name, i, t->code, t->bits);
  }
  if (e != CL_SUCCESS)
    return ferry_err_set(err, FERRY_EINVAL, "OpenCL: clSetKernelArg(%s, %d) failed: %s (%d)",
                         name, i, ferry_cl_error_name(e), (int)e);
  return FERRY_OK;
}

static int func_call(ferry_func *self, ferry_call *c) {
  struct cl_func *f = (struct cl_func *)self;
  struct cl_module *m = f->mod;
  const ferry_devmod_func *info = &m->m.funcs[f->index];
  struct ferry_cl *cl = ferry_cl_get(m->rt);
  if (cl == NULL || cl->ndev == 0)
    return ferry_err_set(c->err, FERRY_EUNSUPPORTED, "OpenCL kernel %s: no OpenCL device: %s",
                         info->name, cl ? cl->why : "out of memory");
  if (c->nargs != info->nargs + info->ntags)
    return ferry_err_set(c->err, FERRY_EINVAL,
                         "OpenCL kernel %s takes %d arguments and %d launch extents, got %d "
                         "values",
                         info->name, info->nargs, info->ntags, c->nargs);
  int dev = cl->cur_dev;
  cl_kernel k = NULL;
  int rc = build_kernel(m, f->index, dev, &k, c->err);
  if (rc)
    return rc;
  for (int i = 0; i < info->nargs; i++)
    if ((rc = set_arg(cl, k, i, &info->arg_types[i], &c->args[i], m->rt, dev, info->name,
                      c->err)))
      return rc;
  size_t ext[6] = {1, 1, 1, 1, 1, 1};
  int work_dim = 1;
  for (int t = 0; t < info->ntags; t++) {
    const ferry_value *v = &c->args[info->nargs + t];
    int s = tag_slot(info->tags[t]);
    if (s < 0)
      return ferry_err_set(c->err, FERRY_EUNSUPPORTED, "OpenCL kernel %s: launch tag %s is not "
                                                       "supported", info->name, info->tags[t]);
    if (v->kind != FERRY_KIND_INT)
      return ferry_err_set(c->err, FERRY_EINVAL, "OpenCL kernel %s: extent of %s is not an "
                                                 "integer", info->name, info->tags[t]);
    if (s == 6)
      continue; /* OpenCL kernels declare their __local memory statically */
    if (v->v.i > (int64_t)1 << 31)
      return ferry_err_set(c->err, FERRY_ERANGE, "OpenCL kernel %s: extent %lld of %s is too "
                                                 "large", info->name, (long long)v->v.i,
                           info->tags[t]);
    ext[s] = v->v.i > 0 ? (size_t)v->v.i : 1; /* TVM: <= 0 becomes 1 */
    if (s % 3 + 1 > work_dim)
      work_dim = s % 3 + 1;
  }
  size_t global[3], local[3];
  for (int d = 0; d < 3; d++) {
    global[d] = ext[d] * ext[3 + d];
    local[d] = ext[3 + d];
  }
  cl_event ev = NULL;
  cl_int e = cl->api.clEnqueueNDRangeKernel(cl->devs[dev].queue, k, (cl_uint)work_dim, NULL, global,
                                            local, 0, NULL, &ev);
  if (e != CL_SUCCESS) {
    size_t maxwg = 0, dims[3] = {0, 0, 0};
    cl->api.clGetDeviceInfo(cl->devs[dev].id, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof maxwg, &maxwg,
                            NULL);
    cl->api.clGetDeviceInfo(cl->devs[dev].id, CL_DEVICE_MAX_WORK_ITEM_SIZES, sizeof dims, dims,
                            NULL);
    return ferry_err_set(c->err, FERRY_EINVAL,
                         "OpenCL: clEnqueueNDRangeKernel of %s failed: %s (%d): grid %zux%zux%zu, "
                         "block %zux%zux%zu (%zu work-items); the device allows %zu work-items "
                         "per block and [%zu, %zu, %zu] per dimension",
                         info->name, ferry_cl_error_name(e), (int)e, ext[0], ext[1], ext[2],
                         ext[3], ext[4], ext[5], ext[3] * ext[4] * ext[5], maxwg, dims[0],
                         dims[1], dims[2]);
  }
  ferry_cl_account_event(cl, dev, ev);
  return FERRY_OK;
}

static int module_get_function(ferry_module *self, const char *name, ferry_func **out,
                               ferry_err *err) {
  (void)err;
  struct cl_module *m = (struct cl_module *)self;
  *out = NULL;
  for (size_t i = 0; i < m->m.nfuncs; i++)
    if (strcmp(m->m.funcs[i].name, name) == 0) {
      struct cl_func *f = calloc(1, sizeof *f);
      if (f == NULL)
        return FERRY_ENOMEM;
      ferry_obj_init(&f->base.base, FERRY_OBJ_FUNC, func_destroy);
      f->base.call = func_call;
      ferry_obj_retain(&m->base.base);
      f->mod = m;
      f->index = i;
      *out = &f->base;
      return FERRY_OK;
    }
  return FERRY_ENOTFOUND;
}

static int load(ferry_rt *rt, const uint8_t *payload, size_t avail, enum ferry_devmod_gen gen,
                size_t *consumed, ferry_module **out, ferry_err *err) {
  *out = NULL;
  struct cl_module *m = calloc(1, sizeof *m);
  if (m == NULL)
    return ferry_err_set(err, FERRY_ENOMEM, "out of memory");
  char why[256];
  int rc = ferry_devmod_decode(payload, avail, gen, &m->m, why, sizeof why);
  if (rc) {
    free(m);
    return ferry_err_set(err, FERRY_EPROTO, "the \"opencl\" module of the library is malformed: %s",
                         why);
  }
  if (strcmp(m->m.fmt, "cl") != 0) {
    rc = ferry_err_set(err, FERRY_EUNSUPPORTED,
                       "OpenCL module format \"%s\" is not supported (only \"cl\": OpenCL C "
                       "source; FPGA binaries are not)",
                       m->m.fmt);
    ferry_devmod_free(&m->m);
    free(m);
    return rc;
  }
  m->slots = calloc(m->m.nfuncs ? m->m.nfuncs : 1, sizeof *m->slots);
  if (m->slots == NULL) {
    ferry_devmod_free(&m->m);
    free(m);
    return ferry_err_set(err, FERRY_ENOMEM, "out of memory");
  }
  ferry_obj_init(&m->base.base, FERRY_OBJ_MODULE, module_destroy);
  m->base.type_key = "opencl";
  m->base.get_function = module_get_function;
  m->rt = rt;
  *consumed = m->m.consumed;
  *out = &m->base;
  return FERRY_OK;
}

int ferry_opencl_load_blob(ferry_rt *rt, const uint8_t *payload, size_t avail, size_t *consumed,
                           ferry_module **out, ferry_err *err) {
  return load(rt, payload, avail, FERRY_DEVMOD_V020, consumed, out, err);
}

int ferry_opencl_load_ffi(ferry_rt *rt, const uint8_t *payload, size_t avail, size_t *consumed,
                          ferry_module **out, ferry_err *err) {
  return load(rt, payload, avail, FERRY_DEVMOD_V026, consumed, out, err);
}

/* __tvm_set_device(device_type, device_id): what every device PrimFunc
 * calls before its kernels; later launches go to that device. */
static int set_device_fn(ferry_call *c) {
  int64_t type, id;
  int rc = ferry_arg_count(c, "__tvm_set_device", 2, 2);
  if (rc || (rc = ferry_arg_int(c, "__tvm_set_device", 0, &type)) ||
      (rc = ferry_arg_int(c, "__tvm_set_device", 1, &id)))
    return rc;
  if (type < 0 || type > 1000 || id < 0 || id > 1 << 20)
    return ferry_err_set(c->err, FERRY_EINVAL, "__tvm_set_device(%lld, %lld): no such device",
                         (long long)type, (long long)id);
  DLDevice dev = {(DLDeviceType)type, (int32_t)id};
  return ferry_rt_set_device(c->rt, dev, c->err);
}

int ferry_rt_set_device(ferry_rt *rt, DLDevice dev, ferry_err *err) {
  int rc = ferry_rt_device_check(rt, dev, err);
  if (rc == FERRY_OK && dev.device_type == kDLOpenCL)
    ferry_cl_get(rt)->cur_dev = (int)dev.device_id;
  return rc;
}

const struct ferry_builtin ferry_device_builtins[] = {
    {"__tvm_set_device", set_device_fn},
    {NULL, NULL},
};
