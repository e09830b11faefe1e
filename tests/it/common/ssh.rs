//! A real OpenSSH server for tests, on 127.0.0.1, started and stopped by the test:
//! host and client keys generated at test time, its own configuration (no system file
//! read), and an ssh client configuration that trusts exactly that host key.
//!
//! Tests run as root in CI; sshd then needs `PermitRootLogin` for the test's key and
//! `StrictModes no` (the keys live in a temporary directory). Outside CI a machine
//! without `sshd` skips these tests, saying so; with `CI=true` that is a failure.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Sshd {
    pub port: u16,
    pub user: String,
    /// `ssh -F <config>`: for `GIT_SSH_COMMAND`.
    pub ssh_command: String,
    /// The host name the client configuration maps to this server (for scp-like URLs,
    /// which cannot carry a port).
    pub alias: &'static str,
    child: Child,
}

const SSHD: &str = "/usr/sbin/sshd";

fn keygen(path: &Path) {
    let out = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "gitops-render-test",
            "-f",
        ])
        .arg(path)
        .output()
        .expect("ssh-keygen runs (openssh-client)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn current_user() -> String {
    let out = Command::new("id").arg("-un").output().expect("id runs");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl Sshd {
    /// Starts sshd with its files under `dir`; `None` (test skipped) only outside CI.
    pub fn start(dir: &Path) -> Option<Sshd> {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
        if !Path::new(SSHD).exists() {
            assert!(
                !ci,
                "CI=true but {SSHD} is missing: .ci/run installs openssh-server"
            );
            eprintln!("skipped: {SSHD} is not installed (apt-get install openssh-server)");
            return None;
        }
        match Sshd::try_start(dir) {
            Ok(s) => Some(s),
            Err(e) if !ci => {
                eprintln!("skipped: sshd did not start: {e}");
                None
            }
            Err(e) => panic!("CI=true and sshd did not start: {e}"),
        }
    }

    fn try_start(dir: &Path) -> Result<Sshd, String> {
        let dir = dir.join("sshd");
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let host_key = dir.join("host_ed25519");
        let client_key = dir.join("client_ed25519");
        keygen(&host_key);
        keygen(&client_key);
        std::fs::copy(dir.join("client_ed25519.pub"), dir.join("authorized_keys"))
            .map_err(|e| e.to_string())?;
        // sshd needs its privilege separation directory when started as root.
        if current_user() == "root" {
            let _ = std::fs::create_dir_all("/run/sshd");
        }
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
            l.local_addr().map_err(|e| e.to_string())?.port()
        };
        let user = current_user();
        let config = dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {hk}\nPidFile {pid}\n\
                 AuthorizedKeysFile {ak}\nStrictModes no\nPermitRootLogin prohibit-password\n\
                 PubkeyAuthentication yes\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nUsePAM no\nAllowUsers {user}\n\
                 LogLevel ERROR\nSubsystem sftp internal-sftp\n",
                hk = host_key.display(),
                pid = dir.join("sshd.pid").display(),
                ak = dir.join("authorized_keys").display(),
            ),
        )
        .map_err(|e| e.to_string())?;
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.join("sshd.log")).map_err(|e| e.to_string())?,
            ))
            .spawn()
            .map_err(|e| format!("cannot run {SSHD}: {e}"))?;
        let host_pub =
            std::fs::read_to_string(dir.join("host_ed25519.pub")).map_err(|e| e.to_string())?;
        let host_pub: Vec<&str> = host_pub.split_whitespace().take(2).collect();
        std::fs::write(
            dir.join("known_hosts"),
            format!("[127.0.0.1]:{port} {}\n", host_pub.join(" ")),
        )
        .map_err(|e| e.to_string())?;
        let alias = "gitops-sshd.test";
        let client_config = dir.join("ssh_config");
        std::fs::write(
            &client_config,
            format!(
                "Host {alias}\n  HostName 127.0.0.1\n  Port {port}\n\
                 Host *\n  User {user}\n  IdentityFile {key}\n  IdentitiesOnly yes\n\
                 UserKnownHostsFile {kh}\n  GlobalKnownHostsFile /dev/null\n\
                 StrictHostKeyChecking yes\n  BatchMode yes\n  ConnectTimeout 10\n\
                 LogLevel ERROR\n",
                key = client_key.display(),
                kh = dir.join("known_hosts").display(),
            ),
        )
        .map_err(|e| e.to_string())?;
        let mut sshd = Sshd {
            port,
            user,
            ssh_command: format!("ssh -F {}", client_config.display()),
            alias,
            child,
        };
        // Ready when it accepts connections and says the SSH banner.
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = sshd.child.try_wait() {
                let log = std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default();
                return Err(format!("sshd exited with {status}: {log}"));
            }
            if let Ok(mut conn) = TcpStream::connect(("127.0.0.1", port)) {
                use std::io::Read;
                let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                let mut banner = [0u8; 4];
                if conn.read_exact(&mut banner).is_ok() && &banner == b"SSH-" {
                    return Ok(sshd);
                }
            }
            if started.elapsed() > Duration::from_secs(20) {
                return Err("sshd did not accept connections within 20 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `ssh://user@127.0.0.1:PORT/abs/path`
    pub fn ssh_url(&self, path: &Path) -> String {
        format!(
            "ssh://{}@127.0.0.1:{}{}",
            self.user,
            self.port,
            path.display()
        )
    }

    /// `user@alias:/abs/path`, the form GitHub shows.
    pub fn scp_url(&self, path: &Path) -> String {
        format!("{}@{}:{}", self.user, self.alias, path.display())
    }

    pub fn config_dir(&self) -> PathBuf {
        PathBuf::from(self.ssh_command.trim_start_matches("ssh -F "))
            .parent()
            .unwrap()
            .to_path_buf()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
