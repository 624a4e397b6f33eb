//! `rdg crd`: prints the `RedundantGroup` CustomResourceDefinition (YAML) generated from the
//! types in `rdg-operator`. `crds/redundantgroups.rdg.infocast.io.yaml` is this output; a test
//! (`crates/rdg-operator/tests/crd.rs`) fails when the two differ.

use std::io::Write;
use std::process::ExitCode;

/// Writes the CRD to stdout; exit 1 when stdout cannot be written.
pub fn run() -> ExitCode {
    let yaml = rdg_operator::crd_yaml();
    let mut out = std::io::stdout().lock();
    match out.write_all(yaml.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rdg crd: cannot write the CRD: {e}");
            ExitCode::FAILURE
        }
    }
}
