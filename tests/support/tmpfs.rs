//! A size-limited directory (a tmpfs mount) for tests of a full disk. Needs root, as the test
//! command runs; a test that cannot mount one fails and says why, rather than pass untested.

use std::path::Path;
use std::process::Command;

use crate::TempDir;

/// A tmpfs of a given size, unmounted when dropped.
pub struct SmallDisk {
    dir: TempDir,
}

impl SmallDisk {
    pub fn mount(tag: &str, megabytes: u64) -> SmallDisk {
        let dir = TempDir::new(tag);
        std::fs::create_dir_all(dir.path()).expect("create the mount point");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(status.success(), "cannot mount a tmpfs (the full-disk tests need root): {status}");
        SmallDisk { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Changes the size: space "returns" (or goes) as on a real disk.
    pub fn resize(&self, megabytes: u64) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={megabytes}m")])
            .arg(self.dir.path())
            .status()
            .expect("run mount");
        assert!(status.success(), "cannot resize the tmpfs: {status}");
    }

    /// Bytes free on it.
    pub fn free(&self) -> u64 {
        let out = Command::new("df").args(["--output=avail", "-B1"]).arg(self.path()).output().expect("run df");
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines().nth(1).and_then(|l| l.trim().parse().ok()).expect("df's answer")
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazily: a server still holding files must not make the unmount (and the test) fail.
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}
