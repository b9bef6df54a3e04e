/* Opening and closing a session's runtime. */
#include <dlfcn.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/device/device.h"
#include "runtime/rt_internal.h"

int ferry_rt_open(ferry_rt **out, const ferry_rt_options *opt, ferry_err *err) {
  *out = NULL;
  ferry_rt *rt = calloc(1, sizeof *rt);
  if (rt == NULL)
    return ferry_err_set(err, FERRY_ENOMEM, "out of memory");
  pthread_mutex_init(&rt->lock, NULL);
  rt->num_threads = opt ? opt->num_threads : 0;
  rt->max_packet_size = opt ? opt->max_packet_size : 0;
  rt->work_quota = opt ? opt->work_quota : 0;
  rt->max_total = opt && opt->max_memory ? opt->max_memory : ferry_rt_default_max_memory();
  if (opt && opt->work_dir) {
    rt->work_dir = realpath(opt->work_dir, NULL);
    if (rt->work_dir == NULL) {
      ferry_rt_close(rt);
      return ferry_err_set(err, FERRY_EIO, "work folder %s does not exist", opt->work_dir);
    }
  }
  if (opt && opt->preload) {
    size_t n = 0;
    while (opt->preload[n])
      n++;
    rt->preloaded = calloc(n ? n : 1, sizeof *rt->preloaded);
    if (rt->preloaded == NULL) {
      ferry_rt_close(rt);
      return ferry_err_set(err, FERRY_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
      /* Global scope: such libraries provide symbols (and system-library
       * registrations) to what the session loads later. */
      void *h = dlopen(opt->preload[i], RTLD_NOW | RTLD_GLOBAL);
      if (h == NULL) {
        const char *why = dlerror();
        ferry_err_set(err, FERRY_EDLOPEN, "cannot load library %s: %s", opt->preload[i],
                      why ? why : "unknown error");
        ferry_rt_close(rt);
        return FERRY_EDLOPEN;
      }
      rt->preloaded[rt->npreloaded++] = h;
    }
  }
  ferry_thread_pool_configure(rt->num_threads);
  ferry_backend_set_rt(rt);
  *out = rt;
  return FERRY_OK;
}

void ferry_rt_close(ferry_rt *rt) {
  if (rt == NULL)
    return;
  if (rt->syslib)
    ferry_obj_release(&rt->syslib->base);
  rt->syslib = NULL;
  ferry_thread_pool_shutdown();
  ferry_backend_release_thread();
  if (ferry_backend_rt() == rt)
    ferry_backend_set_rt(NULL);
  ferry_rt_free_all(rt);
  ferry_device_close_all(rt);
  for (size_t i = 0; i < rt->npreloaded; i++)
    dlclose(rt->preloaded[i]);
  free(rt->preloaded);
  free(rt->work_dir);
  pthread_mutex_destroy(&rt->lock);
  free(rt);
}
