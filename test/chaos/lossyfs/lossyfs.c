/*
 * lossyfs — a FUSE 3 passthrough filesystem that loses un-fsynced writes on "power loss".
 *
 *   lossyfs [-d] [-o max_buffered=BYTES] [-o fuse-option...] <backing-dir> <mountpoint>
 *
 * Runs in the foreground (the caller spawns it as a child process), multi-threaded. -d prints
 * libfuse's debug trace of every request to stderr. Exit codes: 0 after SIGTERM/SIGINT/SIGHUP or
 * an unmount from outside, LOSSYFS_EXIT_* otherwise.
 *
 * Model (what survives a power loss, i.e. SIGUSR1):
 *  - File data is volatile until fsync. write() never touches the backing file: the bytes are
 *    kept in memory per file (per backing inode, so a renamed file keeps its buffered data and a
 *    hard link shares it). read() returns the backing data overlaid with the buffered data;
 *    getattr reports the size including buffered writes past the backing end.
 *  - fsync()/fdatasync() on any handle of a file writes that file's buffered data to the backing
 *    file, then fsyncs the backing file. close/flush/release write nothing (like a page cache).
 *  - truncate/ftruncate/open(O_TRUNC) and fallocate modes that change data (punch hole, zero
 *    range, collapse, insert) are durability points: the file's buffered data is written to the
 *    backing file first, then the operation is applied to the backing file. Plain fallocate
 *    (mode 0 or FALLOC_FL_KEEP_SIZE) changes no data and is passed through without writing.
 *  - Writes through a handle opened O_SYNC/O_DSYNC are written and fdatasync'ed at once.
 *  - Metadata operations (create, mkdir, unlink, rmdir, rename, link, symlink, chmod, chown,
 *    utimens, truncate) are durable at once: they go straight to the backing directory. This
 *    is a simplification: a real filesystem can also lose them without an fsync of the directory.
 *    fsyncdir fsyncs the backing directory.
 *  - An unlinked file (its last link gone) drops its buffered data once no handle holds it open.
 *  - Bounded memory: at most max_buffered bytes (default LOSSYFS_MAX_BUFFERED_DEFAULT) are kept
 *    buffered over all files, counted as buffered extent bytes (allocations may be up to twice
 *    that, as extents grow by doubling). Past it, the buffers of the files dirtied longest ago
 *    are written to their backing files WITHOUT fsync — as kernel writeback would — until the
 *    total is at most the limit. That data then survives a power loss in this model.
 *  - Locks: lossyfs implements neither lock nor flock, so the kernel keeps POSIX and flock
 *    locks locally for the mount: correct among processes using this mount (RocksDB's LOCK file),
 *    invisible to processes using the backing directory directly.
 *  - The kernel keeps no page cache and no attribute cache for the mount (direct_io, zero
 *    timeouts): after a power loss every reader sees the backing data at once.
 *
 *  - Concurrency: one mutex (g_lock) guards every buffer; reads, writes and write-backs of all
 *    files are serialized under it (backing fsyncs run outside it). Simple and correct; fast
 *    enough for a test store, not for throughput benchmarks.
 *
 * Signals:
 *  - SIGUSR1: drop every buffered (unsynced) write of every file at once, then print exactly one
 *    line "lossyfs: dropped <bytes> unsynced bytes of <files> files" to stdout (flushed). SIGUSR1
 *    is blocked in every thread and taken by a dedicated thread with sigwait(), so no work at all
 *    runs in signal-handler context.
 *  - SIGTERM/SIGINT/SIGHUP: libfuse's own handlers end the loop; lossyfs unmounts and exits 0.
 *    Buffered data is discarded, as a power loss would.
 * Once the mount is live (FUSE init done), "lossyfs: mounted <mountpoint>" is printed (flushed).
 */
#define FUSE_USE_VERSION 31
#define _GNU_SOURCE

#include <fuse.h>
#include <fuse_lowlevel.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <unistd.h>

/* ---- bounds -------------------------------------------------------------------------------- */

/** Default bound on buffered (unsynced) bytes over all files: 256 MiB. */
#define LOSSYFS_MAX_BUFFERED_DEFAULT ((size_t)256 << 20)
/** Buckets of the inode table (chained; the table never grows — a few hundred files are typical). */
#define LOSSYFS_INODE_BUCKETS 4096
/** Smallest allocation of an extent's buffer, so small appends do not realloc every time. */
#define LOSSYFS_EXTENT_MIN_CAP ((size_t)4096)

/* ---- state ---------------------------------------------------------------------------------- */

/** One run of buffered bytes [off, off+len) of a file. Extents of a file are sorted, disjoint
 * and never adjacent (adjacent writes are merged). */
struct extent {
  off_t off;
  size_t len;
  size_t cap;
  char *data;
};

/** A backing inode lossyfs knows about: it has open handles or buffered data (or both). */
struct inode {
  dev_t dev;
  ino_t ino;
  struct inode *next; /* hash chain */
  int handles;        /* open lossyfs handles on it */
  int unlinked;       /* its last link is gone: drop data once no handle remains */
  int wfd;            /* a writable backing fd (dup of the first writing handle's), or -1 */
  uint64_t dirtied;   /* sequence number of when it went from clean to dirty (for writeback) */
  struct extent *ext;
  int n_ext;
  int cap_ext;
  size_t buffered;    /* sum of extent lengths */
};

/** One open file of the mount (fi->fh). */
struct handle {
  int fd;          /* backing fd (O_APPEND and O_DIRECT stripped) */
  int sync;        /* opened O_SYNC/O_DSYNC: writes are made durable at once */
  struct inode *in;
};

static int g_root = -1;                /* fd of the backing directory */
static const char *g_mountpoint = "";
static size_t g_max_buffered = LOSSYFS_MAX_BUFFERED_DEFAULT;
/** One lock over the inode table and every buffer; held across backing I/O that must be
 * consistent with the buffers (reads, writes, flushes, truncates, namespace changes). */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct inode *g_table[LOSSYFS_INODE_BUCKETS];
static size_t g_buffered;              /* sum of every inode's buffered bytes */
static uint64_t g_dirty_seq;

/* ---- inode table (callers hold g_lock) ----------------------------------------------------------- */

static struct inode **bucket(dev_t dev, ino_t ino) {
  return &g_table[((uint64_t)ino * 0x9E3779B97F4A7C15ull ^ (uint64_t)dev) % LOSSYFS_INODE_BUCKETS];
}

static struct inode *inode_find(dev_t dev, ino_t ino) {
  for (struct inode *in = *bucket(dev, ino); in != NULL; in = in->next)
    if (in->dev == dev && in->ino == ino) return in;
  return NULL;
}

static struct inode *inode_get(dev_t dev, ino_t ino) {
  struct inode *in = inode_find(dev, ino);
  if (in != NULL) return in;
  in = calloc(1, sizeof *in);
  if (in == NULL) return NULL;
  in->dev = dev;
  in->ino = ino;
  in->wfd = -1;
  struct inode **b = bucket(dev, ino);
  in->next = *b;
  *b = in;
  return in;
}

/** Frees every buffered extent of `in` (the data is lost). */
static void inode_discard(struct inode *in) {
  for (int i = 0; i < in->n_ext; i++) free(in->ext[i].data);
  free(in->ext);
  in->ext = NULL;
  in->n_ext = in->cap_ext = 0;
  g_buffered -= in->buffered;
  in->buffered = 0;
}

/** Forgets `in` when nothing needs it any more: no handle and no data (or unlinked). */
static void inode_maybe_free(struct inode *in) {
  if (in->handles > 0) return;
  if (in->buffered > 0 && !in->unlinked) return;
  inode_discard(in);
  for (struct inode **p = bucket(in->dev, in->ino); *p != NULL; p = &(*p)->next) {
    if (*p == in) {
      *p = in->next;
      break;
    }
  }
  if (in->wfd >= 0) close(in->wfd);
  free(in);
}

/** End of the buffered data (0 when none). */
static off_t inode_end(const struct inode *in) {
  if (in->n_ext == 0) return 0;
  const struct extent *e = &in->ext[in->n_ext - 1];
  return e->off + (off_t)e->len;
}

/** Grows extent `e`'s buffer to hold at least `need` bytes (doubling). */
static int extent_reserve(struct extent *e, size_t need) {
  if (need <= e->cap) return 0;
  size_t cap = e->cap < LOSSYFS_EXTENT_MIN_CAP ? LOSSYFS_EXTENT_MIN_CAP : e->cap;
  while (cap < need) cap *= 2;
  char *data = realloc(e->data, cap);
  if (data == NULL) return -ENOMEM;
  e->data = data;
  e->cap = cap;
  return 0;
}

/** Buffers `len` bytes at `off` over whatever is buffered there. */
static int inode_buffer(struct inode *in, const char *buf, size_t len, off_t off) {
  if (len == 0) return 0;
  off_t a = off, b = off + (off_t)len;
  /* i: first extent ending at or after a; j: last extent starting at or before b. */
  int i = 0;
  while (i < in->n_ext && in->ext[i].off + (off_t)in->ext[i].len < a) i++;
  int j = i - 1;
  while (j + 1 < in->n_ext && in->ext[j + 1].off <= b) j++;
  if (in->buffered == 0) in->dirtied = ++g_dirty_seq;
  if (j < i) {
    /* Touches nothing: a new extent at i. */
    if (in->n_ext == in->cap_ext) {
      int cap = in->cap_ext == 0 ? 4 : in->cap_ext * 2;
      struct extent *v = realloc(in->ext, (size_t)cap * sizeof *v);
      if (v == NULL) return -ENOMEM;
      in->ext = v;
      in->cap_ext = cap;
    }
    struct extent e = {.off = off, .len = 0, .cap = 0, .data = NULL};
    if (extent_reserve(&e, len) < 0) return -ENOMEM;
    memcpy(e.data, buf, len);
    e.len = len;
    memmove(&in->ext[i + 1], &in->ext[i], (size_t)(in->n_ext - i) * sizeof *in->ext);
    in->ext[i] = e;
    in->n_ext++;
    in->buffered += len;
    g_buffered += len;
    return 0;
  }
  /* Merge extents i..j and the new bytes into one extent [lo, hi). */
  off_t lo = a < in->ext[i].off ? a : in->ext[i].off;
  off_t last_end = in->ext[j].off + (off_t)in->ext[j].len;
  off_t hi = b > last_end ? b : last_end;
  size_t old = 0;
  for (int k = i; k <= j; k++) old += in->ext[k].len;
  struct extent m;
  if (in->ext[i].off == lo) {
    /* Grow extent i in place (the common append case). */
    m = in->ext[i];
    if (extent_reserve(&m, (size_t)(hi - lo)) < 0) return -ENOMEM;
  } else {
    m = (struct extent){.off = lo, .len = 0, .cap = 0, .data = NULL};
    if (extent_reserve(&m, (size_t)(hi - lo)) < 0) return -ENOMEM;
    memcpy(m.data + (in->ext[i].off - lo), in->ext[i].data, in->ext[i].len);
    free(in->ext[i].data);
  }
  for (int k = i + 1; k <= j; k++) {
    memcpy(m.data + (in->ext[k].off - lo), in->ext[k].data, in->ext[k].len);
    free(in->ext[k].data);
  }
  memcpy(m.data + (a - lo), buf, len);
  m.off = lo;
  m.len = (size_t)(hi - lo);
  in->ext[i] = m;
  memmove(&in->ext[i + 1], &in->ext[j + 1], (size_t)(in->n_ext - j - 1) * sizeof *in->ext);
  in->n_ext -= j - i;
  in->buffered = in->buffered - old + m.len;
  g_buffered = g_buffered - old + m.len;
  return 0;
}

/** Writes `in`'s buffered data to the backing file (no fsync) and forgets it. */
static int inode_writeback(struct inode *in) {
  if (in->buffered == 0) return 0;
  if (in->wfd < 0) return -EBADF; /* cannot happen: data is only buffered through a writable fd */
  for (int i = 0; i < in->n_ext; i++) {
    const struct extent *e = &in->ext[i];
    size_t done = 0;
    while (done < e->len) {
      ssize_t n = pwrite(in->wfd, e->data + done, e->len - done, e->off + (off_t)done);
      if (n < 0) {
        if (errno == EINTR) continue;
        return -errno; /* keep the buffers: nothing is lost */
      }
      done += (size_t)n;
    }
  }
  inode_discard(in);
  return 0;
}

/** Kernel-writeback stand-in: writes back the files dirtied longest ago until within bounds. */
static void enforce_bound(void) {
  while (g_buffered > g_max_buffered) {
    struct inode *oldest = NULL;
    for (int b = 0; b < LOSSYFS_INODE_BUCKETS; b++)
      for (struct inode *in = g_table[b]; in != NULL; in = in->next)
        if (in->buffered > 0 && (oldest == NULL || in->dirtied < oldest->dirtied)) oldest = in;
    if (oldest == NULL || inode_writeback(oldest) < 0) return; /* an I/O error: retried on the next write */
    inode_maybe_free(oldest);
  }
}

/* ---- helpers -------------------------------------------------------------------------------------- */

/** A FUSE path as a path relative to g_root. */
static const char *rel(const char *path) {
  while (*path == '/') path++;
  return *path == '\0' ? "." : path;
}

static struct handle *H(const struct fuse_file_info *fi) {
  return (struct handle *)(uintptr_t)fi->fh;
}

/** Under g_lock: the victim of an unlink/rename-over lost its last link. */
static void lost_last_link(const struct stat *before) {
  if (!S_ISREG(before->st_mode) || before->st_nlink > 1) return;
  struct inode *in = inode_find(before->st_dev, before->st_ino);
  if (in == NULL) return;
  in->unlinked = 1;
  inode_maybe_free(in);
}

static void with_buffered_size(struct stat *st) {
  if (!S_ISREG(st->st_mode)) return;
  struct inode *in = inode_find(st->st_dev, st->st_ino);
  if (in == NULL) return;
  off_t end = inode_end(in);
  if (end > st->st_size) {
    st->st_size = end;
    blkcnt_t blocks = (end + 511) / 512;
    if (blocks > st->st_blocks) st->st_blocks = blocks;
  }
}

/* ---- operations ----------------------------------------------------------------------------------- */

static void *lfs_init(struct fuse_conn_info *conn, struct fuse_config *cfg) {
  (void)conn;
  cfg->use_ino = 1;
  cfg->hard_remove = 1;   /* no .fuse_hidden files: unlinked-open files are tracked by inode */
  cfg->nullpath_ok = 1;
  cfg->direct_io = 1;     /* no kernel page cache: a power loss is visible to every reader */
  cfg->kernel_cache = 0;
  cfg->auto_cache = 0;
  cfg->entry_timeout = 0;
  cfg->negative_timeout = 0;
  cfg->attr_timeout = 0;  /* sizes change under the kernel at a power loss */
  printf("lossyfs: mounted %s\n", g_mountpoint);
  fflush(stdout);
  return NULL;
}

static int lfs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi) {
  int r = fi != NULL ? fstat(H(fi)->fd, st) : fstatat(g_root, rel(path), st, AT_SYMLINK_NOFOLLOW);
  if (r < 0) return -errno;
  pthread_mutex_lock(&g_lock);
  with_buffered_size(st);
  pthread_mutex_unlock(&g_lock);
  return 0;
}

static int lfs_access(const char *path, int mask) {
  return faccessat(g_root, rel(path), mask, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

static int lfs_readlink(const char *path, char *buf, size_t size) {
  ssize_t n = readlinkat(g_root, rel(path), buf, size - 1);
  if (n < 0) return -errno;
  buf[n] = '\0';
  return 0;
}

static int lfs_mknod(const char *path, mode_t mode, dev_t rdev) {
  return mknodat(g_root, rel(path), mode, rdev) < 0 ? -errno : 0;
}

static int lfs_mkdir(const char *path, mode_t mode) {
  return mkdirat(g_root, rel(path), mode) < 0 ? -errno : 0;
}

static int lfs_unlink(const char *path) {
  struct stat before;
  pthread_mutex_lock(&g_lock);
  int r = fstatat(g_root, rel(path), &before, AT_SYMLINK_NOFOLLOW);
  if (r == 0) r = unlinkat(g_root, rel(path), 0);
  if (r == 0) lost_last_link(&before);
  int err = r < 0 ? -errno : 0;
  pthread_mutex_unlock(&g_lock);
  return err;
}

static int lfs_rmdir(const char *path) {
  return unlinkat(g_root, rel(path), AT_REMOVEDIR) < 0 ? -errno : 0;
}

static int lfs_symlink(const char *target, const char *path) {
  return symlinkat(target, g_root, rel(path)) < 0 ? -errno : 0;
}

static int lfs_rename(const char *from, const char *to, unsigned int flags) {
  struct stat src, victim;
  pthread_mutex_lock(&g_lock);
  int have_src = fstatat(g_root, rel(from), &src, AT_SYMLINK_NOFOLLOW) == 0;
  int have_victim = !(flags & RENAME_EXCHANGE) && fstatat(g_root, rel(to), &victim, AT_SYMLINK_NOFOLLOW) == 0;
  int r = renameat2(g_root, rel(from), g_root, rel(to), flags);
  int err = r < 0 ? -errno : 0;
  /* Renaming a file over another link of the same inode removes nothing. */
  if (r == 0 && have_victim && !(have_src && src.st_dev == victim.st_dev && src.st_ino == victim.st_ino)) lost_last_link(&victim);
  pthread_mutex_unlock(&g_lock);
  return err;
}

static int lfs_link(const char *from, const char *to) {
  return linkat(g_root, rel(from), g_root, rel(to), 0) < 0 ? -errno : 0;
}

static int lfs_chmod(const char *path, mode_t mode, struct fuse_file_info *fi) {
  int r = fi != NULL ? fchmod(H(fi)->fd, mode) : fchmodat(g_root, rel(path), mode, 0);
  return r < 0 ? -errno : 0;
}

static int lfs_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi) {
  int r = fi != NULL ? fchown(H(fi)->fd, uid, gid) : fchownat(g_root, rel(path), uid, gid, AT_SYMLINK_NOFOLLOW);
  return r < 0 ? -errno : 0;
}

/** truncate/ftruncate: a durability point — buffered data goes to the backing file first. */
static int lfs_truncate(const char *path, off_t size, struct fuse_file_info *fi) {
  int fd = fi != NULL ? H(fi)->fd : openat(g_root, rel(path), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  pthread_mutex_lock(&g_lock);
  struct stat st;
  int err = 0;
  if (fstat(fd, &st) < 0) err = -errno;
  struct inode *in = err == 0 ? inode_find(st.st_dev, st.st_ino) : NULL;
  if (in != NULL) err = inode_writeback(in);
  if (err == 0 && ftruncate(fd, size) < 0) err = -errno;
  if (in != NULL) inode_maybe_free(in);
  pthread_mutex_unlock(&g_lock);
  if (fi == NULL) close(fd);
  return err;
}

static int lfs_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi) {
  int r = fi != NULL ? futimens(H(fi)->fd, tv) : utimensat(g_root, rel(path), tv, AT_SYMLINK_NOFOLLOW);
  return r < 0 ? -errno : 0;
}

/** open/create: the backing fd is writable whenever the handle is (O_APPEND is left to the
 * kernel, which passes the append offset; O_DIRECT is dropped as buffers are not aligned). */
static int open_common(const char *path, mode_t mode, struct fuse_file_info *fi, int creating) {
  int flags = fi->flags & ~(O_APPEND | O_DIRECT | O_NOFOLLOW);
  flags |= O_CLOEXEC;
  if ((flags & O_ACCMODE) == O_WRONLY) flags = (flags & ~O_ACCMODE) | O_RDWR;
  struct handle *h = calloc(1, sizeof *h);
  if (h == NULL) return -ENOMEM;
  h->sync = (fi->flags & (O_SYNC | O_DSYNC)) != 0;
  pthread_mutex_lock(&g_lock);
  int fd = creating ? openat(g_root, rel(path), flags | O_CREAT, mode) : openat(g_root, rel(path), flags);
  if (fd < 0 && errno == EACCES && (fi->flags & O_ACCMODE) == O_WRONLY) {
    /* Not readable: fall back to the mode asked for. */
    flags = (flags & ~O_ACCMODE) | O_WRONLY;
    fd = creating ? openat(g_root, rel(path), flags | O_CREAT, mode) : openat(g_root, rel(path), flags);
  }
  int err = fd < 0 ? -errno : 0;
  struct stat st;
  if (err == 0 && fstat(fd, &st) < 0) err = -errno;
  struct inode *in = NULL;
  if (err == 0 && (in = inode_get(st.st_dev, st.st_ino)) == NULL) err = -ENOMEM;
  if (err == 0) {
    /* O_TRUNC truncated the backing file: buffered data of the inode is gone with it. */
    if (fi->flags & O_TRUNC) inode_discard(in);
    in->handles++;
    h->fd = fd;
    h->in = in;
    fi->fh = (uint64_t)(uintptr_t)h;
  }
  pthread_mutex_unlock(&g_lock);
  if (err != 0) {
    if (fd >= 0) close(fd);
    free(h);
  }
  return err;
}

static int lfs_open(const char *path, struct fuse_file_info *fi) {
  return open_common(path, 0, fi, 0);
}

static int lfs_create(const char *path, mode_t mode, struct fuse_file_info *fi) {
  return open_common(path, mode, fi, 1);
}

static int lfs_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
  (void)path;
  struct handle *h = H(fi);
  pthread_mutex_lock(&g_lock);
  size_t got = 0;
  int err = 0;
  while (got < size) {
    ssize_t n = pread(h->fd, buf + got, size - got, off + (off_t)got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      err = -errno;
      break;
    }
    if (n == 0) break;
    got += (size_t)n;
  }
  struct inode *in = h->in;
  if (err == 0 && in->n_ext > 0) {
    /* Overlay: bytes past the backing end up to the buffered end read as zeros unless buffered. */
    off_t end = inode_end(in);
    size_t want = end <= off ? 0 : (size_t)(end - off) < size ? (size_t)(end - off) : size;
    if (want > got) {
      memset(buf + got, 0, want - got);
      got = want;
    }
    off_t rb = off + (off_t)size;
    for (int i = 0; i < in->n_ext; i++) {
      const struct extent *e = &in->ext[i];
      off_t ea = e->off, eb = e->off + (off_t)e->len;
      if (eb <= off) continue;
      if (ea >= rb) break;
      off_t s = ea > off ? ea : off, t = eb < rb ? eb : rb;
      memcpy(buf + (s - off), e->data + (s - ea), (size_t)(t - s));
    }
  }
  pthread_mutex_unlock(&g_lock);
  return err < 0 ? err : (int)got;
}

static int lfs_write(const char *path, const char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
  (void)path;
  struct handle *h = H(fi);
  struct inode *in = h->in;
  pthread_mutex_lock(&g_lock);
  int err = 0;
  if (in->wfd < 0 && (in->wfd = fcntl(h->fd, F_DUPFD_CLOEXEC, 0)) < 0) err = -errno;
  if (err == 0) err = inode_buffer(in, buf, size, off);
  if (err == 0 && h->sync) err = inode_writeback(in);
  if (err == 0) enforce_bound(); /* may write this very inode back */
  pthread_mutex_unlock(&g_lock);
  if (err == 0 && h->sync && fdatasync(h->fd) < 0) err = -errno;
  return err < 0 ? err : (int)size;
}

static int lfs_statfs(const char *path, struct statvfs *st) {
  (void)path;
  return fstatvfs(g_root, st) < 0 ? -errno : 0;
}

/** close(): writes nothing, like a page cache. */
static int lfs_flush(const char *path, struct fuse_file_info *fi) {
  (void)path;
  (void)fi;
  return 0;
}

static int lfs_release(const char *path, struct fuse_file_info *fi) {
  (void)path;
  struct handle *h = H(fi);
  pthread_mutex_lock(&g_lock);
  h->in->handles--;
  inode_maybe_free(h->in);
  pthread_mutex_unlock(&g_lock);
  close(h->fd);
  free(h);
  return 0;
}

static int lfs_fsync(const char *path, int datasync, struct fuse_file_info *fi) {
  (void)path;
  struct handle *h = H(fi);
  pthread_mutex_lock(&g_lock);
  int err = inode_writeback(h->in);
  pthread_mutex_unlock(&g_lock);
  if (err < 0) return err;
  /* The data is in the backing file now (power-loss proof in this model); make it durable on the
   * real disk too. Outside the lock: it can take long and needs no consistency with buffers. */
  int fd = h->in->wfd >= 0 ? h->in->wfd : h->fd;
  int r = datasync ? fdatasync(fd) : fsync(fd);
  return r < 0 ? -errno : 0;
}

static int lfs_fallocate(const char *path, int mode, off_t off, off_t len, struct fuse_file_info *fi) {
  (void)path;
  struct handle *h = H(fi);
  int err = 0;
  pthread_mutex_lock(&g_lock);
  /* Modes that change data (punch, zero, collapse, insert) are durability points. */
  if ((mode & ~FALLOC_FL_KEEP_SIZE) != 0) err = inode_writeback(h->in);
  if (err == 0 && fallocate(h->fd, mode, off, len) < 0) err = -errno;
  pthread_mutex_unlock(&g_lock);
  return err;
}

static int lfs_opendir(const char *path, struct fuse_file_info *fi) {
  int fd = openat(g_root, rel(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -errno;
  DIR *d = fdopendir(fd);
  if (d == NULL) {
    int e = errno;
    close(fd);
    return -e;
  }
  fi->fh = (uint64_t)(uintptr_t)d;
  return 0;
}

static int lfs_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off, struct fuse_file_info *fi, enum fuse_readdir_flags flags) {
  (void)path;
  (void)off;
  (void)flags;
  DIR *d = (DIR *)(uintptr_t)fi->fh;
  /* Offset-less listing: libfuse keeps the whole listing and serves the kernel from it. */
  rewinddir(d);
  struct dirent *de;
  errno = 0;
  while ((de = readdir(d)) != NULL) {
    struct stat st;
    memset(&st, 0, sizeof st);
    st.st_ino = de->d_ino;
    st.st_mode = (mode_t)DTTOIF(de->d_type);
    if (fill(buf, de->d_name, &st, 0, 0)) break;
  }
  return errno != 0 ? -errno : 0;
}

static int lfs_releasedir(const char *path, struct fuse_file_info *fi) {
  (void)path;
  closedir((DIR *)(uintptr_t)fi->fh);
  return 0;
}

static int lfs_fsyncdir(const char *path, int datasync, struct fuse_file_info *fi) {
  (void)path;
  int fd = dirfd((DIR *)(uintptr_t)fi->fh);
  return (datasync ? fdatasync(fd) : fsync(fd)) < 0 ? -errno : 0;
}

static const struct fuse_operations lfs_ops = {
    .init = lfs_init,
    .getattr = lfs_getattr,
    .access = lfs_access,
    .readlink = lfs_readlink,
    .mknod = lfs_mknod,
    .mkdir = lfs_mkdir,
    .unlink = lfs_unlink,
    .rmdir = lfs_rmdir,
    .symlink = lfs_symlink,
    .rename = lfs_rename,
    .link = lfs_link,
    .chmod = lfs_chmod,
    .chown = lfs_chown,
    .truncate = lfs_truncate,
    .utimens = lfs_utimens,
    .open = lfs_open,
    .create = lfs_create,
    .read = lfs_read,
    .write = lfs_write,
    .statfs = lfs_statfs,
    .flush = lfs_flush,
    .release = lfs_release,
    .fsync = lfs_fsync,
    .fallocate = lfs_fallocate,
    .opendir = lfs_opendir,
    .readdir = lfs_readdir,
    .releasedir = lfs_releasedir,
    .fsyncdir = lfs_fsyncdir,
};

/* ---- power loss ------------------------------------------------------------------------------------ */

/** Takes SIGUSR1 (blocked everywhere) with sigwait and drops every buffered write. */
static void *power_loss_thread(void *arg) {
  (void)arg;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  for (;;) {
    int sig;
    if (sigwait(&set, &sig) != 0) continue;
    pthread_mutex_lock(&g_lock);
    size_t bytes = 0, files = 0;
    for (int b = 0; b < LOSSYFS_INODE_BUCKETS; b++) {
      for (struct inode *in = g_table[b], *next; in != NULL; in = next) {
        next = in->next;
        if (in->buffered == 0) continue;
        bytes += in->buffered;
        files++;
        inode_discard(in);
        inode_maybe_free(in);
      }
    }
    pthread_mutex_unlock(&g_lock);
    printf("lossyfs: dropped %zu unsynced bytes of %zu files\n", bytes, files);
    fflush(stdout);
  }
  return NULL;
}

/* ---- main ------------------------------------------------------------------------------------------- */

struct options {
  size_t max_buffered;
  const char *backing;
  const char *mountpoint;
};

static const struct fuse_opt lfs_opts[] = {
    {"max_buffered=%zu", offsetof(struct options, max_buffered), 0},
    FUSE_OPT_END,
};

static int positional(void *data, const char *arg, int key, struct fuse_args *out) {
  (void)out;
  struct options *o = data;
  if (key != FUSE_OPT_KEY_NONOPT) return 1; /* options (-d, -o ...) go to libfuse */
  if (o->backing == NULL) o->backing = arg;
  else if (o->mountpoint == NULL) o->mountpoint = arg;
  else return -1; /* a third positional argument */
  return 0;
}

/** Exit codes (besides 0). */
#define LOSSYFS_EXIT_USAGE 2
#define LOSSYFS_EXIT_SETUP 3
#define LOSSYFS_EXIT_LOOP 4

int main(int argc, char *argv[]) {
  struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
  struct options o = {.max_buffered = LOSSYFS_MAX_BUFFERED_DEFAULT, .backing = NULL, .mountpoint = NULL};
  if (fuse_opt_parse(&args, &o, lfs_opts, positional) < 0 || o.backing == NULL || o.mountpoint == NULL) {
    fprintf(stderr, "usage: lossyfs [-d] [-o max_buffered=BYTES] [-o fuse-option...] <backing-dir> <mountpoint>\n");
    return LOSSYFS_EXIT_USAGE;
  }
  g_max_buffered = o.max_buffered;
  g_mountpoint = o.mountpoint;
  g_root = open(o.backing, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (g_root < 0) {
    fprintf(stderr, "lossyfs: cannot open backing dir %s: %s\n", o.backing, strerror(errno));
    return LOSSYFS_EXIT_USAGE;
  }
  /* A name that `mount` shows: "lossyfs on <mountpoint> type fuse.lossyfs". */
  fuse_opt_add_arg(&args, "-ofsname=lossyfs,subtype=lossyfs");
  /* SIGUSR1 is blocked in every thread (libfuse's threads inherit the mask) and taken by one. */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  pthread_t t;
  if (pthread_create(&t, NULL, power_loss_thread, NULL) != 0) {
    fprintf(stderr, "lossyfs: cannot start the power-loss thread\n");
    return LOSSYFS_EXIT_SETUP;
  }
  pthread_detach(t);
  umask(0); /* the kernel already applied the caller's umask to every mode */

  /* fuse_main's steps, spelled out, so a stop by signal exits 0 (fuse_main returns 8). Runs in
   * the foreground: there is no daemonizing step. */
  struct fuse *f = fuse_new(&args, &lfs_ops, sizeof lfs_ops, NULL);
  if (f == NULL) return LOSSYFS_EXIT_USAGE;
  int rc = LOSSYFS_EXIT_SETUP;
  if (fuse_mount(f, o.mountpoint) != 0) goto destroy;
  struct fuse_session *se = fuse_get_session(f);
  if (fuse_set_signal_handlers(se) != 0) goto unmount;
  /* Multi-threaded: RocksDB does I/O from several threads. Returns the signal number when
   * SIGTERM/SIGINT/SIGHUP ended it, 0 when unmounted from outside. */
  int r = fuse_loop_mt(f, 0);
  rc = r == 0 || r == SIGTERM || r == SIGINT || r == SIGHUP ? 0 : LOSSYFS_EXIT_LOOP;
  if (rc != 0) fprintf(stderr, "lossyfs: the FUSE loop failed (%d)\n", r);
  fuse_remove_signal_handlers(se);
unmount:
  fuse_unmount(f);
destroy:
  fuse_destroy(f);
  fuse_opt_free_args(&args);
  return rc;
}
