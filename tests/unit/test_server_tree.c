/* The server's session-folder removal: everything a session left behind
 * goes, nothing outside the folder is touched (symbolic links are removed,
 * never followed), and folders a session made unwritable still go. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "server/server_state.h"

static void touch(const char *path) {
  int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, "x", 1), 1);
  close(fd);
}

static int exists(const char *path) {
  struct stat st;
  return lstat(path, &st) == 0;
}

static void test_removes_nested_tree_but_not_link_targets(void **state) {
  (void)state;
  char root[] = "/tmp/ferry-tree-XXXXXX";
  assert_non_null(mkdtemp(root));
  char outside[256], sess[256], p[PATH_MAX];
  snprintf(outside, sizeof outside, "%s/outside", root);
  assert_int_equal(mkdir(outside, 0700), 0);
  snprintf(p, sizeof p, "%s/keep.txt", outside);
  touch(p);
  snprintf(sess, sizeof sess, "%s/session", root);
  assert_int_equal(mkdir(sess, 0700), 0);
  snprintf(p, sizeof p, "%s/a", sess);
  assert_int_equal(mkdir(p, 0700), 0);
  snprintf(p, sizeof p, "%s/a/b", sess);
  assert_int_equal(mkdir(p, 0700), 0);
  snprintf(p, sizeof p, "%s/a/b/file", sess);
  touch(p);
  /* Links to a folder and a file outside: removed, targets untouched. */
  snprintf(p, sizeof p, "%s/link-dir", sess);
  assert_int_equal(symlink(outside, p), 0);
  snprintf(p, sizeof p, "%s/a/link-file", sess);
  char target[PATH_MAX];
  snprintf(target, sizeof target, "%s/keep.txt", outside);
  assert_int_equal(symlink(target, p), 0);
  /* A folder the session made read-only and unsearchable. */
  snprintf(p, sizeof p, "%s/locked", sess);
  assert_int_equal(mkdir(p, 0700), 0);
  snprintf(target, sizeof target, "%s/locked/inner", sess);
  touch(target);
  assert_int_equal(chmod(p, 0), 0);

  assert_int_equal(server_fork_remove_tree(sess), 0);
  assert_false(exists(sess));
  snprintf(p, sizeof p, "%s/keep.txt", outside);
  assert_true(exists(p));
  assert_int_equal(server_fork_remove_tree(root), 0);
  assert_false(exists(root));
}

static void test_missing_folder_is_fine(void **state) {
  (void)state;
  assert_int_equal(server_fork_remove_tree("/tmp/ferry-tree-does-not-exist"), 0);
}

static void test_a_link_as_the_folder_is_not_followed(void **state) {
  (void)state;
  char root[] = "/tmp/ferry-tree-XXXXXX";
  assert_non_null(mkdtemp(root));
  char real[256], link[256], f[PATH_MAX];
  snprintf(real, sizeof real, "%s/real", root);
  assert_int_equal(mkdir(real, 0700), 0);
  snprintf(f, sizeof f, "%s/f", real);
  touch(f);
  snprintf(link, sizeof link, "%s/link", root);
  assert_int_equal(symlink(real, link), 0);
  assert_int_not_equal(server_fork_remove_tree(link), 0);
  assert_true(exists(f));
  assert_int_equal(server_fork_remove_tree(root), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_removes_nested_tree_but_not_link_targets),
      cmocka_unit_test(test_missing_folder_is_fine),
      cmocka_unit_test(test_a_link_as_the_folder_is_not_followed),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
