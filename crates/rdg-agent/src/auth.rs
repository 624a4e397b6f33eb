//! The group's shared HMAC key (`auth.keyFile`), read the same way by the agent and by
//! `rdg status`: the file's bytes with trailing whitespace removed, so a key written by
//! `openssl rand -hex 32 > key` and one edited by hand with a final newline are the same key.

use rdg_core::config::GroupConfig;
use std::path::PathBuf;

/// Why the key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file cannot be read.
    #[error("auth.keyFile: cannot read {path}: {source}")]
    Read {
        /// The key file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The key file holds nothing.
    #[error(
        "auth.keyFile: {path} is empty; put a random secret in it (e.g. `openssl rand -hex 32`)"
    )]
    Empty {
        /// The key file.
        path: PathBuf,
    },
}

/// The HMAC key of `cfg`, or None when the group does not authenticate heartbeats.
pub fn load_key(cfg: &GroupConfig) -> Result<Option<Vec<u8>>, KeyError> {
    let Some(auth) = &cfg.auth else {
        return Ok(None);
    };
    let path = PathBuf::from(&auth.key_file);
    let mut bytes = std::fs::read(&path).map_err(|source| KeyError::Read {
        path: path.clone(),
        source,
    })?;
    while bytes.last().is_some_and(|b| b.is_ascii_whitespace()) {
        bytes.pop();
    }
    if bytes.is_empty() {
        return Err(KeyError::Empty { path });
    }
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdg_core::config::Auth;

    #[test]
    fn trailing_whitespace_is_not_part_of_the_key() {
        let dir = std::env::temp_dir().join(format!("rdg-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("k");
        let mut cfg = GroupConfig::from_yaml("name: g\n").unwrap();
        assert_eq!(load_key(&cfg).unwrap(), None);
        cfg.auth = Some(Auth {
            key_file: file.to_string_lossy().into_owned(),
        });
        assert!(matches!(load_key(&cfg), Err(KeyError::Read { .. })));
        std::fs::write(&file, "s3cret\n").unwrap();
        assert_eq!(load_key(&cfg).unwrap().as_deref(), Some(&b"s3cret"[..]));
        std::fs::write(&file, " \n").unwrap();
        assert!(matches!(load_key(&cfg), Err(KeyError::Empty { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
