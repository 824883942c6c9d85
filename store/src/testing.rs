//! A real store in a temporary directory for unit tests that need the writer thread and the
//! read pool (`StoreHandle`), not just a connection.

use super::StoreHandle;

/// A fresh store with one patient (`p1`, number 1) and one pulse oximeter (`d1`, number 7);
/// its directory is removed when dropped.
pub struct TempStore {
    dir: std::path::PathBuf,
    pub store: StoreHandle,
}

impl TempStore {
    /// Opens the store; call it off the async worker threads (it writes through the writer).
    /// Not `Default`: it creates a directory and a database.
    #[allow(clippy::new_without_default)]
    pub fn new() -> TempStore {
        static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "vigil-test-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let store = StoreHandle::open(&dir).unwrap();
        store
            .write_blocking(|c| {
                c.execute_batch(
                    "INSERT INTO patients (num, id, name, created_at) VALUES (1, 'p1', 'P', 0);
                     INSERT INTO devices (num, id, patient_id, patient_num, kind, secret_hash, created_at)
                     VALUES (7, 'd1', 'p1', 1, 'pulse_oximeter', 'x', 0);",
                )?;
                Ok(())
            })
            .unwrap();
        TempStore { dir, store }
    }
}

impl Drop for TempStore {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
