//! The credential that `POST /switchover` requires: a random token in a file only its owner may
//! read (root, on a server), created by the agent when it is missing. `rdg switchover` and the
//! Kubernetes reporter send it as `Authorization: Bearer TOKEN`; `/status`, `/healthz` and
//! `/metrics` stay open and read-only.

use crate::private_file::{PrivateReadError, read_owner_only};
use std::fmt;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use subtle::ConstantTimeEq;

/// Shortest token accepted from a file an administrator wrote (128 bits as hex).
const MIN_LEN: usize = 32;
/// Longest token accepted (a file this long is not a token).
const MAX_LEN: usize = 512;
/// Random bytes in a generated token (printed as hex).
const GENERATED_BYTES: usize = 32;

/// The switchover credential. Its `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// Why the token file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Reading, creating or renaming the file failed.
    #[error("switchover token file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Others than its owner may read or write it.
    #[error(
        "switchover token file {path} is accessible to group or others (mode {mode:o}); \
         run `chmod 600 {path}`"
    )]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The content is not a token.
    #[error(
        "switchover token file {path}: {why} (expected one line of {MIN_LEN} to {MAX_LEN} \
         printable characters without spaces)"
    )]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: &'static str,
    },
}

impl Token {
    /// A fresh random token (hex of 32 bytes from the operating system's generator).
    pub fn generate() -> Token {
        let bytes: [u8; GENERATED_BYTES] = rand::random();
        Token(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// Parses the content of a token file: one line, surrounding whitespace ignored.
    pub fn parse(text: &str) -> Result<Token, &'static str> {
        let t = text.trim();
        if t.is_empty() {
            return Err("the file is empty");
        }
        if t.len() < MIN_LEN {
            return Err("the token is too short");
        }
        if t.len() > MAX_LEN {
            return Err("the token is too long");
        }
        if !t.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("the token holds spaces, line breaks or non-ASCII characters");
        }
        Ok(Token(t.to_string()))
    }

    /// True when `presented` is this token; compared in constant time.
    pub fn matches(&self, presented: &str) -> bool {
        self.0.as_bytes().ct_eq(presented.as_bytes()).into()
    }

    /// The `Authorization` header value that carries it.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.0)
    }

    /// Checks an `Authorization` header value: `Bearer TOKEN` (scheme case-insensitive).
    pub fn accepts_header(&self, header: Option<&str>) -> bool {
        let Some((scheme, presented)) = header.and_then(|h| h.trim().split_once(' ')) else {
            return false;
        };
        scheme.eq_ignore_ascii_case("bearer") && self.matches(presented.trim())
    }
}

/// Where a member's token lives: `status.tokenFile`, or else beside the role file, with the
/// extension `token` (`/run/rdg/infocast.role` → `/run/rdg/infocast.token`).
pub fn path_for(config_token_file: Option<&str>, role_file: &Path) -> PathBuf {
    match config_token_file {
        Some(p) => PathBuf::from(p),
        None => role_file.with_extension("token"),
    }
}

/// Reads the token from `path`, which must be readable by its owner only.
pub fn read(path: &Path) -> Result<Token, TokenError> {
    let text = read_owner_only(path).map_err(|e| match e {
        PrivateReadError::Io(source) => TokenError::Io {
            path: path.to_path_buf(),
            source,
        },
        PrivateReadError::Exposed(mode) => TokenError::Permissions {
            path: path.to_path_buf(),
            mode,
        },
    })?;
    Token::parse(&text).map_err(|why| TokenError::Malformed {
        path: path.to_path_buf(),
        why,
    })
}

/// Reads the token at `path`, or creates the file (mode 0600, its directory if needed) with a
/// fresh token when there is none. The file is written under a temporary name and renamed, so
/// a reader never sees half a token.
pub fn load_or_create(path: &Path) -> Result<Token, TokenError> {
    match read(path) {
        Err(TokenError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
        other => return other,
    }
    let io = |source| TokenError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let token = Token::generate();
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp.{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(format!("{}\n", token.0).as_bytes())?;
            f.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// An empty directory of its own under the system's temporary directory.
    fn scratch_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("rdg-token-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_created_token_is_private_and_read_back_unchanged() {
        let dir = scratch_dir("created");
        let path = dir.join("sub/g.token");
        let t = load_or_create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(load_or_create(&path).unwrap(), t);
        assert_eq!(read(&path).unwrap(), t);
        assert_ne!(Token::generate(), t, "two generated tokens are equal");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_readable_or_malformed_file_is_refused_with_its_reason() {
        let dir = scratch_dir("refused");
        let path = dir.join("g.token");
        std::fs::write(&path, "a".repeat(40)).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = load_or_create(&path).unwrap_err();
        assert!(e.to_string().contains("chmod 600"), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(read(&path).is_ok());
        for bad in ["", "short", "with a space in the middle of it, long enough"] {
            std::fs::write(&path, bad).unwrap();
            let e = read(&path).unwrap_err();
            assert!(matches!(e, TokenError::Malformed { .. }), "{bad:?}: {e}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn only_the_bearer_header_with_the_token_is_accepted() {
        let t = Token::parse(&"x".repeat(32)).unwrap();
        assert!(t.accepts_header(Some(&t.bearer())));
        assert!(t.accepts_header(Some(&format!("bearer {}", "x".repeat(32)))));
        assert!(!t.accepts_header(None));
        assert!(!t.accepts_header(Some("Bearer")));
        assert!(!t.accepts_header(Some(&format!("Basic {}", "x".repeat(32)))));
        assert!(!t.accepts_header(Some(&format!("Bearer {}", "x".repeat(31)))));
        assert!(!t.accepts_header(Some(&format!("Bearer {}y", "x".repeat(32)))));
        assert_eq!(format!("{t:?}"), "Token(<redacted>)");
    }
}
