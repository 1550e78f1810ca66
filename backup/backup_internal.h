/* SPDX-License-Identifier: MIT */
/*
 * Private to backup/: the file-level pieces runs share (hashing, atomic
 * JSON files, the catalog scan) and the pgBackRest steps of a run.
 */
#ifndef SUP_BACKUP_INTERNAL_H
#define SUP_BACKUP_INTERNAL_H

#include "backup/backup.h"

#define BACKUP_INPROGRESS ".inprogress"
#define BACKUP_MANIFEST "manifest.json"
#define BACKUP_CATALOG "catalog.json"
#define BACKUP_LOCK ".lock"
#define BACKUP_SHA256_HEX 65

/* hash_file() - sha256 (hex) and size of a file. Return: 0 or -errno. */
int hash_file(const char *path, char hex[BACKUP_SHA256_HEX], uint64_t *size);
/* fsync_path() - fsync a file or directory by name. Return: 0 or -errno. */
int fsync_path(const char *path);
/* rm_tree() - remove a file or a directory tree. Return: 0 or -errno. */
int rm_tree(const char *path);
/* write_json_atomic() - DIR/NAME via DIR/.NAME.tmp, fsync, rename, fsync DIR. Return: 0 or -errno. */
int write_json_atomic(const char *dir, const char *name, const json_t *doc);

/**
 * catalog_scan() - every backup directory under @nodedir, checked.
 * @nodedir: DIR/NODE.
 * @rehash: re-read every file and compare checksums (else sizes only).
 *
 * Return: a new array, oldest first, of {name, method, started_at,
 * finished_at, size_bytes, good, problem, verified_at, databases}.
 */
json_t *catalog_scan(const char *nodedir, bool rehash);

/**
 * catalog_carry_verdicts() - keep the last checksum verdicts across a cheap scan.
 * @backups: a size-only scan (updated in place).
 * @old: the previous catalog.json document.
 *
 * A backup found corrupted stays not good, and a good one keeps the time
 * its checksums were last read, until the next verify run re-reads them.
 */
void catalog_carry_verdicts(json_t *backups, const json_t *old);

/* catalog_newest_good() - the newest good entry of a scan, or NULL (borrowed). */
json_t *catalog_newest_good(const json_t *backups);

/**
 * catalog_run_is_newer() - whether the catalog's last run is later than the daemon's own.
 * @cat: catalog.json's last_run record, or NULL.
 * @cat_seen_ms: now_ms() when that record first appeared in the catalog.
 * @own: the last run the daemon saw end, or NULL.
 * @own_seen_ms: now_ms() when the daemon recorded it.
 *
 * Records carry finished_at in whole seconds: a run started by hand can end
 * in the same second as the daemon's own (a refusal takes milliseconds), and
 * then the one that appeared later is the later run.
 *
 * Return: true to report @cat.
 */
bool catalog_run_is_newer(const json_t *cat, uint64_t cat_seen_ms, const json_t *own, uint64_t own_seen_ms);

/* Where a node's backups live: DIR/NODE. Caller frees. */
char *backup_node_dir(const struct conf *conf);

/* pgBackRest's part of a run (backup/pgbackrest.c). */
struct run_ctx;
/**
 * pgbackrest_run() - stanza-create (once), a full or diff backup, info and verify.
 * @conf: the configuration.
 * @summary: receives {backup{label,type,...}, info{...}, verify{ok, problem}}.
 * @error: receives a malloc'ed reason on failure.
 *
 * Return: true on a verified backup.
 */
bool pgbackrest_run(const struct conf *conf, json_t **summary, char **error);
/* pgbackrest_check() - info + verify only (verify mode). */
json_t *pgbackrest_check(const struct conf *conf);

/**
 * run_tool() - run a program as a child of the run, wait for it.
 * @argv: argv[0] absolute or found in PATH.
 * @out_path: file to receive stdout, or NULL (stdout goes to our stderr).
 * @capture: receives stdout as a string when @out_path is NULL (may be NULL).
 * @last_err: receives the last line it wrote to stderr (malloc'ed, may be NULL).
 *
 * Its stderr is passed through to ours (the daemon's log).
 * Return: its wait status, or -errno when it could not start.
 */
int run_tool(const char *const *argv, const char *out_path, char **capture, char **last_err);
/* tool_status_text() - "exit 1" / "signal 9 (SIGKILL)". Static buffer. */
const char *tool_status_text(int status);

#endif
