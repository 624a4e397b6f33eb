//! Reading a secret from a file only its owner may read (the switchover token, the SMTP
//! login): a file that group or others can read is refused rather than trusted.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Why a private file was not read.
#[derive(Debug)]
pub enum PrivateReadError {
    /// It could not be read.
    Io(std::io::Error),
    /// Group or others may access it; the permission bits.
    Exposed(u32),
}

/// The text of `path`, when only its owner may access it.
pub fn read_owner_only(path: &Path) -> Result<String, PrivateReadError> {
    let meta = std::fs::metadata(path).map_err(PrivateReadError::Io)?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(PrivateReadError::Exposed(mode));
    }
    std::fs::read_to_string(path).map_err(PrivateReadError::Io)
}
