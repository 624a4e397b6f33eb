//! Operator rendering: a `RedundantGroupSpec` deserialized from JSON bytes (what the API
//! server hands the controller), then `rdg_operator::render::render(name, &spec)`.
//! Must never panic. Invariant: a spec that renders gives a configuration that validates, and
//! whose YAML (the ConfigMap content the member pods load) parses back to that configuration.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rdg_core::config::GroupConfig;
use rdg_operator::RedundantGroupSpec;
use rdg_operator::render::{self, render};

fuzz_target!(|data: &[u8]| {
    let Ok(spec) = serde_json::from_slice::<RedundantGroupSpec>(data) else {
        return;
    };
    let _ = serde_json::to_vec(&spec).expect("a spec serializes");
    match render("fuzz-group", &spec) {
        Ok(r) => {
            if let Err(p) = r.config.validate() {
                panic!("render() accepted a configuration that does not validate: {p:?}");
            }
            let _ = r.role_file();
            let back = GroupConfig::from_yaml(&r.yaml)
                .unwrap_or_else(|e| panic!("rendered YAML does not parse: {e}\n{}", r.yaml));
            assert_eq!(back, r.config, "rendered YAML is lossy:\n{}", r.yaml);
            let _ = render::hash(&[r.yaml.as_str()]);
        }
        Err(problems) => {
            assert!(!problems.is_empty(), "render() failed without a problem");
            for p in &problems {
                let _ = p.to_string();
            }
        }
    }
});
