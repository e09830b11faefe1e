//! Turning path arguments into inputs: files as given, directories expanded to the
//! `.yaml`/`.yml` files below them (`.json` too for `validate`), sorted so output order
//! never depends on the file system; `-` for standard input. An unreadable path is a
//! usage error (exit 2).

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

pub struct Input {
    /// The path as the user wrote it (or as found below a directory they gave).
    pub path: String,
    pub bytes: Vec<u8>,
}

/// Reading stops here for one file: values files are checked against a much smaller
/// limit later, with a finding; this only keeps a runaway input out of memory.
const MAX_INPUT_BYTES: u64 = 64 * 1024 * 1024;

pub fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    expand_with(paths, &["yaml", "yml"])
}

/// `expand`, taking the files below a directory whose extension is one of `exts`
/// (`validate` reads `.json` manifests too).
pub fn expand_with(paths: &[PathBuf], exts: &[&str]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.as_os_str() == "-" {
            out.push(p.clone());
        } else if p.is_dir() {
            let mut found = Vec::new();
            walk(p, exts, &mut found)?;
            found.sort();
            if found.is_empty() {
                return Err(Error::usage(format!(
                    "{} holds no .{} files",
                    p.display(),
                    exts.join(" or .")
                )));
            }
            out.extend(found);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// The files below `dir` with one of the extensions `exts`, hidden entries skipped. Symlinks are followed
/// (a values directory may link in shared files), with walkdir's loop detection: a link
/// back into its own ancestry is reported on stderr and not entered, and a file reached
/// by several paths is checked once, under the first path in sorted order.
fn walk(dir: &Path, exts: &[&str], out: &mut Vec<PathBuf>) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let mut seen = std::collections::HashSet::new();
    let walker = walkdir::WalkDir::new(dir)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'));
    for entry in walker {
        let entry = match entry {
            Ok(e) => e,
            Err(e) if e.loop_ancestor().is_some() => {
                eprintln!(
                    "warning: {}: a symlink loop; not entered",
                    e.path()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default()
                );
                continue;
            }
            Err(e) => {
                return Err(Error::usage(format!(
                    "cannot read {}: {e}",
                    e.path().unwrap_or(dir).display()
                )))
            }
        };
        if !entry.file_type().is_file() {
            continue;
        }
        let path = entry.path();
        if !path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| exts.contains(&e))
        {
            continue;
        }
        let meta = entry
            .metadata()
            .map_err(|e| Error::usage(format!("cannot read {}: {e}", path.display())))?;
        if seen.insert((meta.dev(), meta.ino())) {
            out.push(path.to_path_buf());
        }
    }
    Ok(())
}

pub fn read(path: &Path) -> Result<Input> {
    let mut bytes = Vec::new();
    if path.as_os_str() == "-" {
        std::io::stdin()
            .take(MAX_INPUT_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::usage(format!("cannot read standard input: {e}")))?;
        return check_size(Input {
            path: "<stdin>".into(),
            bytes,
        });
    }
    let file = std::fs::File::open(path)
        .map_err(|e| Error::usage(format!("cannot read {}: {e}", path.display())))?;
    file.take(MAX_INPUT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::usage(format!("cannot read {}: {e}", path.display())))?;
    check_size(Input {
        path: path.display().to_string(),
        bytes,
    })
}

fn check_size(input: Input) -> Result<Input> {
    if input.bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(Error::usage(format!(
            "{} is larger than {} MiB",
            input.path,
            MAX_INPUT_BYTES / 1024 / 1024
        )));
    }
    Ok(input)
}

/// Reads every path (after expansion), in order.
pub fn read_all(paths: &[PathBuf]) -> Result<Vec<Input>> {
    expand(paths)?.iter().map(|p| read(p)).collect()
}

/// `read_all` with `expand_with`'s extensions.
pub fn read_all_with(paths: &[PathBuf], exts: &[&str]) -> Result<Vec<Input>> {
    expand_with(paths, exts)?.iter().map(|p| read(p)).collect()
}
