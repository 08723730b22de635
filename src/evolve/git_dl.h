/* git_dl.h: libgit2 loaded at run time (dlopen), not linked, and unloaded
 * while the genome is idle.
 *
 * Linking libgit2 maps it and what it needs (libcrypto, libssh2, mbedtls,
 * Kerberos) into ippocd at start, about 3 MB of resident pages, and
 * git_libgit2_init() reads the system CA certificates for mbedtls (about
 * 3.3 MB of heap), though the genome is used rarely: at start, on API calls,
 * when a run is accepted. genome.c includes this header instead of <git2.h>:
 * the git_* calls below go through the pointers of evolve_git, filled by
 * evolve_git_acquire() and valid until the matching evolve_git_release().
 * When no caller has held the library for EVOLVE_GIT_IDLE_MS (or
 * $IPPOC_GIT_IDLE_MS), a timer thread calls git_libgit2_shutdown(),
 * dlcloses it and gives the heap back (malloc_trim). No libgit2 object may
 * outlive a release: genome.c opens its repository per operation.
 * Headers only at build time (src/evolve/meson.build). */
#ifndef IPPOC_EVOLVE_GIT_DL_H
#define IPPOC_EVOLVE_GIT_DL_H

#include <git2.h>
#include <git2/sys/odb_backend.h>
#include <stdbool.h>
#include <stddef.h>

/* Unloaded after this long without a caller (ms); IPPOC_GIT_IDLE_MS
 * overrides it (tests). */
#define EVOLVE_GIT_IDLE_MS 60000

/* Every libgit2 function genome.c calls. */
#define EVOLVE_GIT_FUNCS(X) \
    X(git_libgit2_init) \
    X(git_libgit2_shutdown) \
    X(git_blob_create_from_buffer) \
    X(git_blob_free) \
    X(git_blob_lookup) \
    X(git_blob_rawcontent) \
    X(git_blob_rawsize) \
    X(git_buf_dispose) \
    X(git_checkout_options_init) \
    X(git_checkout_tree) \
    X(git_commit_author) \
    X(git_commit_create) \
    X(git_commit_free) \
    X(git_commit_id) \
    X(git_commit_lookup) \
    X(git_commit_message) \
    X(git_commit_parent) \
    X(git_commit_parentcount) \
    X(git_commit_summary) \
    X(git_commit_time) \
    X(git_commit_tree) \
    X(git_commit_tree_id) \
    X(git_diff_free) \
    X(git_diff_get_delta) \
    X(git_diff_num_deltas) \
    X(git_diff_to_buf) \
    X(git_diff_tree_to_tree) \
    X(git_error_last) \
    X(git_error_set_str) \
    X(git_index_add) \
    X(git_index_conflict_iterator_free) \
    X(git_index_conflict_iterator_new) \
    X(git_index_conflict_next) \
    X(git_index_entrycount) \
    X(git_index_free) \
    X(git_index_get_byindex) \
    X(git_index_has_conflicts) \
    X(git_index_new) \
    X(git_index_read_tree) \
    X(git_index_write) \
    X(git_index_write_tree_to) \
    X(git_merge_options_init) \
    X(git_message_trailer_array_free) \
    X(git_message_trailers) \
    X(git_object_free) \
    X(git_object_peel) \
    X(git_object_string2type) \
    X(git_odb_add_backend) \
    X(git_odb_exists) \
    X(git_odb_foreach) \
    X(git_odb_free) \
    X(git_odb_hash) \
    X(git_odb_init_backend) \
    X(git_odb_object_free) \
    X(git_odb_read) \
    X(git_oid_cpy) \
    X(git_oid_equal) \
    X(git_oid_fromstr) \
    X(git_oid_tostr) \
    X(git_reference_free) \
    X(git_reference_iterator_free) \
    X(git_reference_iterator_new) \
    X(git_reference_next) \
    X(git_repository_free) \
    X(git_repository_head_unborn) \
    X(git_repository_index) \
    X(git_repository_init_ext) \
    X(git_repository_init_options_init) \
    X(git_repository_is_bare) \
    X(git_repository_odb) \
    X(git_repository_open_ext) \
    X(git_repository_path) \
    X(git_revert_commit) \
    X(git_revparse_single) \
    X(git_revwalk_free) \
    X(git_revwalk_new) \
    X(git_revwalk_next) \
    X(git_revwalk_push) \
    X(git_revwalk_sorting) \
    X(git_signature_free) \
    X(git_signature_now) \
    X(git_status_byindex) \
    X(git_status_list_entrycount) \
    X(git_status_list_free) \
    X(git_status_list_new) \
    X(git_status_options_init) \
    X(git_tree_entry_bypath) \
    X(git_tree_entry_filemode) \
    X(git_tree_entry_free) \
    X(git_tree_entry_id) \
    X(git_tree_entry_type) \
    X(git_tree_free) \
    X(git_tree_id) \
    X(git_tree_lookup)

/* One pointer per function, of the function's own type. */
typedef struct evolve_git_api {
#define EVOLVE_GIT_FIELD(f) __typeof__(f) *f;
    EVOLVE_GIT_FUNCS(EVOLVE_GIT_FIELD)
#undef EVOLVE_GIT_FIELD
} evolve_git_api;

extern evolve_git_api evolve_git;

/* A user of the library: the first one after an unload (or ever) starts
 * the idle timer; each one loads libgit2 when it is not loaded
 * (dlopen("libgit2.so.1.5"), then "libgit2.so"; every function above;
 * git_libgit2_init) and holds it until evolve_git_release(). Thread safe.
 * 0, or -ENOENT with err naming the package (libgit2-1.5) or -EIO. */
int evolve_git_acquire(char *err, size_t errlen);
/* Ends one evolve_git_acquire(); the idle time starts when none is left. */
void evolve_git_release(void);
/* Registers one more (open) or one less (close) genome. When the last one
 * goes, the timer thread stops and the library is unloaded at once. */
void evolve_git_open_user(void);
void evolve_git_close_user(void);
/* Whether libgit2 is loaded now. */
bool evolve_git_loaded(void);

/* The calls by name go through the table (git_dl.c, which fills it,
 * defines EVOLVE_GIT_DL_TABLE_ONLY to name the fields itself). */
#ifndef EVOLVE_GIT_DL_TABLE_ONLY
#define git_libgit2_init (*evolve_git.git_libgit2_init)
#define git_libgit2_shutdown (*evolve_git.git_libgit2_shutdown)
#define git_blob_create_from_buffer (*evolve_git.git_blob_create_from_buffer)
#define git_blob_free (*evolve_git.git_blob_free)
#define git_blob_lookup (*evolve_git.git_blob_lookup)
#define git_blob_rawcontent (*evolve_git.git_blob_rawcontent)
#define git_blob_rawsize (*evolve_git.git_blob_rawsize)
#define git_buf_dispose (*evolve_git.git_buf_dispose)
#define git_checkout_options_init (*evolve_git.git_checkout_options_init)
#define git_checkout_tree (*evolve_git.git_checkout_tree)
#define git_commit_author (*evolve_git.git_commit_author)
#define git_commit_create (*evolve_git.git_commit_create)
#define git_commit_free (*evolve_git.git_commit_free)
#define git_commit_id (*evolve_git.git_commit_id)
#define git_commit_lookup (*evolve_git.git_commit_lookup)
#define git_commit_message (*evolve_git.git_commit_message)
#define git_commit_parent (*evolve_git.git_commit_parent)
#define git_commit_parentcount (*evolve_git.git_commit_parentcount)
#define git_commit_summary (*evolve_git.git_commit_summary)
#define git_commit_time (*evolve_git.git_commit_time)
#define git_commit_tree (*evolve_git.git_commit_tree)
#define git_commit_tree_id (*evolve_git.git_commit_tree_id)
#define git_diff_free (*evolve_git.git_diff_free)
#define git_diff_get_delta (*evolve_git.git_diff_get_delta)
#define git_diff_num_deltas (*evolve_git.git_diff_num_deltas)
#define git_diff_to_buf (*evolve_git.git_diff_to_buf)
#define git_diff_tree_to_tree (*evolve_git.git_diff_tree_to_tree)
#define git_error_last (*evolve_git.git_error_last)
#define git_error_set_str (*evolve_git.git_error_set_str)
#define git_index_add (*evolve_git.git_index_add)
#define git_index_conflict_iterator_free (*evolve_git.git_index_conflict_iterator_free)
#define git_index_conflict_iterator_new (*evolve_git.git_index_conflict_iterator_new)
#define git_index_conflict_next (*evolve_git.git_index_conflict_next)
#define git_index_entrycount (*evolve_git.git_index_entrycount)
#define git_index_free (*evolve_git.git_index_free)
#define git_index_get_byindex (*evolve_git.git_index_get_byindex)
#define git_index_has_conflicts (*evolve_git.git_index_has_conflicts)
#define git_index_new (*evolve_git.git_index_new)
#define git_index_read_tree (*evolve_git.git_index_read_tree)
#define git_index_write (*evolve_git.git_index_write)
#define git_index_write_tree_to (*evolve_git.git_index_write_tree_to)
#define git_merge_options_init (*evolve_git.git_merge_options_init)
#define git_message_trailer_array_free (*evolve_git.git_message_trailer_array_free)
#define git_message_trailers (*evolve_git.git_message_trailers)
#define git_object_free (*evolve_git.git_object_free)
#define git_object_peel (*evolve_git.git_object_peel)
#define git_object_string2type (*evolve_git.git_object_string2type)
#define git_odb_add_backend (*evolve_git.git_odb_add_backend)
#define git_odb_exists (*evolve_git.git_odb_exists)
#define git_odb_foreach (*evolve_git.git_odb_foreach)
#define git_odb_free (*evolve_git.git_odb_free)
#define git_odb_hash (*evolve_git.git_odb_hash)
#define git_odb_init_backend (*evolve_git.git_odb_init_backend)
#define git_odb_object_free (*evolve_git.git_odb_object_free)
#define git_odb_read (*evolve_git.git_odb_read)
#define git_oid_cpy (*evolve_git.git_oid_cpy)
#define git_oid_equal (*evolve_git.git_oid_equal)
#define git_oid_fromstr (*evolve_git.git_oid_fromstr)
#define git_oid_tostr (*evolve_git.git_oid_tostr)
#define git_reference_free (*evolve_git.git_reference_free)
#define git_reference_iterator_free (*evolve_git.git_reference_iterator_free)
#define git_reference_iterator_new (*evolve_git.git_reference_iterator_new)
#define git_reference_next (*evolve_git.git_reference_next)
#define git_repository_free (*evolve_git.git_repository_free)
#define git_repository_head_unborn (*evolve_git.git_repository_head_unborn)
#define git_repository_index (*evolve_git.git_repository_index)
#define git_repository_init_ext (*evolve_git.git_repository_init_ext)
#define git_repository_init_options_init (*evolve_git.git_repository_init_options_init)
#define git_repository_is_bare (*evolve_git.git_repository_is_bare)
#define git_repository_odb (*evolve_git.git_repository_odb)
#define git_repository_open_ext (*evolve_git.git_repository_open_ext)
#define git_repository_path (*evolve_git.git_repository_path)
#define git_revert_commit (*evolve_git.git_revert_commit)
#define git_revparse_single (*evolve_git.git_revparse_single)
#define git_revwalk_free (*evolve_git.git_revwalk_free)
#define git_revwalk_new (*evolve_git.git_revwalk_new)
#define git_revwalk_next (*evolve_git.git_revwalk_next)
#define git_revwalk_push (*evolve_git.git_revwalk_push)
#define git_revwalk_sorting (*evolve_git.git_revwalk_sorting)
#define git_signature_free (*evolve_git.git_signature_free)
#define git_signature_now (*evolve_git.git_signature_now)
#define git_status_byindex (*evolve_git.git_status_byindex)
#define git_status_list_entrycount (*evolve_git.git_status_list_entrycount)
#define git_status_list_free (*evolve_git.git_status_list_free)
#define git_status_list_new (*evolve_git.git_status_list_new)
#define git_status_options_init (*evolve_git.git_status_options_init)
#define git_tree_entry_bypath (*evolve_git.git_tree_entry_bypath)
#define git_tree_entry_filemode (*evolve_git.git_tree_entry_filemode)
#define git_tree_entry_free (*evolve_git.git_tree_entry_free)
#define git_tree_entry_id (*evolve_git.git_tree_entry_id)
#define git_tree_entry_type (*evolve_git.git_tree_entry_type)
#define git_tree_free (*evolve_git.git_tree_free)
#define git_tree_id (*evolve_git.git_tree_id)
#define git_tree_lookup (*evolve_git.git_tree_lookup)
#endif

#endif
