//! The data directory: private to Vigil's user, and served by one `vigil run` at a time
//! (issue #15, findings 6 and 7).
//!
//! - [`private_umask`]: every file and directory the process creates is its owner's only
//!   (umask 077), whatever umask it was started with: the store, its WAL and SHM files (SQLite
//!   gives them the database file's mode), `.eml` files in the outbox (which hold unused
//!   "I'm handling it" links), backups.
//! - [`make_private`]: a directory is created (or, from an older version, tightened) to 0700
//!   and the files directly in it to 0600.
//! - [`ServerLock`]: an exclusive `flock(2)` on `vigil.lock`, held while the server runs. A
//!   second server on the same directory exits naming the first one's process id; the admin
//!   commands take no lock (SQLite's own locking serialises their writes).

use anyhow::Context;
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::Path;

/// Makes everything this process creates private to its user (umask 077).
pub fn private_umask() {
    // SAFETY: umask(2) only sets the process's file mode creation mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
}

/// Creates `dir` if needed and makes it 0700, and the regular files directly in it 0600 (a
/// directory written by an older version or under another umask).
pub fn make_private(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot make {} private", dir.display()))?;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_file() && meta.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("cannot make {} private", entry.path().display()))?;
        }
    }
    Ok(())
}

/// Bytes free for an unprivileged writer on the filesystem holding `path` (statvfs(3)), or
/// `None` when it cannot be asked.
pub fn free_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: a valid C string and a zeroed out-parameter of the right type.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    #[allow(clippy::unnecessary_cast)] // the field types differ between platforms
    Some(st.f_bavail as u64 * st.f_frsize as u64)
}

/// The lock file's name in the data directory.
pub const LOCK_FILE: &str = "vigil.lock";

/// Held while a server runs on a data directory; released when dropped (or when the process
/// ends, however it ends: the kernel drops `flock` locks with the descriptor).
#[derive(Debug)]
pub struct ServerLock {
    _file: File,
}

impl ServerLock {
    /// Takes the lock on `data_dir`, or says which process holds it.
    pub fn acquire(data_dir: &Path) -> anyhow::Result<ServerLock> {
        use std::os::fd::AsRawFd;
        let path = data_dir.join(LOCK_FILE);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        // SAFETY: flock(2) on a descriptor this function owns; no memory is shared.
        let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if r != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                anyhow::bail!(
                    "another vigil server (process {}) is running on the data directory {}; \
                     stop it first (admin commands work beside it)",
                    if holder.is_empty() { "unknown" } else { holder },
                    data_dir.display()
                );
            }
            return Err(err).with_context(|| format!("cannot lock {}", path.display()));
        }
        file.set_len(0)?;
        file.rewind()?;
        writeln!(file, "{}", std::process::id())?;
        file.sync_all()?;
        Ok(ServerLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;

    /// A fresh directory under the system's temp dir.
    fn build_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("vigil-datadir-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_second_lock_on_one_directory_is_refused_naming_the_holder() {
        let dir = build_dir("lock");
        let first = ServerLock::acquire(&dir).unwrap();
        let e = ServerLock::acquire(&dir).unwrap_err().to_string();
        assert!(
            e.contains(&format!("process {}", std::process::id())),
            "{e}"
        );
        drop(first);
        ServerLock::acquire(&dir).unwrap();
    }

    #[test]
    fn free_space_is_known_for_an_existing_directory() {
        assert!(free_bytes(&std::env::temp_dir()).is_some_and(|b| b > 0));
        assert_eq!(free_bytes(Path::new("/no/such/dir")), None);
    }

    #[test]
    fn an_open_directory_and_its_files_are_made_private() {
        let data = build_dir("private").join("data");
        std::fs::create_dir(&data).unwrap();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(data.join("vigil.db"), "x").unwrap();
        std::fs::set_permissions(
            data.join("vigil.db"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        make_private(&data).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&data.join("vigil.db")), 0o600);
    }
}
