//! Generated set-top box boot descriptors (`type: bootcastinfo` objects with `bootcast:`
//! fields instead of a `source` file).
//!
//! The descriptor is UTF-8 text, one `key=value` line each, `\n`-terminated, in this order:
//!
//! ```text
//! name=bootcast_1500
//! kernelAddress=224.2.2.3:22223
//! kernelName=vmlinuz-1500
//! kernelVersion=2.6.28-7
//! kernelArgs=console=ttyS0,115200      (only when given)
//! model=stb-1500                        (each `extra` entry, sorted by key)
//! ```
//!
//! Keys are the configuration's field names, so the file and the descriptor read the same.
//! Values never contain control characters (the configuration check refuses them).

use rdg_core::config::Bootcast;
use std::fmt::Write;

/// The descriptor text of object `name` with these fields.
pub fn descriptor(name: &str, b: &Bootcast) -> String {
    let mut s = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(s, "name={name}");
    let _ = writeln!(s, "kernelAddress={}", b.kernel_address);
    let _ = writeln!(s, "kernelName={}", b.kernel_name);
    let _ = writeln!(s, "kernelVersion={}", b.kernel_version);
    if let Some(args) = &b.kernel_args {
        let _ = writeln!(s, "kernelArgs={args}");
    }
    for (k, v) in &b.extra {
        let _ = writeln!(s, "{k}={v}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn lines_in_the_documented_order() {
        let b = Bootcast {
            kernel_address: "224.2.2.3:22223".parse().unwrap(),
            kernel_name: "vmlinuz".into(),
            kernel_version: "2.6.28-7".into(),
            kernel_args: None,
            extra: BTreeMap::from([("z".into(), "1".into()), ("model".into(), "stb".into())]),
        };
        assert_eq!(
            descriptor("bootcast_1900", &b),
            "name=bootcast_1900\nkernelAddress=224.2.2.3:22223\nkernelName=vmlinuz\n\
             kernelVersion=2.6.28-7\nmodel=stb\nz=1\n"
        );
    }
}
