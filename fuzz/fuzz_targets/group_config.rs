//! Group configuration: `GroupConfig::from_yaml` / `from_json` (what `GroupConfig::load` and
//! the operator run on untrusted text), then `validate()` / `problems()` and rendering back
//! to YAML and JSON. Must never panic. The first input byte picks YAML or JSON; the rest is
//! the document (non-UTF-8 inputs are skipped: `load` reads the file with `read_to_string`).
//!
//! Invariants: `validate()` agrees with `problems()`; a configuration that parses renders to
//! YAML and JSON that parse back to the same configuration (the operator ships the rendered
//! YAML to the member pods, so a lossy rendering would change what they run).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rdg_core::config::GroupConfig;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let parsed = if mode & 1 == 0 {
        GroupConfig::from_yaml(text)
    } else {
        GroupConfig::from_json(text)
    };
    let cfg = match parsed {
        Ok(cfg) => cfg,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let problems = cfg.problems();
    for p in &problems {
        let _ = p.to_string();
    }
    match cfg.validate() {
        Ok(()) => assert!(
            problems.is_empty(),
            "validate() passed but problems() = {problems:?}"
        ),
        Err(v) => assert!(!v.is_empty(), "validate() failed without a problem"),
    }
    let _ = cfg.is_standalone();
    let _ = cfg.role_file_path();
    for m in &cfg.members {
        let _ = cfg.member(&m.name);
    }
    for n in &cfg.networks {
        let _ = cfg.network_index(&n.name);
    }

    let yaml = serde_yaml_ng::to_string(&cfg).expect("a configuration renders to YAML");
    let back = GroupConfig::from_yaml(&yaml)
        .unwrap_or_else(|e| panic!("rendered YAML does not parse: {e}\n{yaml}"));
    assert_eq!(back, cfg, "YAML rendering is lossy:\n{yaml}");
    let json = serde_json::to_string(&cfg).expect("a configuration renders to JSON");
    let back = GroupConfig::from_json(&json)
        .unwrap_or_else(|e| panic!("rendered JSON does not parse: {e}\n{json}"));
    assert_eq!(back, cfg, "JSON rendering is lossy:\n{json}");
});
