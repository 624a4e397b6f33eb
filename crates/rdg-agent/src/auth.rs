//! The group's shared HMAC keys (`auth.keyFile`, or `auth.keyFiles` while rotating), read the
//! same way by the agent and by `rdg status`.

use rdg_core::config::GroupConfig;
use rdg_core::wire::{self, DecodeError, EncodeError, Message};
use std::fmt;
use std::path::PathBuf;

/// Why a key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A key file cannot be read.
    #[error("{field}: cannot read {path}: {source}")]
    Read {
        /// The configuration key naming the file (`auth.keyFile`, `auth.keyFiles[1]`).
        field: String,
        /// The key file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A key file holds nothing.
    #[error("{field}: {path} is empty; put a random secret in it (e.g. `openssl rand -hex 32`)")]
    Empty {
        /// The configuration key naming the file.
        field: String,
        /// The key file.
        path: PathBuf,
    },
}

/// The group's HMAC keys in order: datagrams are signed with the first and accepted with any,
/// so keys can be rotated without a rejected heartbeat. Empty: no authentication. Its `Debug`
/// shows only how many keys there are.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Keys(Vec<Vec<u8>>);

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keys({} keys)", self.0.len())
    }
}

impl Keys {
    /// Keys from their bytes, the signing key first.
    pub fn new(keys: Vec<Vec<u8>>) -> Keys {
        Keys(keys)
    }

    /// How many keys verify.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when heartbeats are not authenticated.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The key datagrams are signed with.
    pub fn signing(&self) -> Option<&[u8]> {
        self.0.first().map(Vec::as_slice)
    }

    /// Encodes `msg`, signed with the first key.
    pub fn encode(&self, msg: &Message) -> Result<Vec<u8>, EncodeError> {
        wire::encode(msg, self.signing())
    }

    /// Decodes a datagram of `group`, accepting a MAC made with any key.
    pub fn decode(&self, bytes: &[u8], group: &str) -> Result<Message, DecodeError> {
        match self.0.as_slice() {
            [] => wire::decode(bytes, group, None),
            [one] => wire::decode(bytes, group, Some(one)),
            many => {
                let keys: Vec<&[u8]> = many.iter().map(Vec::as_slice).collect();
                wire::decode_with_keys(bytes, group, &keys)
            }
        }
    }
}

/// The HMAC keys of `cfg` (none when the group does not authenticate heartbeats). Each file's
/// bytes with trailing whitespace removed, so a key written by `openssl rand -hex 32 > key` and
/// one edited by hand with a final newline are the same key.
pub fn load_keys(cfg: &GroupConfig) -> Result<Keys, KeyError> {
    let Some(auth) = &cfg.auth else {
        return Ok(Keys::default());
    };
    let field = |i: usize| match &auth.key_file {
        Some(_) => "auth.keyFile".to_string(),
        None => format!("auth.keyFiles[{i}]"),
    };
    let mut keys = Vec::new();
    for (i, file) in auth.files().into_iter().enumerate() {
        let path = PathBuf::from(file);
        let mut bytes = std::fs::read(&path).map_err(|source| KeyError::Read {
            field: field(i),
            path: path.clone(),
            source,
        })?;
        while bytes.last().is_some_and(|b| b.is_ascii_whitespace()) {
            bytes.pop();
        }
        if bytes.is_empty() {
            return Err(KeyError::Empty {
                field: field(i),
                path,
            });
        }
        keys.push(bytes);
    }
    Ok(Keys(keys))
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
        assert!(load_keys(&cfg).unwrap().is_empty());
        cfg.auth = Some(Auth::key_file(file.to_string_lossy()));
        assert!(matches!(load_keys(&cfg), Err(KeyError::Read { .. })));
        std::fs::write(&file, "s3cret\n").unwrap();
        assert_eq!(load_keys(&cfg).unwrap().signing(), Some(&b"s3cret"[..]));
        std::fs::write(&file, " \n").unwrap();
        let e = load_keys(&cfg).unwrap_err();
        assert!(e.to_string().starts_with("auth.keyFile: "), "{e}");
        assert!(matches!(e, KeyError::Empty { .. }));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_rotation_signs_with_the_first_key_and_accepts_any() {
        let dir = std::env::temp_dir().join(format!("rdg-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (new, old) = (dir.join("new"), dir.join("old"));
        std::fs::write(&new, "new key\n").unwrap();
        std::fs::write(&old, "old key").unwrap();
        let mut cfg = GroupConfig::from_yaml("name: g\n").unwrap();
        cfg.auth = Some(Auth {
            key_file: None,
            key_files: vec![
                new.to_string_lossy().into_owned(),
                old.to_string_lossy().into_owned(),
                dir.join("missing").to_string_lossy().into_owned(),
            ],
        });
        let e = load_keys(&cfg).unwrap_err();
        assert!(
            e.to_string().starts_with("auth.keyFiles[2]: cannot read"),
            "{e}"
        );
        cfg.auth.as_mut().unwrap().key_files.pop();
        let both = load_keys(&cfg).unwrap();
        assert_eq!((both.len(), both.signing()), (2, Some(&b"new key"[..])));
        assert_eq!(format!("{both:?}"), "Keys(2 keys)");
        let msg = Message {
            kind: rdg_core::wire::MessageType::StatusQuery,
            group: "g".into(),
            member: "q".into(),
            state: rdg_core::State::SS,
            temporal: rdg_core::TemporalState::None,
            priority: 0,
            epoch: 0,
            incarnation: 1,
            sequence: 1,
            network: 0,
            flags: rdg_core::wire::Flags::default(),
            hot: String::new(),
            hot_heard_ago: None,
            content: None,
        };
        let only_old = Keys::new(vec![b"old key".to_vec()]);
        let signed_old = only_old.encode(&msg).unwrap();
        let signed_new = both.encode(&msg).unwrap();
        assert!(both.decode(&signed_old, "g").is_ok());
        assert!(both.decode(&signed_new, "g").is_ok());
        assert_eq!(only_old.decode(&signed_new, "g"), Err(DecodeError::BadMac));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
