//! `gitops-render render VALUES`: the files of `apps/<app>/<env>/`, written to a
//! directory or printed as one YAML stream. Rejected values write nothing.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::{emit, inputs, Globals};
use crate::check::{check, Checked, Request};
use crate::error::{exit, Error, Result};
use crate::findings::Report;
use crate::output::Format;
use crate::platform::Platform;
use crate::render::{HEADER, VALUES_HEADER};

/// Render one values file into the files of apps/<app>/<env>/.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The values file (`-` reads standard input).
    #[arg(value_name = "VALUES")]
    values: PathBuf,

    /// The environment; default: the platform's first (dev in the standard platform).
    #[arg(long, value_name = "ENV")]
    env: Option<String>,

    /// Write the files here (created if missing) instead of printing the manifests.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,

    /// The image tag or digest, overriding `version`.
    #[arg(long, value_name = "TAG")]
    tag: Option<String>,

    /// The source repository (`owner/name`) the deploy would come from.
    #[arg(long, value_name = "OWNER/NAME")]
    source_repo: Option<String>,

    /// How to print findings when the values are rejected.
    #[arg(long, value_enum, default_value = "text", value_name = "FORMAT")]
    output: Format,
}

pub fn run(globals: &Globals, args: Args) -> Result<i32> {
    let platform = globals.platform_until_exit()?;
    // The policies load beside the check: nothing is printed until they are known good,
    // since a broken policy is the answer (exit 2) whatever the values were.
    let checked = platform.unless_broken(check_values(platform, &args))?;
    let rendering = match (&checked.rendering, checked.ok()) {
        (Some(r), true) => r,
        _ => {
            let report = Report {
                files: vec![checked.report],
            };
            // Standard output carries manifests: a rejection in text goes to standard
            // error, so `render ... | kubectl apply -f -` never receives it. A document
            // asked for with --output (json, sarif, junit, github) is data: stdout.
            if args.output == Format::Text {
                eprint!(
                    "{}",
                    crate::output::render(&report, Format::Text, &Default::default())
                );
                return Ok(exit::REJECTED);
            }
            let code = emit(globals, &report, args.output);
            return Ok(code.max(exit::REJECTED));
        }
    };
    // Warnings still go to stderr, so a pipeline sees them without mixing them in.
    if !checked.report.findings.is_empty() {
        let report = Report {
            files: vec![checked.report.clone()],
        };
        eprint!(
            "{}",
            crate::output::render(&report, Format::Text, &Default::default())
        );
    }
    match &args.out {
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(rendering.stream().as_bytes())
                .and_then(|_| stdout.flush())
                .map_err(|e| Error::usage(format!("cannot write to standard output: {e}")))?;
        }
        Some(dir) => write_dir(dir, &rendering.files)?,
    }
    Ok(exit::OK)
}

/// The values checked (and rendered, when accepted) in the environment asked for, else
/// the platform's first.
fn check_values(platform: &Platform, args: &Args) -> Result<Checked> {
    let env = match &args.env {
        Some(e) => {
            platform.check_env(e)?;
            e.clone()
        }
        None => platform.settings.environments[0].clone(),
    };
    let input = inputs::read(&args.values)?;
    check(
        platform,
        &Request {
            path: &input.path,
            bytes: &input.bytes,
            env: &env,
            tag: args.tag.as_deref(),
            source_repo: args.source_repo.as_deref(),
            actor: None,
        },
    )
}

/// Writes the rendered set as a whole, so a reader sees the old set or the new one,
/// never a mix: the files are written into a new sibling directory, which then takes
/// `dir`'s place in one `renameat2(RENAME_EXCHANGE)` (or one rename, if `dir` is new).
///
/// Files and the directory honour the umask, as every tool's output does (the new
/// directory keeps the old one's mode). What `dir` held that render did not write (a
/// file without our header, a symlink, a FIFO) is carried into the new set by hard
/// link, never read or followed; to tell our files from others only the first bytes of
/// regular files are read, through a descriptor opened without following symlinks or
/// blocking. Files an earlier render wrote that this one does not are dropped. A
/// subdirectory cannot be carried atomically, so a `dir` holding one is refused before
/// anything is written.
pub fn write_dir(dir: &Path, files: &std::collections::BTreeMap<String, Vec<u8>>) -> Result<()> {
    let fail = |what: &str, path: &Path, e: std::io::Error| {
        Error::usage(format!("cannot {what} {}: {e}", path.display()))
    };
    // A symlink to a directory: switch the directory it points at, keep the link.
    let dir = match std::fs::symlink_metadata(dir) {
        Ok(m) if m.file_type().is_symlink() => {
            std::fs::canonicalize(dir).map_err(|e| fail("resolve", dir, e))?
        }
        _ => dir.to_path_buf(),
    };
    let old = match std::fs::symlink_metadata(&dir) {
        Ok(m) if m.is_dir() => Some(m),
        Ok(_) => {
            return Err(Error::usage(format!(
                "--out {} exists and is not a directory",
                dir.display()
            )))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(fail("read", &dir, e)),
    };
    let mut carried = Vec::new();
    if old.is_some() {
        let entries = std::fs::read_dir(&dir).map_err(|e| fail("read", &dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| fail("read", &dir, e))?;
            let name = entry.file_name();
            let path = entry.path();
            if files.contains_key(name.to_string_lossy().as_ref()) {
                continue;
            }
            let kind = entry.file_type().map_err(|e| fail("read", &path, e))?;
            if kind.is_dir() {
                return Err(Error::usage(format!(
                    "--out {} holds a directory render did not write ({}); give an empty directory or one render wrote",
                    dir.display(),
                    path.display()
                )));
            }
            if !(kind.is_file() && ours(&path)) {
                carried.push(name);
            }
        }
    }
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|e| fail("create", &parent, e))?;
    let base = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let new = (0..100)
        .map(|i| parent.join(format!(".{base}.gitops-render-{}-{i}", std::process::id())))
        .find(|p| std::fs::create_dir(p).is_ok())
        .ok_or_else(|| {
            Error::usage(format!("cannot create a directory in {}", parent.display()))
        })?;
    // Removes the new directory (or, after the switch, the old set) on every way out.
    struct Cleanup(PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let cleanup = Cleanup(new.clone());
    for (name, bytes) in files {
        let path = new.join(name);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| fail("write", &path, e))?;
        f.write_all(bytes)
            .and_then(|_| f.sync_all())
            .map_err(|e| fail("write", &path, e))?;
    }
    for name in &carried {
        std::fs::hard_link(dir.join(name), new.join(name))
            .map_err(|e| fail("keep", &dir.join(name), e))?;
    }
    if let Some(m) = &old {
        std::fs::set_permissions(&new, m.permissions()).map_err(|e| fail("write", &new, e))?;
    }
    if let Ok(d) = std::fs::File::open(&new) {
        let _ = d.sync_all();
    }
    if old.is_some() {
        rustix::fs::renameat_with(
            rustix::fs::CWD,
            &new,
            rustix::fs::CWD,
            &dir,
            rustix::fs::RenameFlags::EXCHANGE,
        )
        .map_err(|e| fail("switch to the new files in", &dir, e.into()))?;
        // `new` now names the old set, which the cleanup removes.
    } else {
        std::fs::rename(&new, &dir).map_err(|e| fail("create", &dir, e))?;
    }
    if let Ok(d) = std::fs::File::open(&parent) {
        let _ = d.sync_all();
    }
    drop(cleanup);
    Ok(())
}

/// Whether a regular file starts with one of our headers: read through a descriptor
/// that refuses symlinks and never blocks (a FIFO swapped in after the listing), and
/// only as many bytes as the header has.
fn ours(path: &Path) -> bool {
    use rustix::fs::{Mode, OFlags};
    let Ok(fd) = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return false;
    };
    let file = std::fs::File::from(fd);
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return false;
    }
    let want = HEADER.len().max(VALUES_HEADER.len());
    let mut head = Vec::with_capacity(want);
    if std::io::Read::take(&file, want as u64)
        .read_to_end(&mut head)
        .is_err()
    {
        return false;
    }
    head.starts_with(HEADER.as_bytes()) || head.starts_with(VALUES_HEADER.as_bytes())
}
