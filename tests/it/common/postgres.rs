//! A throwaway PostgreSQL server for tests: Debian's `postgresql` binaries, a fresh
//! cluster (`initdb`) in a temporary directory, listening on a Unix socket only (no
//! TCP port at all), stopped and deleted when dropped.
//!
//! PostgreSQL refuses to run as root, and CI runs the tests as root, so the server then
//! runs as `nobody` (through `setpriv`) in a directory handed to it. With `CI` set, a
//! server that cannot start fails the test; elsewhere `start` returns `None` and the
//! test says it skipped.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    /// `nobody`'s uid and gid when the tests run as root.
    drop_to: Option<(u32, u32)>,
    child: Option<Child>,
}

/// Where Debian installs the server binaries (`/usr/lib/postgresql/<major>/bin`), the
/// newest major first.
fn find_bin() -> Option<PathBuf> {
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((major, bin))
        })
        .collect();
    dirs.sort();
    dirs.pop().map(|(_, b)| b)
}

fn unavailable(why: String) -> Option<Postgres> {
    if std::env::var_os("CI").is_some() {
        panic!("PostgreSQL is needed with CI set and could not start: {why}");
    }
    eprintln!("skipped: no PostgreSQL server ({why}); .ci/run installs Debian's postgresql");
    None
}

impl Postgres {
    /// A fresh cluster, started; `None` (outside CI) when PostgreSQL is not installed.
    pub fn start() -> Option<Postgres> {
        let Some(bin) = find_bin() else {
            return unavailable("no /usr/lib/postgresql/*/bin/initdb".into());
        };
        let dir = tempfile::tempdir().expect("tempdir");
        use std::os::unix::fs::MetadataExt;
        let euid = std::fs::metadata("/proc/self")
            .map(|m| m.uid())
            .unwrap_or(0);
        let drop_to = if euid == 0 {
            Some((65534, 65534))
        } else {
            None
        };
        // A port number only names the socket file; each cluster has its own directory.
        let port = 5432;
        let mut pg = Postgres {
            dir,
            bin,
            port,
            drop_to,
            child: None,
        };
        if let Some((uid, gid)) = drop_to {
            std::os::unix::fs::chown(pg.dir.path(), Some(uid), Some(gid)).expect("chown");
        }
        let data = pg.data();
        let out = pg
            .command("initdb")
            .args(["-D", data.to_str().unwrap()])
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .output();
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => {
                return unavailable(format!(
                    "initdb failed: {}",
                    String::from_utf8_lossy(&o.stderr)
                ))
            }
            Err(e) => return unavailable(format!("initdb: {e}")),
        }
        if let Err(e) = pg.run() {
            return unavailable(e);
        }
        Some(pg)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    fn command(&self, tool: &str) -> Command {
        let exe = self.bin.join(tool);
        let mut cmd = match self.drop_to {
            Some((uid, gid)) => {
                let mut c = Command::new("setpriv");
                c.arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={gid}"))
                    .arg("--clear-groups")
                    .arg(exe);
                c
            }
            None => Command::new(exe),
        };
        cmd.env_remove("PGDATA")
            .env("LC_ALL", "C")
            .stdin(Stdio::null());
        cmd
    }

    /// Starts the server on the cluster (again, after `stop`) and waits until it
    /// accepts connections.
    pub fn run(&mut self) -> Result<(), String> {
        let log =
            std::fs::File::create(self.dir.path().join("server.log")).map_err(|e| e.to_string())?;
        if let Some((uid, gid)) = self.drop_to {
            let _ =
                std::os::unix::fs::chown(self.dir.path().join("server.log"), Some(uid), Some(gid));
        }
        let child = self
            .command("postgres")
            .arg("-D")
            .arg(self.data())
            .arg("-k")
            .arg(self.dir.path())
            .args(["-p", &self.port.to_string()])
            // No TCP listener at all: the Unix socket in the test's directory only.
            .args(["-c", "listen_addresses="])
            // No fsync (a test's data need not survive the machine), but every commit
            // is written to the OS before it is acknowledged: the tests kill the server
            // as a crash would, and an acknowledged event must still be there after it
            // (with synchronous_commit=off it was lost under load, 1 run in 3).
            .args(["-c", "fsync=off"])
            .args(["-c", "full_page_writes=off"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("postgres: {e}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match postgres::Client::connect(&self.url("postgres"), postgres::NoTls) {
                Ok(_) => return Ok(()),
                Err(e) => {
                    if let Some(status) = self
                        .child
                        .as_mut()
                        .and_then(|c| c.try_wait().ok().flatten())
                    {
                        return Err(format!("postgres exited ({status}): {}", self.log()));
                    }
                    if Instant::now() > deadline {
                        return Err(format!(
                            "postgres did not accept connections: {e}; {}",
                            self.log()
                        ));
                    }
                    // Polling for readiness: the server has no way to tell us.
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// The URL of a database of this server, as `--database` takes it.
    pub fn url(&self, db: &str) -> String {
        let host = self
            .dir
            .path()
            .to_str()
            .unwrap()
            .replace('%', "%25")
            .replace('/', "%2F");
        format!("postgresql://postgres@{host}:{}/{db}", self.port)
    }

    /// A new, empty database; its URL.
    pub fn database(&self, name: &str) -> String {
        let mut c =
            postgres::Client::connect(&self.url("postgres"), postgres::NoTls).expect("connect");
        c.batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .expect("create database");
        self.url(name)
    }

    /// Stops the server at once (SIGQUIT: no shutdown checkpoint, as a crash would),
    /// and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // The server runs as another user: only root (us, then) may signal it.
            let _ = Command::new("kill")
                .args(["-QUIT", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}
