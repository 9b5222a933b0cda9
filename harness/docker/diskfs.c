// faultline-diskfs: the disk the `disk` fault package puts under a node's data directory. A small FUSE
// file system (libfuse3, high-level API) that behaves like a disk with a volatile write cache, as a
// power loss sees it: every change (file contents, sizes, directory entries) lives only in this
// process's memory until it is made durable, exactly as POSIX promises and no further:
//
//   fsync/fdatasync(file)  the file's written ranges and its size reach the backing directory
//   fsync(directory)       the directory's entries (create, unlink, rename, mkdir) reach it
//
// Nothing else is ever persisted: a new file whose data was fsynced but whose directory was not is
// gone after a crash, and a renamed file is back under its old name. The crash is simply the death of
// this process (SIGKILL of the node's container kills it with the service): the mount goes away with
// its memory, and the next mount loads what was durable. lazyfs's "clear cache" is the reference;
// this is a much smaller design (whole files in memory, one lock), enough for a node's log.
//
// The backing directory holds i/<ino> (the durable bytes of each file inode) and `dirs` (the durable
// entries of every directory, one "<dir> <child> <f|d> <name>" line each, replaced atomically by
// rename: the backing file system is the host's, which survives the death of this process).
//
// Faults come through a control socket (`faultline-diskfs ctl SOCKET "set enospc=1"`):
//   enospc=1          writes that grow a file, creates and mkdirs fail with ENOSPC (a full disk)
//   eio_write=1       every write fails with EIO
//   eio_fsync=1       every fsync fails with EIO, and, as Linux does after a failed writeback, the
//                     ranges it should have written are marked clean without reaching the disk: a retried
//                     fsync then succeeds while that data is lost at the next crash
//   delay_fsync_ms=N  every fsync waits N ms first; delay_write_ms=N: every write does
//   clear             all of the above off; status: print the state; crash: exit at once (tests)
#define _GNU_SOURCE
#define FUSE_USE_VERSION 31
#include <fuse.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif

struct range { size_t from, to; };
struct inode;
struct dent { char *name; struct inode *node; };

struct inode {
  uint64_t ino;
  int dir;
  int nlink;   // entries naming it in the current (volatile) view
  int opens;   // open handles
  int durable_refs; // entries naming it in the durable view
  // a file: its current bytes, and the ranges written since the last successful fsync
  char *data;
  size_t size, cap;
  struct range *dirty;
  size_t ndirty, capdirty;
  int size_dirty; // the size changed (truncate, extend) since the last fsync
  // a directory: current and durable entries
  struct dent *ents;
  size_t nents, capents;
  struct dent *dents;
  size_t ndents;
  struct timespec mtime;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char backing[PATH_MAX];
static char sockpath[PATH_MAX];
static struct inode **inodes;
static size_t ninodes, capinodes;
static uint64_t next_ino = 2;
static struct inode *root;

static struct {
  int enospc, eio_write, eio_fsync;
  long delay_fsync_ms, delay_write_ms;
  unsigned long fsyncs, fsyncdirs, failed_fsyncs, failed_writes, enospc_errors, lost_bytes;
} st;

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "faultline-diskfs: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(1);
}

static void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q) die("out of memory");
  return q;
}

static struct inode *new_inode(uint64_t ino, int dir) {
  struct inode *n = calloc(1, sizeof *n);
  if (!n) die("out of memory");
  n->ino = ino;
  n->dir = dir;
  clock_gettime(CLOCK_REALTIME, &n->mtime);
  if (ninodes == capinodes) {
    capinodes = capinodes ? capinodes * 2 : 64;
    inodes = xrealloc(inodes, capinodes * sizeof *inodes);
  }
  inodes[ninodes++] = n;
  if (ino >= next_ino) next_ino = ino + 1;
  return n;
}

static struct inode *find_inode(uint64_t ino) {
  for (size_t i = 0; i < ninodes; i++)
    if (inodes[i]->ino == ino) return inodes[i];
  return NULL;
}

static void mark_dirty(struct inode *n, size_t from, size_t to) {
  if (from >= to) return;
  // Merge with every overlapping or touching range; appends keep this list at one entry.
  size_t w = 0;
  for (size_t i = 0; i < n->ndirty; i++) {
    struct range r = n->dirty[i];
    if (r.to < from || r.from > to) n->dirty[w++] = r;
    else {
      if (r.from < from) from = r.from;
      if (r.to > to) to = r.to;
    }
  }
  n->ndirty = w;
  if (n->ndirty == n->capdirty) {
    n->capdirty = n->capdirty ? n->capdirty * 2 : 4;
    n->dirty = xrealloc(n->dirty, n->capdirty * sizeof *n->dirty);
  }
  n->dirty[n->ndirty++] = (struct range){ from, to };
}

static size_t dirty_bytes(void) {
  size_t total = 0;
  for (size_t i = 0; i < ninodes; i++)
    for (size_t j = 0; j < inodes[i]->ndirty; j++) total += inodes[i]->dirty[j].to - inodes[i]->dirty[j].from;
  return total;
}

static void set_size(struct inode *n, size_t size) {
  if (size > n->cap) {
    size_t cap = n->cap ? n->cap : 4096;
    while (cap < size) cap *= 2;
    n->data = xrealloc(n->data, cap);
    n->cap = cap;
  }
  if (size > n->size) memset(n->data + n->size, 0, size - n->size);
  if (size != n->size) n->size_dirty = 1;
  n->size = size;
  // Ranges beyond the new end have nothing left to write.
  for (size_t i = 0; i < n->ndirty; i++)
    if (n->dirty[i].to > size) n->dirty[i].to = size;
}

// --- path resolution over the current view --------------------------------------------------------

static struct dent *dir_find(struct inode *d, const char *name, size_t len) {
  for (size_t i = 0; i < d->nents; i++)
    if (strlen(d->ents[i].name) == len && memcmp(d->ents[i].name, name, len) == 0) return &d->ents[i];
  return NULL;
}

static struct inode *resolve(const char *path) {
  struct inode *cur = root;
  const char *p = path;
  while (*p == '/') p++;
  while (*p) {
    const char *end = strchr(p, '/');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (!cur->dir) return NULL;
    struct dent *e = dir_find(cur, p, len);
    if (!e) return NULL;
    cur = e->node;
    p += len;
    while (*p == '/') p++;
  }
  return cur;
}

// The parent directory of path and a pointer to its last component.
static struct inode *resolve_parent(const char *path, const char **name) {
  const char *slash = strrchr(path, '/');
  if (!slash) return NULL;
  *name = slash + 1;
  if (slash == path) return root;
  char buf[PATH_MAX];
  size_t len = (size_t)(slash - path);
  if (len >= sizeof buf) return NULL;
  memcpy(buf, path, len);
  buf[len] = 0;
  struct inode *d = resolve(buf);
  return d && d->dir ? d : NULL;
}

static void dir_add(struct inode *d, const char *name, struct inode *n) {
  if (d->nents == d->capents) {
    d->capents = d->capents ? d->capents * 2 : 16;
    d->ents = xrealloc(d->ents, d->capents * sizeof *d->ents);
  }
  d->ents[d->nents++] = (struct dent){ strdup(name), n };
  n->nlink++;
  clock_gettime(CLOCK_REALTIME, &d->mtime);
}

static void release_data_if_gone(struct inode *n) {
  // Unreachable now and later: its bytes are not needed in memory (the durable copy stays on the backing
  // until no durable entry names it).
  if (n->nlink == 0 && n->opens == 0 && !n->dir) {
    free(n->data);
    n->data = NULL;
    n->size = n->cap = 0;
    n->ndirty = 0;
  }
}

static void dir_remove(struct inode *d, struct dent *e) {
  struct inode *n = e->node;
  free(e->name);
  *e = d->ents[--d->nents];
  n->nlink--;
  clock_gettime(CLOCK_REALTIME, &d->mtime);
  release_data_if_gone(n);
}

// --- the durable view ----------------------------------------------------------------------------

static void ino_path(char *buf, size_t len, uint64_t ino) { snprintf(buf, len, "%s/i/%llu", backing, (unsigned long long)ino); }

// Writes the durable entries of every directory to dirs.tmp and renames it over dirs (atomic for the
// death of this process), then removes the backing files of inodes nothing can reach any more.
static int write_dirs(void) {
  char tmp[PATH_MAX + 16], final[PATH_MAX + 16];
  snprintf(tmp, sizeof tmp, "%s/dirs.tmp", backing);
  snprintf(final, sizeof final, "%s/dirs", backing);
  FILE *f = fopen(tmp, "w");
  if (!f) return -errno;
  fprintf(f, "next %llu\n", (unsigned long long)next_ino);
  for (size_t i = 0; i < ninodes; i++) {
    struct inode *d = inodes[i];
    if (!d->dir) continue;
    for (size_t j = 0; j < d->ndents; j++)
      fprintf(f, "%llu %llu %c %s\n", (unsigned long long)d->ino, (unsigned long long)d->dents[j].node->ino, d->dents[j].node->dir ? 'd' : 'f', d->dents[j].name);
  }
  if (fclose(f) != 0) return -errno;
  if (rename(tmp, final) != 0) return -errno;
  for (size_t i = 0; i < ninodes; i++) {
    struct inode *n = inodes[i];
    if (!n->dir && n->durable_refs == 0 && n->nlink == 0 && n->opens == 0) {
      char p[PATH_MAX + 32];
      ino_path(p, sizeof p, n->ino);
      unlink(p);
    }
  }
  return 0;
}

// fsync of a file: its dirty ranges and size reach i/<ino>. With eio_fsync the ranges are dropped
// instead (Linux marks pages clean after a failed writeback), so the data is lost at the next crash.
static int sync_file(struct inode *n) {
  if (st.eio_fsync) {
    for (size_t i = 0; i < n->ndirty; i++) st.lost_bytes += n->dirty[i].to - n->dirty[i].from;
    n->ndirty = 0;
    n->size_dirty = 0;
    st.failed_fsyncs++;
    return -EIO;
  }
  if (n->ndirty == 0 && !n->size_dirty) return 0;
  char p[PATH_MAX + 32];
  ino_path(p, sizeof p, n->ino);
  int fd = open(p, O_WRONLY | O_CREAT, 0644);
  if (fd < 0) return -errno;
  for (size_t i = 0; i < n->ndirty; i++) {
    size_t off = n->dirty[i].from;
    while (off < n->dirty[i].to) {
      ssize_t w = pwrite(fd, n->data + off, n->dirty[i].to - off, (off_t)off);
      if (w < 0) {
        int e = errno;
        close(fd);
        return -e;
      }
      off += (size_t)w;
    }
  }
  if (ftruncate(fd, (off_t)n->size) != 0) {
    int e = errno;
    close(fd);
    return -e;
  }
  close(fd);
  n->ndirty = 0;
  n->size_dirty = 0;
  st.fsyncs++;
  return 0;
}

// fsync of a directory: its current entries become its durable ones.
static int sync_dir(struct inode *d) {
  if (st.eio_fsync) {
    st.failed_fsyncs++;
    return -EIO;
  }
  for (size_t j = 0; j < d->ndents; j++) {
    d->dents[j].node->durable_refs--;
    free(d->dents[j].name);
  }
  free(d->dents);
  d->dents = xrealloc(NULL, d->nents * sizeof *d->dents);
  d->ndents = d->nents;
  for (size_t j = 0; j < d->nents; j++) {
    d->dents[j] = (struct dent){ strdup(d->ents[j].name), d->ents[j].node };
    struct inode *c = d->ents[j].node;
    c->durable_refs++;
    if (!c->dir) {
      // A file named durably has at least its durable bytes (none yet: empty), as on a real disk.
      char p[PATH_MAX + 32];
      ino_path(p, sizeof p, c->ino);
      int fd = open(p, O_WRONLY | O_CREAT, 0644);
      if (fd >= 0) close(fd);
    }
  }
  st.fsyncdirs++;
  return write_dirs();
}

// Loads the durable view at mount: it is also the current view of a freshly mounted disk.
static void load(void) {
  char p[PATH_MAX + 32];
  snprintf(p, sizeof p, "%s/i", backing);
  if (mkdir(backing, 0755) != 0 && errno != EEXIST) die("cannot create %s: %s", backing, strerror(errno));
  if (mkdir(p, 0755) != 0 && errno != EEXIST) die("cannot create %s: %s", p, strerror(errno));
  root = new_inode(1, 1);
  root->nlink = 1;
  snprintf(p, sizeof p, "%s/dirs", backing);
  FILE *f = fopen(p, "r");
  if (!f) {
    if (errno != ENOENT) die("cannot read %s: %s", p, strerror(errno));
    return;
  }
  char line[PATH_MAX + 64];
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\n")] = 0;
    unsigned long long a, b;
    char kind;
    int used = 0;
    if (sscanf(line, "next %llu", &a) == 1) {
      if (a > next_ino) next_ino = a;
      continue;
    }
    if (sscanf(line, "%llu %llu %c %n", &a, &b, &kind, &used) < 3 || used == 0) die("%s: bad line \"%s\"", p, line);
    struct inode *d = find_inode(a);
    if (!d) d = new_inode(a, 1);
    struct inode *c = find_inode(b);
    if (!c) c = new_inode(b, kind == 'd');
    dir_add(d, line + used, c);
  }
  fclose(f);
  for (size_t i = 0; i < ninodes; i++) {
    struct inode *d = inodes[i];
    if (!d->dir) continue;
    d->dents = xrealloc(NULL, d->nents * sizeof *d->dents);
    d->ndents = d->nents;
    for (size_t j = 0; j < d->nents; j++) {
      d->dents[j] = (struct dent){ strdup(d->ents[j].name), d->ents[j].node };
      d->ents[j].node->durable_refs++;
    }
  }
  for (size_t i = 0; i < ninodes; i++) {
    struct inode *n = inodes[i];
    if (n->dir) continue;
    ino_path(p, sizeof p, n->ino);
    int fd = open(p, O_RDONLY);
    if (fd < 0) continue; // named but never written: empty
    struct stat sb;
    if (fstat(fd, &sb) == 0 && sb.st_size > 0) {
      set_size(n, (size_t)sb.st_size);
      size_t off = 0;
      while (off < n->size) {
        ssize_t r = pread(fd, n->data + off, n->size - off, (off_t)off);
        if (r <= 0) break;
        off += (size_t)r;
      }
    }
    n->size_dirty = 0;
    close(fd);
  }
  // Backing files that no durable entry names are leftovers of files that were never made durable.
  snprintf(p, sizeof p, "%s/i", backing);
  DIR *dir = opendir(p);
  if (dir) {
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
      if (e->d_name[0] == '.') continue;
      if (!find_inode(strtoull(e->d_name, NULL, 10))) unlinkat(dirfd(dir), e->d_name, 0);
    }
    closedir(dir);
  }
  write_dirs();
}

// --- FUSE operations ---------------------------------------------------------------------------

static void fill_stat(struct inode *n, struct stat *sb) {
  memset(sb, 0, sizeof *sb);
  sb->st_ino = n->ino;
  sb->st_mode = n->dir ? (S_IFDIR | 0755) : (S_IFREG | 0644);
  sb->st_nlink = n->dir ? 2 : (n->nlink > 0 ? n->nlink : 1);
  sb->st_size = n->dir ? 4096 : (off_t)n->size;
  sb->st_blocks = (sb->st_size + 511) / 512;
  sb->st_blksize = 4096;
  sb->st_mtim = sb->st_ctim = sb->st_atim = n->mtime;
}

static struct inode *node_of(const char *path, struct fuse_file_info *fi) {
  if (fi && fi->fh) return (struct inode *)(uintptr_t)fi->fh;
  return path ? resolve(path) : NULL;
}

static int fs_getattr(const char *path, struct stat *sb, struct fuse_file_info *fi) {
  pthread_mutex_lock(&lock);
  struct inode *n = node_of(path, fi);
  if (n) fill_stat(n, sb);
  pthread_mutex_unlock(&lock);
  return n ? 0 : -ENOENT;
}

static int fs_opendir(const char *path, struct fuse_file_info *fi) {
  pthread_mutex_lock(&lock);
  struct inode *n = resolve(path);
  int r = !n ? -ENOENT : !n->dir ? -ENOTDIR : 0;
  if (r == 0) fi->fh = (uintptr_t)n;
  pthread_mutex_unlock(&lock);
  return r;
}

static int fs_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off, struct fuse_file_info *fi, enum fuse_readdir_flags flags) {
  (void)path;
  (void)off;
  (void)flags;
  pthread_mutex_lock(&lock);
  struct inode *d = node_of(path, fi);
  if (!d || !d->dir) {
    pthread_mutex_unlock(&lock);
    return -ENOTDIR;
  }
  fill(buf, ".", NULL, 0, 0);
  fill(buf, "..", NULL, 0, 0);
  for (size_t i = 0; i < d->nents; i++) {
    struct stat sb;
    fill_stat(d->ents[i].node, &sb);
    fill(buf, d->ents[i].name, &sb, 0, 0);
  }
  pthread_mutex_unlock(&lock);
  return 0;
}

static int fs_releasedir(const char *path, struct fuse_file_info *fi) {
  (void)path;
  (void)fi;
  return 0;
}

static int fs_fsyncdir(const char *path, int datasync, struct fuse_file_info *fi) {
  (void)datasync;
  long delay = st.delay_fsync_ms;
  if (delay > 0) usleep((useconds_t)delay * 1000);
  pthread_mutex_lock(&lock);
  struct inode *d = node_of(path, fi);
  int r = !d ? -ENOENT : !d->dir ? -ENOTDIR : sync_dir(d);
  pthread_mutex_unlock(&lock);
  return r;
}

static int make(const char *path, int dir, struct inode **out) {
  const char *name;
  struct inode *d = resolve_parent(path, &name);
  if (!d) return -ENOENT;
  if (strlen(name) > 255) return -ENAMETOOLONG;
  if (dir_find(d, name, strlen(name))) return -EEXIST;
  if (st.enospc) {
    st.enospc_errors++;
    return -ENOSPC;
  }
  struct inode *n = new_inode(next_ino, dir);
  dir_add(d, name, n);
  if (out) *out = n;
  return 0;
}

static int fs_mkdir(const char *path, mode_t mode) {
  (void)mode;
  pthread_mutex_lock(&lock);
  int r = make(path, 1, NULL);
  pthread_mutex_unlock(&lock);
  return r;
}

static int fs_create(const char *path, mode_t mode, struct fuse_file_info *fi) {
  (void)mode;
  pthread_mutex_lock(&lock);
  struct inode *n = NULL;
  int r = make(path, 0, &n);
  if (r == -EEXIST && !(fi->flags & O_EXCL)) {
    n = resolve(path);
    r = n && !n->dir ? 0 : -EISDIR;
  }
  if (r == 0) {
    n->opens++;
    fi->fh = (uintptr_t)n;
  }
  pthread_mutex_unlock(&lock);
  return r;
}

static int fs_open(const char *path, struct fuse_file_info *fi) {
  pthread_mutex_lock(&lock);
  struct inode *n = resolve(path);
  int r = !n ? -ENOENT : n->dir ? -EISDIR : 0;
  if (r == 0) {
    n->opens++;
    fi->fh = (uintptr_t)n;
  }
  pthread_mutex_unlock(&lock);
  return r;
}

static int fs_release(const char *path, struct fuse_file_info *fi) {
  (void)path;
  pthread_mutex_lock(&lock);
  struct inode *n = (struct inode *)(uintptr_t)fi->fh;
  if (n) {
    n->opens--;
    release_data_if_gone(n);
  }
  pthread_mutex_unlock(&lock);
  return 0;
}

static int fs_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
  pthread_mutex_lock(&lock);
  struct inode *n = node_of(path, fi);
  int r;
  if (!n) r = -ENOENT;
  else if ((size_t)off >= n->size) r = 0;
  else {
    size_t len = n->size - (size_t)off < size ? n->size - (size_t)off : size;
    memcpy(buf, n->data + off, len);
    r = (int)len;
  }
  pthread_mutex_unlock(&lock);
  return r;
}

static int fs_write(const char *path, const char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
  long delay = st.delay_write_ms;
  if (delay > 0) usleep((useconds_t)delay * 1000);
  pthread_mutex_lock(&lock);
  struct inode *n = node_of(path, fi);
  int r;
  if (!n) r = -ENOENT;
  else if (st.eio_write) {
    st.failed_writes++;
    r = -EIO;
  } else if (st.enospc && (size_t)off + size > n->size) {
    st.enospc_errors++;
    r = -ENOSPC;
  } else {
    if ((size_t)off + size > n->size) set_size(n, (size_t)off + size);
    memcpy(n->data + off, buf, size);
    mark_dirty(n, (size_t)off, (size_t)off + size);
    clock_gettime(CLOCK_REALTIME, &n->mtime);
    r = (int)size;
  }
  pthread_mutex_unlock(&lock);
  return r;
}

static int fs_truncate(const char *path, off_t size, struct fuse_file_info *fi) {
  pthread_mutex_lock(&lock);
  struct inode *n = node_of(path, fi);
  int r = 0;
  if (!n) r = -ENOENT;
  else if (n->dir) r = -EISDIR;
  else if (st.enospc && (size_t)size > n->size) {
    st.enospc_errors++;
    r = -ENOSPC;
  } else {
    size_t old = n->size;
    set_size(n, (size_t)size);
    if ((size_t)size > old) mark_dirty(n, old, (size_t)size);
  }
  pthread_mutex_unlock(&lock);
  return r;
}

static int fs_fsync(const char *path, int datasync, struct fuse_file_info *fi) {
  (void)datasync; // fdatasync persists data and size, which is all this disk keeps for a file
  long delay = st.delay_fsync_ms;
  if (delay > 0) usleep((useconds_t)delay * 1000);
  pthread_mutex_lock(&lock);
  struct inode *n = node_of(path, fi);
  int r = !n ? -ENOENT : n->dir ? sync_dir(n) : sync_file(n);
  pthread_mutex_unlock(&lock);
  return r;
}

static int fs_unlink(const char *path) {
  pthread_mutex_lock(&lock);
  const char *name;
  struct inode *d = resolve_parent(path, &name);
  struct dent *e = d ? dir_find(d, name, strlen(name)) : NULL;
  int r = !e ? -ENOENT : e->node->dir ? -EISDIR : 0;
  if (r == 0) dir_remove(d, e);
  pthread_mutex_unlock(&lock);
  return r;
}

static int fs_rmdir(const char *path) {
  pthread_mutex_lock(&lock);
  const char *name;
  struct inode *d = resolve_parent(path, &name);
  struct dent *e = d ? dir_find(d, name, strlen(name)) : NULL;
  int r = !e ? -ENOENT : !e->node->dir ? -ENOTDIR : e->node->nents > 0 ? -ENOTEMPTY : 0;
  if (r == 0) dir_remove(d, e);
  pthread_mutex_unlock(&lock);
  return r;
}

static int fs_rename(const char *from, const char *to, unsigned int flags) {
  if (flags & ~RENAME_NOREPLACE) return -EINVAL;
  pthread_mutex_lock(&lock);
  const char *fname, *tname;
  struct inode *fd = resolve_parent(from, &fname);
  struct inode *td = resolve_parent(to, &tname);
  struct dent *fe = fd ? dir_find(fd, fname, strlen(fname)) : NULL;
  int r = 0;
  if (!fe || !td) r = -ENOENT;
  else {
    struct inode *n = fe->node;
    struct dent *te = dir_find(td, tname, strlen(tname));
    if (te && te->node == n) r = 0;
    else if (te && (flags & RENAME_NOREPLACE)) r = -EEXIST;
    else if (te && te->node->dir && (!n->dir || te->node->nents > 0)) r = n->dir ? -ENOTEMPTY : -EISDIR;
    else if (te && !te->node->dir && n->dir) r = -ENOTDIR;
    else {
      n->nlink++; // keep it alive while its old entry goes
      if (te) dir_remove(td, te);
      fe = dir_find(fd, fname, strlen(fname));
      dir_remove(fd, fe);
      dir_add(td, tname, n);
      n->nlink--;
    }
  }
  pthread_mutex_unlock(&lock);
  return r;
}

static int fs_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi) {
  (void)tv;
  pthread_mutex_lock(&lock);
  struct inode *n = node_of(path, fi);
  if (n) clock_gettime(CLOCK_REALTIME, &n->mtime);
  pthread_mutex_unlock(&lock);
  return n ? 0 : -ENOENT;
}

static int fs_chmod(const char *path, mode_t mode, struct fuse_file_info *fi) {
  (void)mode;
  return node_of(path, fi) ? 0 : -ENOENT;
}

static int fs_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi) {
  (void)uid;
  (void)gid;
  return node_of(path, fi) ? 0 : -ENOENT;
}

static int fs_statfs(const char *path, struct statvfs *sv) {
  (void)path;
  memset(sv, 0, sizeof *sv);
  sv->f_bsize = sv->f_frsize = 4096;
  sv->f_blocks = 1 << 20;
  sv->f_bfree = sv->f_bavail = st.enospc ? 0 : 1 << 19;
  sv->f_files = 1 << 16;
  sv->f_ffree = sv->f_favail = st.enospc ? 0 : 1 << 15;
  sv->f_namemax = 255;
  return 0;
}

static int fs_flush(const char *path, struct fuse_file_info *fi) {
  (void)path;
  (void)fi;
  return 0;
}

static void *fs_init(struct fuse_conn_info *conn, struct fuse_config *cfg) {
  (void)conn;
  cfg->use_ino = 1;
  // Unlink of an open file removes it at once (no .fuse_hidden rename); handles keep their inode.
  cfg->hard_remove = 1;
  cfg->nullpath_ok = 1;
  return NULL;
}

static const struct fuse_operations ops = {
  .init = fs_init,
  .getattr = fs_getattr,
  .opendir = fs_opendir,
  .readdir = fs_readdir,
  .releasedir = fs_releasedir,
  .fsyncdir = fs_fsyncdir,
  .mkdir = fs_mkdir,
  .rmdir = fs_rmdir,
  .create = fs_create,
  .open = fs_open,
  .release = fs_release,
  .read = fs_read,
  .write = fs_write,
  .truncate = fs_truncate,
  .fsync = fs_fsync,
  .flush = fs_flush,
  .unlink = fs_unlink,
  .rename = fs_rename,
  .utimens = fs_utimens,
  .chmod = fs_chmod,
  .chown = fs_chown,
  .statfs = fs_statfs,
};

// --- the control socket ----------------------------------------------------------------------------

static void status_line(char *out, size_t len) {
  snprintf(out, len,
           "enospc=%d eio_write=%d eio_fsync=%d delay_fsync_ms=%ld delay_write_ms=%ld dirty_bytes=%zu fsyncs=%lu fsyncdirs=%lu failed_fsyncs=%lu failed_writes=%lu enospc_errors=%lu lost_bytes=%lu\n",
           st.enospc, st.eio_write, st.eio_fsync, st.delay_fsync_ms, st.delay_write_ms, dirty_bytes(), st.fsyncs, st.fsyncdirs, st.failed_fsyncs, st.failed_writes, st.enospc_errors, st.lost_bytes);
}

// One command per connection: "status", "clear", "crash" or "set key=value ...". Replies "ok <status>"
// or "error <why>".
static void handle(int c) {
  char cmd[1024];
  ssize_t n = read(c, cmd, sizeof cmd - 1);
  if (n <= 0) return;
  cmd[n] = 0;
  cmd[strcspn(cmd, "\r\n")] = 0;
  char reply[1400];
  if (strcmp(cmd, "crash") == 0) _exit(9);
  pthread_mutex_lock(&lock);
  int ok = 1;
  char why[256] = "";
  if (strcmp(cmd, "clear") == 0) {
    st.enospc = st.eio_write = st.eio_fsync = 0;
    st.delay_fsync_ms = st.delay_write_ms = 0;
  } else if (strncmp(cmd, "set ", 4) == 0) {
    char *save = NULL;
    for (char *tok = strtok_r(cmd + 4, " ", &save); tok && ok; tok = strtok_r(NULL, " ", &save)) {
      char *eq = strchr(tok, '=');
      char *end = NULL;
      long v = eq ? strtol(eq + 1, &end, 10) : -1;
      if (!eq || !end || *end || v < 0) {
        ok = 0;
        snprintf(why, sizeof why, "expected key=non-negative-integer, got \"%.100s\"", tok);
        break;
      }
      *eq = 0;
      if (strcmp(tok, "enospc") == 0) st.enospc = v != 0;
      else if (strcmp(tok, "eio_write") == 0) st.eio_write = v != 0;
      else if (strcmp(tok, "eio_fsync") == 0) st.eio_fsync = v != 0;
      else if (strcmp(tok, "delay_fsync_ms") == 0) st.delay_fsync_ms = v;
      else if (strcmp(tok, "delay_write_ms") == 0) st.delay_write_ms = v;
      else {
        ok = 0;
        snprintf(why, sizeof why, "unknown key \"%.100s\"; known: enospc, eio_write, eio_fsync, delay_fsync_ms, delay_write_ms", tok);
      }
    }
  } else if (strcmp(cmd, "status") != 0) {
    ok = 0;
    snprintf(why, sizeof why, "unknown command \"%.100s\"; expected status, clear, crash or set key=value ...", cmd);
  }
  char line[1024];
  status_line(line, sizeof line);
  pthread_mutex_unlock(&lock);
  if (ok) snprintf(reply, sizeof reply, "ok %s", line);
  else snprintf(reply, sizeof reply, "error %s\n", why);
  ssize_t ignored = write(c, reply, strlen(reply));
  (void)ignored;
}

static void *control_loop(void *arg) {
  int s = (int)(intptr_t)arg;
  for (;;) {
    int c = accept(s, NULL, NULL);
    if (c < 0) continue;
    handle(c);
    close(c);
  }
  return NULL;
}

static int control_socket(const char *path) {
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  if (strlen(path) >= sizeof addr.sun_path) die("control socket path %s is too long", path);
  strcpy(addr.sun_path, path);
  unlink(path);
  int s = socket(AF_UNIX, SOCK_STREAM, 0);
  if (s < 0 || bind(s, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(s, 8) != 0) die("cannot listen on %s: %s", path, strerror(errno));
  return s;
}

static int ctl(const char *path, const char *cmd) {
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  if (strlen(path) >= sizeof addr.sun_path) die("control socket path %s is too long", path);
  strcpy(addr.sun_path, path);
  int s = socket(AF_UNIX, SOCK_STREAM, 0);
  if (s < 0 || connect(s, (struct sockaddr *)&addr, sizeof addr) != 0) {
    fprintf(stderr, "faultline-diskfs: cannot reach the disk layer at %s: %s (is it mounted?)\n", path, strerror(errno));
    return 2;
  }
  if (write(s, cmd, strlen(cmd)) < 0) die("write to %s: %s", path, strerror(errno));
  shutdown(s, SHUT_WR);
  char buf[2048];
  size_t got = 0;
  ssize_t n;
  while (got < sizeof buf - 1 && (n = read(s, buf + got, sizeof buf - 1 - got)) > 0) got += (size_t)n;
  buf[got] = 0;
  close(s);
  fputs(buf, stdout);
  return strncmp(buf, "ok ", 3) == 0 ? 0 : 1;
}

static void usage(void) {
  fprintf(stderr,
          "usage: faultline-diskfs mount BACKING_DIR MOUNTPOINT CONTROL_SOCKET [fuse options]\n"
          "       faultline-diskfs ctl CONTROL_SOCKET \"status\" | \"clear\" | \"crash\" | \"set key=value ...\"\n");
  exit(254);
}

int main(int argc, char **argv) {
  if (argc >= 4 && strcmp(argv[1], "ctl") == 0) return ctl(argv[2], argv[3]);
  if (argc < 5 || strcmp(argv[1], "mount") != 0) usage();
  if (!realpath(argv[2], backing)) {
    if (mkdir(argv[2], 0755) != 0 || !realpath(argv[2], backing)) die("cannot use backing directory %s: %s", argv[2], strerror(errno));
  }
  snprintf(sockpath, sizeof sockpath, "%s", argv[4]);
  load();
  int s = control_socket(sockpath);
  pthread_t t;
  if (pthread_create(&t, NULL, control_loop, (void *)(intptr_t)s) != 0) die("cannot start the control thread");
  pthread_detach(t);
  // fuse_main: foreground (the entrypoint backgrounds us), multi-threaded (a delayed fsync must not
  // hold up reads), extra options passed on.
  char *fargv[64];
  int fargc = 0;
  fargv[fargc++] = argv[0];
  fargv[fargc++] = argv[3];
  fargv[fargc++] = "-f";
  fargv[fargc++] = "-o";
  fargv[fargc++] = "fsname=faultline-disk,subtype=faultline,max_threads=16";
  for (int i = 5; i < argc && fargc < 63; i++) fargv[fargc++] = argv[i];
  fargv[fargc] = NULL;
  return fuse_main(fargc, fargv, &ops, NULL);
}
