//! Reading the config file and writing it back atomically. Does file I/O; all parsing and
//! validation is in `config`.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::{self, Config, ConfigError, Document, InvalidConfig};

/// Reads and validates the config file. A missing file is [`ConfigError::NotFound`], so the
/// caller can fall back to environment users; the file is never written here.
pub fn load(path: &Path) -> Result<(Config, Document), ConfigError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            return Err(ConfigError::NotFound {
                path: path.to_path_buf(),
            })
        }
        Err(error) => {
            return Err(ConfigError::Io {
                path: path.to_path_buf(),
                message: format!("cannot read the config file: {error}"),
            })
        }
    };
    let text = String::from_utf8(bytes).map_err(|_| {
        ConfigError::Invalid(Box::new(InvalidConfig {
            path: path.to_path_buf(),
            position: None,
            user: None,
            field: None,
            message: "the file is not UTF-8 text".into(),
            fix: "save it with UTF-8 encoding".into(),
        }))
    })?;
    config::parse(&text, path)
}

/// How [`write_atomic`] replaced the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The normal, atomic way: a complete temp file renamed over the target.
    Renamed,
    /// The rename was refused (the config is a single file bind-mounted into a container,
    /// or on another filesystem), so the target was overwritten in place. Not atomic: the
    /// caller should log a warning.
    WroteInPlace,
}

/// Replaces the file at `path` with `contents`, atomically where the filesystem allows it.
///
/// The content goes to a hidden temp file in the same directory, is fsynced, gets the
/// existing file's permission mode (0600 for a new file, as it holds tokens), and is renamed
/// over the target; then the directory is fsynced so the rename survives a power cut. A
/// symlink at `path` is followed, so the file it points to is replaced, not the link.
///
/// When the rename fails with EBUSY or EXDEV, see [`WriteOutcome::WroteInPlace`]. On every
/// error the temp file is removed and, except in the in-place fallback, the target is
/// untouched.
pub fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<WriteOutcome> {
    write_atomic_with_rename(path, contents, |from, to| fs::rename(from, to))
}

/// [`write_atomic`] with the rename step supplied by the caller, so tests can make it fail
/// the way a bind mount does.
pub fn write_atomic_with_rename(
    path: &Path,
    contents: &[u8],
    rename: impl Fn(&Path, &Path) -> io::Result<()>,
) -> io::Result<WriteOutcome> {
    let target = resolve_symlinks(path)?;
    let mode = mode_for(&target)?;
    // From here on every early return removes the temp file.
    let temp = TempFile::write_beside(&target, contents, mode, &RealDisk)?;
    match rename(&temp.path, &target) {
        Ok(()) => {
            sync_directory(&temp.keep());
            Ok(WriteOutcome::Renamed)
        }
        Err(error) if is_rename_refused(&error) => {
            // Docker refuses to rename over a bind-mounted single file (EBUSY), and renames
            // across filesystems fail with EXDEV. Overwriting in place is the only way left:
            // the whole new content from offset 0, then the cut to the new length, so the
            // file is never empty; on failure the previous content is written back. The
            // config itself goes through [`replace_config`], which also keeps a complete
            // copy on disk during the overwrite.
            let previous = fs::read(&target).ok();
            overwrite_keeping_a_copy(&target, contents, previous.as_deref(), mode, &RealDisk)
                .map_err(|(error, _)| error)?;
            drop(temp);
            Ok(WriteOutcome::WroteInPlace)
        }
        Err(error) => Err(error),
    }
}

/// The file operations a config write is made of, so that tests can make them fail the
/// way a real disk does (a refused rename, a short write on a full disk) or act in between
/// (a person saving the file at the same moment). The daemon uses [`RealDisk`].
pub trait Disk: Send + Sync {
    /// Renames `from` over `to`. Where the system can, the two are exchanged atomically
    /// (Linux `renameat2(RENAME_EXCHANGE)`): `from` then holds what `to` held, so a save
    /// that landed just before is not lost. Otherwise `from` is gone.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        match exchange(from, to) {
            Ok(()) => Ok(()),
            Err(_) => fs::rename(from, to),
        }
    }

    /// Writes `bytes` to `file`, which is `path` (the config or a temp file beside it).
    fn write_all(&self, _path: &Path, file: &mut File, bytes: &[u8]) -> io::Result<()> {
        file.write_all(bytes)
    }

    /// Called when the new content is complete on disk, just before the file is checked a
    /// last time and replaced.
    fn before_replace(&self, _target: &Path) {}
}

/// The real filesystem.
pub struct RealDisk;

impl Disk for RealDisk {}

/// Why [`replace_config`] did not replace the file.
#[derive(Debug)]
pub enum ReplaceError {
    /// The file no longer holds what the new content was based on: someone else wrote it.
    /// Nothing was written.
    Changed,
    /// The write failed; the file holds its previous content (see [`replace_config`]).
    Io(io::Error),
    /// An in-place write failed and not even the previous content could be written back
    /// (a full copy-on-write volume): the file is damaged, even if it happens to parse,
    /// until the next write. The complete new content is in `.<config>.in-place`.
    Damaged(io::Error),
}

impl fmt::Display for ReplaceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplaceError::Changed => f.write_str("the file was changed by someone else"),
            ReplaceError::Io(error) => error.fmt(f),
            ReplaceError::Damaged(error) => write!(
                f,
                "{error}; the file is damaged until the next write, and a complete copy is kept \
                 beside it"
            ),
        }
    }
}

impl From<io::Error> for ReplaceError {
    fn from(error: io::Error) -> ReplaceError {
        ReplaceError::Io(error)
    }
}

/// What [`replace_config`] did.
#[derive(Debug)]
pub struct Replaced {
    pub outcome: WriteOutcome,
    /// The previous version could not be kept as a backup; the write itself went through.
    pub backup_error: Option<io::Error>,
    /// What the replaced file held when it was not what the write was based on: a save that
    /// landed between the last check and the rename (read back from the exchanged file). The
    /// caller takes it in; it is also kept as `.bak.1`.
    pub slipped_in: Option<Vec<u8>>,
    /// How long a save could have gone unnoticed: from the exchange to the end of reading
    /// the replaced file back (with a plain rename, from the check to the rename).
    pub unguarded: std::time::Duration,
}

/// How many earlier versions of the config are kept beside it.
pub const N_BACKUPS: usize = 3;

/// `<config>.bak.N`, N = 1 (the newest) to [`N_BACKUPS`].
pub fn backup_path(path: &Path, n: usize) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".bak.{n}"));
    path.with_file_name(name)
}

/// `.<config>.in-place`: the complete new content while the config is overwritten in
/// place. Present after a start only if such a write was cut off.
pub fn in_place_copy_path(path: &Path) -> PathBuf {
    let mut name = std::ffi::OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(".in-place");
    path.with_file_name(name)
}

/// Replaces the config file at `path` with `contents`, provided it still holds `expected`
/// (`None`: there is no file), and keeps the version it replaces as `<config>.bak.1`
/// (older ones move up to `.bak.3`), with the config's permission mode.
///
/// The normal way is atomic: a complete, fsynced temp file renamed over the config. When
/// the rename is refused (a single bind-mounted file: EBUSY, EXDEV), the file is
/// overwritten in place, and at every moment a complete copy is on disk: the previous
/// version in `.bak.1`, the new one in `.<config>.in-place` until the overwrite is synced.
/// If the overwrite fails part-way (a full disk), the previous content is written back; if
/// even that fails, the `.in-place` copy stays for the next start to recover from.
pub fn replace_config(
    path: &Path,
    contents: &[u8],
    expected: Option<&[u8]>,
    disk: &dyn Disk,
) -> Result<Replaced, ReplaceError> {
    let target = resolve_symlinks(path)?;
    let mode = mode_for(&target)?;
    let temp = TempFile::write_beside(&target, contents, mode, disk)?;

    // The backups are rotated first, so that nothing but the check stands between the
    // check and the rename.
    let backup_error = match expected {
        Some(previous) => rotate_backups(&target, previous, mode).err(),
        None => None,
    };
    disk.before_replace(&target);
    let current = match fs::read(&target) {
        Ok(bytes) => Some(bytes),
        Err(error) if error.kind() == io::ErrorKind::NotFound => None,
        Err(error) => return Err(error.into()),
    };
    if current.as_deref() != expected {
        return Err(ReplaceError::Changed);
    }

    let renaming = std::time::Instant::now();
    match disk.rename(&temp.path, &target) {
        Ok(()) => {
            // After an exchange the temp file's name holds what was replaced: a save made
            // since the check shows there.
            let replaced = fs::read(&temp.path).ok();
            let unguarded = renaming.elapsed();
            let slipped_in = replaced.filter(|bytes| Some(bytes.as_slice()) != expected);
            let _ = fs::remove_file(&temp.path);
            if let Some(bytes) = &slipped_in {
                let _ = rotate_backups(&target, bytes, mode);
            }
            sync_directory(&temp.keep());
            Ok(Replaced {
                outcome: WriteOutcome::Renamed,
                backup_error,
                slipped_in,
                unguarded,
            })
        }
        Err(error) if is_rename_refused(&error) => {
            let copy = in_place_copy_path(&target);
            disk.rename(&temp.path, &copy)?;
            let directory = temp.keep();
            sync_directory(&directory);
            match overwrite_keeping_a_copy(&target, contents, current.as_deref(), mode, disk) {
                Ok(()) => {
                    let _ = fs::remove_file(&copy);
                    sync_directory(&directory);
                    Ok(Replaced {
                        outcome: WriteOutcome::WroteInPlace,
                        backup_error,
                        slipped_in: None,
                        unguarded: renaming.elapsed(),
                    })
                }
                Err((error, true)) => {
                    let _ = fs::remove_file(&copy);
                    Err(error.into())
                }
                Err((error, false)) => Err(ReplaceError::Damaged(error)),
            }
        }
        Err(error) => Err(error.into()),
    }
}

/// [`replace_config`] of whatever the file holds now, for one-off writes outside the config
/// writer (`auth`, a converted or first-written config): the same backups and the same
/// complete copy during an in-place write.
pub fn replace_config_now(path: &Path, contents: &[u8]) -> io::Result<WriteOutcome> {
    let current = match fs::read(path) {
        Ok(bytes) => Some(bytes),
        Err(error) if error.kind() == io::ErrorKind::NotFound => None,
        Err(error) => return Err(error),
    };
    match replace_config(path, contents, current.as_deref(), &RealDisk) {
        Ok(replaced) => Ok(replaced.outcome),
        Err(ReplaceError::Changed) => Err(io::Error::other(
            "the file changed while it was being written; try again",
        )),
        Err(ReplaceError::Io(error)) => Err(error),
        Err(damaged @ ReplaceError::Damaged(_)) => Err(io::Error::other(damaged.to_string())),
    }
}

/// Overwrites `target` in place with `contents`. On failure, writes `previous` back; the
/// flag says whether that worked.
fn overwrite_keeping_a_copy(
    target: &Path,
    contents: &[u8],
    previous: Option<&[u8]>,
    mode: u32,
    disk: &dyn Disk,
) -> Result<(), (io::Error, bool)> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(false);
    set_open_mode(&mut options, mode);
    let mut file = options.open(target).map_err(|error| (error, true))?;
    let overwrite = |file: &mut File, bytes: &[u8]| -> io::Result<()> {
        file.seek(SeekFrom::Start(0))?;
        disk.write_all(target, file, bytes)?;
        file.set_len(bytes.len() as u64)?;
        file.sync_all()
    };
    match overwrite(&mut file, contents) {
        Ok(()) => Ok(()),
        Err(error) => {
            let restored = previous.is_some_and(|previous| overwrite(&mut file, previous).is_ok());
            Err((error, restored))
        }
    }
}

/// Keeps `previous` as `<config>.bak.1`, moving older backups up and dropping the oldest.
/// Nothing moves when `.bak.1` already holds it.
fn rotate_backups(target: &Path, previous: &[u8], mode: u32) -> io::Result<()> {
    let newest = backup_path(target, 1);
    if fs::read(&newest).is_ok_and(|bytes| bytes == previous) {
        return Ok(());
    }
    for n in (1..N_BACKUPS).rev() {
        match fs::rename(backup_path(target, n), backup_path(target, n + 1)) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
    }
    let temp = TempFile::write_beside(&newest, previous, mode, &RealDisk)?;
    fs::rename(&temp.path, &newest)?;
    temp.keep();
    Ok(())
}

fn directory_and_name(target: &Path) -> io::Result<(PathBuf, &std::ffi::OsStr)> {
    let directory = match target.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = target.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} does not name a file", target.display()),
        )
    })?;
    Ok((directory, file_name))
}

/// Makes a rename in `directory` survive a power cut. A directory that cannot be fsynced
/// (some network and FUSE filesystems) only weakens durability, so it is not an error the
/// caller could act on.
fn sync_directory(directory: &Path) {
    let _ = File::open(directory).and_then(|dir| dir.sync_all());
}

/// A config modified this long after the copy of an interrupted in-place write counts as
/// a person's later edit, which recovery keeps.
const EDITED_AFTER_INTERRUPTION: std::time::Duration = std::time::Duration::from_secs(60);

/// What [`recover_interrupted_write`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Recovery {
    /// No in-place write was cut off.
    Nothing,
    /// The config was completed from the copy an interrupted in-place write left.
    Completed,
    /// A copy was left, but the config is newer and valid: the copy was removed.
    CopyDropped,
}

/// Finishes an in-place write that was cut off (a crash, a power cut, or a disk too full to
/// write the previous content back): when `.<config>.in-place` exists, it becomes the
/// config, unless the config already holds it or was edited by a person well after it
/// (then the copy is dropped). The replaced content is kept as `.bak.1`. Run before
/// loading.
pub fn recover_interrupted_write(path: &Path) -> io::Result<Recovery> {
    let target = resolve_symlinks(path)?;
    let copy_path = in_place_copy_path(&target);
    let copy = match fs::read(&copy_path) {
        Ok(copy) => copy,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Recovery::Nothing),
        Err(error) => return Err(error),
    };
    let parses = |bytes: &[u8]| {
        std::str::from_utf8(bytes).is_ok_and(|text| config::parse(text, path).is_ok())
    };
    let current = fs::read(&target).ok();
    let previous = fs::read(backup_path(&target, 1)).ok();
    let modified = |path: &Path| fs::metadata(path).and_then(|m| m.modified()).ok();
    // A config changed well after the copy was made was edited by a person since; one
    // changed with it is the interrupted write itself, damaged even if it parses.
    let edited_since = match (modified(&target), modified(&copy_path)) {
        (Some(config), Some(copy)) => config
            .duration_since(copy)
            .is_ok_and(|later| later >= EDITED_AFTER_INTERRUPTION),
        _ => false,
    };
    let keep_current = match &current {
        Some(current) if *current == copy => true,
        Some(current) if previous.as_ref() == Some(current) => false,
        Some(current) => parses(current) && edited_since,
        None => false,
    };
    if keep_current || !parses(&copy) {
        fs::remove_file(&copy_path)?;
        return Ok(Recovery::CopyDropped);
    }
    match replace_config(&target, &copy, current.as_deref(), &RealDisk) {
        Ok(_) => {
            fs::remove_file(&copy_path)?;
            Ok(Recovery::Completed)
        }
        Err(ReplaceError::Changed) => Err(io::Error::other("the config changed while recovering")),
        Err(ReplaceError::Io(error) | ReplaceError::Damaged(error)) => Err(error),
    }
}

/// Removes the temp file when dropped, unless it was renamed into place.
struct TempFile {
    path: PathBuf,
}

impl TempFile {
    /// Writes `contents` to a new temp file beside `target` (same directory, so a rename
    /// replaces the target atomically) with `mode`, and syncs it.
    fn write_beside(
        target: &Path,
        contents: &[u8],
        mode: u32,
        disk: &dyn Disk,
    ) -> io::Result<TempFile> {
        let (directory, file_name) = directory_and_name(target)?;
        let path = directory.join(temp_file_name(file_name));
        let mut file = create_new_with_mode(&path, mode)?;
        let temp = TempFile { path };
        disk.write_all(&temp.path, &mut file, contents)?;
        file.sync_all()?;
        Ok(temp)
    }

    /// Keeps the file (it was renamed into place); returns its directory.
    fn keep(mut self) -> PathBuf {
        let path = std::mem::take(&mut self.path);
        match path.parent() {
            Some(parent) => parent.to_path_buf(),
            None => PathBuf::from("."),
        }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        // Empty once kept.
        if !self.path.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// The mode a new version of `target` gets: the file's own, or [`NEW_FILE_MODE`] for a new
/// file.
fn mode_for(target: &Path) -> io::Result<u32> {
    match fs::metadata(target) {
        Ok(metadata) => Ok(permission_mode(&metadata)),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(NEW_FILE_MODE),
        Err(error) => Err(error),
    }
}

/// `.<name>.<pid>.<counter>.tmp`: hidden, in the same directory, and unique per process and
/// write, so two writers never share a temp file.
fn temp_file_name(file_name: &std::ffi::OsStr) -> std::ffi::OsString {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut name = std::ffi::OsString::from(".");
    name.push(file_name);
    name.push(format!(".{}.{n}.tmp", std::process::id()));
    name
}

/// The temp files (`.<name>.<pid>.<counter>.tmp`) that writes of `path` or of files named
/// after it (`<name>.tokens`, backups) left behind, with their modification times. Called
/// at start, before this process writes any: files named with this process's id are
/// leftovers too (in a container the daemon is PID 1 at every start); those of other
/// processes still running (an `auth` beside the daemon) are not included.
pub fn leftover_temp_files(path: &Path) -> Vec<(PathBuf, std::time::SystemTime)> {
    let Ok(target) = resolve_symlinks(path) else {
        return Vec::new();
    };
    let Ok((directory, file_name)) = directory_and_name(&target) else {
        return Vec::new();
    };
    let prefix = format!(".{}.", file_name.to_string_lossy());
    let Ok(entries) = fs::read_dir(&directory) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = temp_file_pid(&name, &prefix) else {
            continue;
        };
        if pid != std::process::id() && process_is_running(pid) {
            continue;
        }
        let modified = entry
            .metadata()
            .and_then(|metadata| metadata.modified())
            .unwrap_or(std::time::SystemTime::UNIX_EPOCH);
        found.push((entry.path(), modified));
    }
    found.sort();
    found
}

/// The pid in `<prefix>[<suffix>.]<pid>.<counter>.tmp` (the suffix of a backup or the
/// token journal), for a temp file of ours. Pure.
fn temp_file_pid(name: &str, prefix: &str) -> Option<u32> {
    let rest = name.strip_prefix(prefix)?.strip_suffix(".tmp")?;
    let mut parts = rest.rsplitn(3, '.');
    parts.next()?.parse::<u64>().ok()?;
    parts.next()?.parse().ok()
}

/// Whether a process with this id runs (Linux: `/proc/<pid>`; elsewhere none is assumed).
fn process_is_running(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Exchanges `from` and `to` atomically (Linux `renameat2` with `RENAME_EXCHANGE`, called
/// through `syscall` since std has no binding and older musl no wrapper). An error (no such
/// call, a filesystem without it, no file at `to`) means nothing happened: the caller
/// renames instead.
#[cfg(target_os = "linux")]
fn exchange(from: &Path, to: &Path) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;

    let invalid = |_| io::Error::from(io::ErrorKind::InvalidInput);
    let from = CString::new(from.as_os_str().as_bytes()).map_err(invalid)?;
    let to = CString::new(to.as_os_str().as_bytes()).map_err(invalid)?;
    // SAFETY: renameat2 only reads the two NUL-terminated paths, which live until it
    // returns; the other arguments are plain integers of the types the call takes.
    let result = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_from: &Path, _to: &Path) -> io::Result<()> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

/// The file a symlink points to, so the write replaces the real file and keeps the link.
fn resolve_symlinks(path: &Path) -> io::Result<PathBuf> {
    match fs::canonicalize(path) {
        Ok(resolved) => Ok(resolved),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(path.to_path_buf()),
        Err(error) => Err(error),
    }
}

/// EBUSY and EXDEV have these numbers on Linux, the BSDs and macOS. We compare raw numbers
/// because `ErrorKind::ResourceBusy` and `CrossesDevices` need a newer Rust than our MSRV.
fn is_rename_refused(error: &io::Error) -> bool {
    const EBUSY: i32 = 16;
    const EXDEV: i32 = 18;
    cfg!(unix) && matches!(error.raw_os_error(), Some(EBUSY | EXDEV))
}

const NEW_FILE_MODE: u32 = 0o600;

#[cfg(unix)]
fn permission_mode(metadata: &fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    metadata.permissions().mode() & 0o7777
}

#[cfg(not(unix))]
fn permission_mode(_metadata: &fs::Metadata) -> u32 {
    NEW_FILE_MODE
}

#[cfg(unix)]
fn set_open_mode(options: &mut OpenOptions, mode: u32) {
    use std::os::unix::fs::OpenOptionsExt;
    options.mode(mode);
}

#[cfg(not(unix))]
fn set_open_mode(_options: &mut OpenOptions, _mode: u32) {}

fn create_new_with_mode(path: &Path, mode: u32) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    set_open_mode(&mut options, mode);
    let file = options.open(path)?;
    // The umask may have taken bits away from `mode`; set it exactly. If that fails the
    // temp file must not stay behind.
    if let Err(error) = set_exact_mode(&file, mode) {
        let _ = fs::remove_file(path);
        return Err(error);
    }
    Ok(file)
}

#[cfg(unix)]
fn set_exact_mode(file: &File, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_exact_mode(_file: &File, _mode: u32) -> io::Result<()> {
    Ok(())
}

/// A disk for tests: a config that is a single bind-mounted file (renames over it are
/// refused with EBUSY) on a disk that fills up (writes to it stop after `limit` bytes with
/// ENOSPC), and a hook that acts just before a replace.
#[cfg(test)]
pub(crate) mod test_disk {
    use std::fs::{self, File};
    use std::io::{self, Seek, Write};
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    pub(crate) const EBUSY: i32 = 16;
    pub(crate) const ENOSPC: i32 = 28;

    pub(crate) type Hook = Box<dyn Fn(&Path) + Send + Sync>;

    pub(crate) struct BindMountedFullDisk {
        pub(crate) config: PathBuf,
        /// How many bytes the config may hold; `usize::MAX` once space returns.
        pub(crate) limit: AtomicUsize,
        /// Like btrfs or ZFS: every byte written takes new space, even over old content, so
        /// `limit` is a budget that writes use up.
        pub(crate) copy_on_write: bool,
        pub(crate) before_replace: Mutex<Option<Hook>>,
    }

    impl BindMountedFullDisk {
        pub(crate) fn new(config: &Path, limit: usize) -> BindMountedFullDisk {
            BindMountedFullDisk {
                config: fs::canonicalize(config).unwrap_or_else(|_| config.to_path_buf()),
                limit: AtomicUsize::new(limit),
                copy_on_write: false,
                before_replace: Mutex::new(None),
            }
        }

        pub(crate) fn set_limit(&self, limit: usize) {
            self.limit.store(limit, Ordering::SeqCst);
        }
    }

    impl super::Disk for BindMountedFullDisk {
        fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
            if to == self.config {
                return Err(io::Error::from_raw_os_error(EBUSY));
            }
            fs::rename(from, to)
        }

        fn write_all(&self, path: &Path, file: &mut File, bytes: &[u8]) -> io::Result<()> {
            if path != self.config {
                return file.write_all(bytes);
            }
            let limit = self.limit.load(Ordering::SeqCst);
            let room = if self.copy_on_write {
                limit
            } else {
                limit.saturating_sub(file.stream_position()? as usize)
            };
            let n = room.min(bytes.len());
            file.write_all(&bytes[..n])?;
            if self.copy_on_write && limit != usize::MAX {
                self.limit.store(limit - n, Ordering::SeqCst);
            }
            if n < bytes.len() {
                return Err(io::Error::from_raw_os_error(ENOSPC));
            }
            Ok(())
        }

        fn before_replace(&self, target: &Path) {
            if let Some(hook) = self.before_replace.lock().unwrap().take() {
                hook(target);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::time::Duration;

    fn files_in(directory: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(directory)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[cfg(unix)]
    fn mode_of(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[cfg(unix)]
    fn set_mode(path: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn load_distinguishes_missing_unreadable_and_invalid() {
        let directory = tempfile::tempdir().unwrap();
        let missing = directory.path().join("missing.json");
        assert_eq!(
            load(&missing).unwrap_err(),
            ConfigError::NotFound {
                path: missing.clone()
            }
        );
        // A directory exists but cannot be read as a file.
        assert!(matches!(
            load(directory.path()).unwrap_err(),
            ConfigError::Io { .. }
        ));
        let cases: [(&[u8], &str); 3] = [
            (b"{\"users\": [", "ends too early"),
            (b"\xff\xfe{}", "not UTF-8"),
            (
                b"{\"users\": [{\"username\": \"\"}]}",
                "field \"username\" is empty",
            ),
        ];
        for (bytes, words) in cases {
            let path = directory.path().join("config.json");
            fs::write(&path, bytes).unwrap();
            let shown = load(&path).unwrap_err().to_string();
            assert!(shown.starts_with(&path.display().to_string()), "{shown}");
            assert!(shown.contains(words), "{shown}");
            // Loading never touches the file, even when it is bad.
            assert_eq!(fs::read(&path).unwrap(), bytes);
        }
        let path = directory.path().join("config.json");
        fs::write(&path, "{\"users\": []}").unwrap();
        let (config, _) = load(&path).unwrap();
        assert!(config.users.is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn new_file_gets_mode_0600_and_no_temp_file_stays() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("config.json");
        assert_eq!(
            write_atomic(&path, b"hello\n").unwrap(),
            WriteOutcome::Renamed
        );
        assert_eq!(fs::read(&path).unwrap(), b"hello\n");
        assert_eq!(mode_of(&path), 0o600);
        assert_eq!(files_in(directory.path()), ["config.json"]);
    }

    #[cfg(unix)]
    #[test]
    fn existing_file_keeps_its_mode_and_gets_new_content() {
        let cases = [0o640, 0o600, 0o644, 0o660];
        for mode in cases {
            let directory = tempfile::tempdir().unwrap();
            let path = directory.path().join("config.json");
            fs::write(&path, "old content that is longer than the new one\n").unwrap();
            set_mode(&path, mode);
            assert_eq!(
                write_atomic(&path, b"new\n").unwrap(),
                WriteOutcome::Renamed
            );
            assert_eq!(fs::read(&path).unwrap(), b"new\n");
            assert_eq!(mode_of(&path), mode, "mode {mode:o}");
            assert_eq!(files_in(directory.path()), ["config.json"]);
        }
    }

    #[cfg(unix)]
    #[test]
    fn symlink_is_followed_and_kept() {
        let directory = tempfile::tempdir().unwrap();
        let real = directory.path().join("real.json");
        let link = directory.path().join("link.json");
        fs::write(&real, "old").unwrap();
        std::os::unix::fs::symlink(&real, &link).unwrap();
        write_atomic(&link, b"new").unwrap();
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read(&real).unwrap(), b"new");
        assert_eq!(files_in(directory.path()), ["link.json", "real.json"]);
    }

    #[cfg(unix)]
    #[test]
    fn refused_rename_falls_back_to_writing_in_place() {
        const EBUSY: i32 = 16;
        const EXDEV: i32 = 18;
        let cases: [(i32, &[u8], &[u8]); 4] = [
            (EBUSY, b"a much longer old content\n", b"short\n"),
            (EBUSY, b"old\n", b"a much longer new content\n"),
            (EXDEV, b"old content\n", b"new content\n"),
            (EBUSY, b"old\n", b""),
        ];
        for (errno, old, new) in cases {
            let directory = tempfile::tempdir().unwrap();
            let path = directory.path().join("config.json");
            fs::write(&path, old).unwrap();
            set_mode(&path, 0o640);
            let n_calls = Cell::new(0);
            let refuse = |from: &Path, to: &Path| {
                n_calls.set(n_calls.get() + 1);
                // The temp file is complete and next to the target when rename is tried.
                assert_eq!(from.parent(), to.parent());
                assert!(from.file_name().unwrap().to_string_lossy().starts_with('.'));
                assert_eq!(fs::read(from).unwrap(), new);
                assert_eq!(mode_of(from), 0o640);
                Err(io::Error::from_raw_os_error(errno))
            };
            let outcome = write_atomic_with_rename(&path, new, refuse).unwrap();
            assert_eq!(outcome, WriteOutcome::WroteInPlace);
            assert_eq!(n_calls.get(), 1);
            assert_eq!(fs::read(&path).unwrap(), new);
            assert_eq!(mode_of(&path), 0o640);
            assert_eq!(files_in(directory.path()), ["config.json"]);
        }
    }

    #[test]
    fn other_rename_errors_leave_the_original_untouched() {
        const EACCES: i32 = 13;
        let cases = [
            io::Error::from_raw_os_error(EACCES),
            io::Error::other("simulated failure"),
        ];
        for error in cases {
            let directory = tempfile::tempdir().unwrap();
            let path = directory.path().join("config.json");
            fs::write(&path, "original\n").unwrap();
            let kind = error.kind();
            let error = Cell::new(Some(error));
            let fail = |_: &Path, _: &Path| Err(error.take().unwrap());
            let result = write_atomic_with_rename(&path, b"new\n", fail);
            assert_eq!(result.unwrap_err().kind(), kind);
            assert_eq!(fs::read(&path).unwrap(), b"original\n");
            assert_eq!(files_in(directory.path()), ["config.json"]);
        }
    }

    #[cfg(unix)]
    #[test]
    fn unwritable_directory_fails_without_touching_anything() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("config.json");
        fs::write(&path, "original\n").unwrap();
        set_mode(directory.path(), 0o500);
        let result = write_atomic(&path, b"new\n");
        set_mode(directory.path(), 0o700);
        // Root ignores directory permissions; the test only means something for others.
        if result.is_err() {
            assert_eq!(fs::read(&path).unwrap(), b"original\n");
            assert_eq!(files_in(directory.path()), ["config.json"]);
        }
    }

    #[test]
    fn leftover_temp_files_are_recognised_by_name() {
        let prefix = ".c.json.";
        let cases = [
            (".c.json.123.4.tmp", Some(123)),
            (".c.json.tokens.123.0.tmp", Some(123)),
            (".c.json.bak.1.123.0.tmp", Some(123)),
            (".c.json.in-place", None),
            (".c.json.123.tmp", None),
            (".other.json.123.4.tmp", None),
            ("c.json.bak.1", None),
        ];
        for (name, pid) in cases {
            assert_eq!(temp_file_pid(name, prefix), pid, "{name}");
        }
    }

    #[test]
    fn temp_file_names_are_hidden_and_unique() {
        let first = temp_file_name("config.json".as_ref());
        let second = temp_file_name("config.json".as_ref());
        assert_ne!(first, second);
        let first = first.to_string_lossy();
        let expected_start = format!(".config.json.{}.", std::process::id());
        assert!(first.starts_with(&expected_start), "{first}");
        assert!(first.ends_with(".tmp"), "{first}");
    }

    #[test]
    fn written_document_loads_back() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("config.json");
        fs::write(
            &path,
            "{\"_comment\": \"keep me\", \"users\": [{\"username\": \"alice\", \"client_id\": \"c\", \"access_token\": \"old\"}]}",
        )
        .unwrap();
        let (_, mut document) = load(&path).unwrap();
        let alice = crate::base::ids::Login::new("alice");
        assert!(document.set_user_field(&alice, config::Field::AccessToken, "new".into()));
        write_atomic(&path, document.to_json_string().as_bytes()).unwrap();
        let (config, _) = load(&path).unwrap();
        assert_eq!(config.users[0].access_token.expose(), "new");
        assert!(fs::read_to_string(&path)
            .unwrap()
            .contains("\"_comment\": \"keep me\""));
    }

    fn valid(n: usize) -> Vec<u8> {
        let padding = "x".repeat(n);
        format!("{{\"users\": [], \"note\": \"version {n} {padding}\"}}\n").into_bytes()
    }

    fn parses(path: &Path) -> bool {
        load(path).is_ok()
    }

    #[cfg(unix)]
    #[test]
    fn backups_keep_the_last_three_versions_with_the_config_mode() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("config.json");
        fs::write(&path, valid(0)).unwrap();
        set_mode(&path, 0o640);
        for n in 1..=5 {
            let previous = fs::read(&path).unwrap();
            let replaced = replace_config(&path, &valid(n), Some(&previous), &RealDisk).unwrap();
            assert_eq!(replaced.outcome, WriteOutcome::Renamed);
            assert!(replaced.backup_error.is_none());
        }
        assert_eq!(fs::read(&path).unwrap(), valid(5));
        for (n, version) in [(1, 4), (2, 3), (3, 2)] {
            let backup = backup_path(&path, n);
            assert_eq!(fs::read(&backup).unwrap(), valid(version), "bak.{n}");
            assert_eq!(mode_of(&backup), 0o640, "bak.{n}");
        }
        assert_eq!(
            files_in(directory.path()),
            [
                "config.json",
                "config.json.bak.1",
                "config.json.bak.2",
                "config.json.bak.3"
            ]
        );
    }

    #[test]
    fn a_file_changed_since_it_was_read_is_not_replaced() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("config.json");
        fs::write(&path, valid(1)).unwrap();
        let result = replace_config(&path, &valid(2), Some(&valid(0)), &RealDisk);
        assert!(matches!(result, Err(ReplaceError::Changed)), "{result:?}");
        assert_eq!(fs::read(&path).unwrap(), valid(1));
        // The backups are rotated before the check (the version the write was based on is
        // kept); no temp file stays.
        assert_eq!(
            files_in(directory.path()),
            ["config.json", "config.json.bak.1"]
        );
        let result = replace_config(&path, &valid(2), None, &RealDisk);
        assert!(matches!(result, Err(ReplaceError::Changed)), "{result:?}");
    }

    #[test]
    fn a_full_disk_during_an_in_place_write_leaves_the_previous_content() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("config.json");
        fs::write(&path, valid(1)).unwrap();
        let old_len = valid(1).len();
        let new = valid(200);
        // Room for the old content and a little more: the longer new content does not fit.
        let disk = test_disk::BindMountedFullDisk::new(&path, old_len + 10);
        let result = replace_config(&path, &new, Some(&valid(1)), &disk);
        match result {
            Err(ReplaceError::Io(error)) => {
                assert_eq!(error.raw_os_error(), Some(test_disk::ENOSPC))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(fs::read(&path).unwrap(), valid(1), "previous content back");
        assert!(parses(&path));
        // The backup of the previous version stays; the copy of the new one is gone.
        assert_eq!(
            files_in(directory.path()),
            ["config.json", "config.json.bak.1"]
        );

        disk.set_limit(usize::MAX);
        let replaced = replace_config(&path, &new, Some(&valid(1)), &disk).unwrap();
        assert_eq!(replaced.outcome, WriteOutcome::WroteInPlace);
        assert_eq!(fs::read(&path).unwrap(), new);
        assert_eq!(
            files_in(directory.path()),
            ["config.json", "config.json.bak.1"]
        );
    }

    #[test]
    fn an_in_place_write_cut_off_for_good_is_completed_at_the_next_start() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("config.json");
        fs::write(&path, valid(1)).unwrap();
        let new = valid(200);
        // On a copy-on-write volume the last 40 free bytes go to the new content, and then
        // not even the previous content can be written back: a crash would look the same.
        let mut disk = test_disk::BindMountedFullDisk::new(&path, 40);
        disk.copy_on_write = true;
        assert!(replace_config(&path, &new, Some(&valid(1)), &disk).is_err());
        assert!(!parses(&path), "cut off after 40 bytes");
        assert_eq!(fs::read(in_place_copy_path(&path)).unwrap(), new);

        assert_eq!(
            recover_interrupted_write(&path).unwrap(),
            Recovery::Completed
        );
        assert_eq!(fs::read(&path).unwrap(), new);
        assert!(!in_place_copy_path(&path).exists());
        assert_eq!(recover_interrupted_write(&path).unwrap(), Recovery::Nothing);
    }

    #[test]
    fn recovery_keeps_a_later_hand_edit_and_replaces_a_damaged_file() {
        // (how long after the copy the config was last changed, expected recovery)
        let cases = [
            (Duration::from_secs(600), Recovery::CopyDropped),
            // Changed together with the copy: the interrupted write itself, which may
            // parse and still be wrong.
            (Duration::ZERO, Recovery::Completed),
        ];
        for (later, expected) in cases {
            let directory = tempfile::tempdir().unwrap();
            let path = directory.path().join("config.json");
            let copy = in_place_copy_path(&path);
            fs::write(&copy, valid(1)).unwrap();
            fs::write(&path, valid(2)).unwrap();
            let now = std::time::SystemTime::now();
            let set_modified = |path: &Path, at| {
                let file = File::options().write(true).open(path).unwrap();
                file.set_modified(at).unwrap();
            };
            set_modified(&copy, now - Duration::from_secs(900));
            set_modified(&path, now - Duration::from_secs(900) + later);
            assert_eq!(
                recover_interrupted_write(&path).unwrap(),
                expected,
                "{later:?}"
            );
            assert!(!copy.exists());
            match expected {
                Recovery::CopyDropped => assert_eq!(fs::read(&path).unwrap(), valid(2)),
                _ => {
                    assert_eq!(fs::read(&path).unwrap(), valid(1));
                    assert_eq!(fs::read(backup_path(&path, 1)).unwrap(), valid(2));
                }
            }
        }
    }
}
