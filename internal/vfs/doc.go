// Package vfs is the filesystem seam of wail's embedded intent log and its
// offset files, in the spirit of pebble's vfs.FS and errorfs: the log does
// every file operation through an FS, so tests can inject faults and
// simulate crashes without root, tmpfs or kill -9.
//
// Three implementations:
//
//   - Default: the operating system (package os), used in production.
//   - ErrorFS: wraps an FS and fails chosen operations with chosen errors
//     (ENOSPC, EIO, ...): by operation kind, by a pattern on the file name,
//     after N matching calls, at most M times, and switched off again with
//     Clear, so a test can model "the disk filled up, then space returned".
//     A failing write can first write part of its bytes (Fault.Partial), as
//     a real short write on ENOSPC does.
//   - MemFS: an in-memory FS that models what survives a power loss. Every
//     file keeps its written bytes and its last fsync'd bytes; every
//     directory keeps its entries and its entries as of its last fsync
//     (the directory's, as an inode's: a renamed directory keeps them, one
//     made again at its old path starts empty).
//     Crash returns the FS as it would be after a reboot: each file holds
//     only what was fsync'd, and each create, rename and remove whose
//     directory was not fsync'd afterwards is undone. CrashTorn also keeps
//     a random prefix of each file's unsynced appended bytes, so that torn
//     tails appear. The FS that crashed fails every later call with
//     ErrCrashed: the process that used it is dead.
//
// An FS may also implement FilesystemSyncer (the operating system's on
// Linux >= 5.8, MemFS): one call makes every write to the whole filesystem
// durable (syncfs(2)), which the log uses for its sync rounds.
//
// The model is the POSIX contract as Linux filesystems honour it (and as
// the log assumes): fsync of a file makes its bytes durable but not its
// name; fsync of a directory makes its entries durable. It is stricter than
// ext4's data=ordered mode, which is the point.
//
// Paths are cleaned with filepath.Clean; MemFS treats relative and absolute
// paths alike (relative ones live under its root).
package vfs
