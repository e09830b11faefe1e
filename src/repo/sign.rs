//! Signed commits, configured the way git configures them: `commit.gpgSign`,
//! `gpg.format` (`openpgp` or `ssh`), `user.signingKey`, `gpg.program`,
//! `gpg.ssh.program`. The signature is made by the same programs git runs, over the
//! same bytes (the commit object without its `gpgsig` header), so `git verify-commit`
//! and forges show the commit as verified.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub enum Signer {
    Ssh {
        program: String,
        key: String,
    },
    Gpg {
        program: String,
        key: Option<String>,
    },
}

impl Signer {
    /// The signer the repository's configuration asks for, if any.
    pub fn from_config(config: &gix::config::Snapshot<'_>) -> Result<Option<Signer>> {
        let sign = config.boolean("commit.gpgSign").unwrap_or(false);
        if !sign {
            return Ok(None);
        }
        let key = config
            .string("user.signingKey")
            .map(|k| k.to_string())
            .filter(|k| !k.is_empty());
        let format = config
            .string("gpg.format")
            .map(|f| f.to_string())
            .unwrap_or_else(|| "openpgp".into());
        match format.as_str() {
            "ssh" => {
                let key = key.ok_or_else(|| {
                    Error::usage("commit.gpgSign is set with gpg.format=ssh, but user.signingKey is not")
                        .with_hint("set user.signingKey to the path of an SSH private key (or `key::<public key>` with an agent)")
                })?;
                let program = config
                    .string("gpg.ssh.program")
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "ssh-keygen".into());
                Ok(Some(Signer::Ssh { program, key }))
            }
            "openpgp" => {
                let program = config
                    .string("gpg.program")
                    .or_else(|| config.string("gpg.openpgp.program"))
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "gpg".into());
                Ok(Some(Signer::Gpg { program, key }))
            }
            other => Err(Error::usage(format!(
                "gpg.format `{other}` is not supported for signing deploy commits; use `ssh` or `openpgp`"
            ))),
        }
    }

    /// Signs `payload`, returning the armored signature.
    pub fn sign(&self, payload: &[u8], committer_email: &str) -> Result<String> {
        let (mut cmd, _keep) = match self {
            Signer::Ssh { program, key } => {
                let mut cmd = Command::new(program);
                cmd.args(["-Y", "sign", "-n", "git"]);
                // As git does: a literal public key means "the matching key in the agent".
                let keep = if let Some(literal) = key.strip_prefix("key::") {
                    let mut file = tempfile::NamedTempFile::new()
                        .map_err(|e| Error::usage(format!("cannot write the signing key: {e}")))?;
                    writeln!(file, "{literal}")
                        .map_err(|e| Error::usage(format!("cannot write the signing key: {e}")))?;
                    cmd.arg("-U").arg("-f").arg(file.path());
                    Some(file)
                } else {
                    cmd.arg("-f").arg(expand_home(key));
                    None
                };
                (cmd, keep)
            }
            Signer::Gpg { program, key } => {
                let mut cmd = Command::new(program);
                cmd.args(["--status-fd=2", "-bsau"]);
                cmd.arg(key.as_deref().unwrap_or(committer_email));
                (cmd, None)
            }
        };
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::usage(format!("cannot run the commit signing program: {e}")))?;
        let mut stdin = child.stdin.take().expect("piped");
        let payload = payload.to_vec();
        let writer = std::thread::spawn(move || stdin.write_all(&payload));
        let out = child
            .wait_with_output()
            .map_err(|e| Error::usage(format!("commit signing failed: {e}")))?;
        let _ = writer.join();
        let sig = String::from_utf8_lossy(&out.stdout).to_string();
        if !out.status.success() || !sig.contains("-----BEGIN") {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let last = stderr
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            return Err(Error::usage(format!("commit signing failed: {last}"))
                .with_hint("check user.signingKey and gpg.format in your git configuration"));
        }
        Ok(sig)
    }
}

/// A key path as git reads a path from its configuration (`~/` is the home directory,
/// `~user/` that user's), by gix's implementation of git's rules, which finds the home
/// directory as git does. A path it cannot expand is used as written, as git would
/// fail on it with its own message.
fn expand_home(path: &str) -> std::path::PathBuf {
    let home = gix::path::env::home_dir();
    gix::config::Path::from(path)
        .interpolate(gix::config::path::interpolate::Context {
            home_dir: home.as_deref(),
            ..Default::default()
        })
        .unwrap_or_else(|_| path.into())
}
