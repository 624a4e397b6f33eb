//! `rdg install --to DIR`: copies this binary to DIR/rdg. Member pods use it to hand `rdg gate`
//! to a third-party transmitter image that does not contain rdg (distroless images have no
//! `cp`).

use clap::Args as ClapArgs;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `rdg install`.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Directory to copy the binary into (as `rdg`, mode 0755).
    #[arg(long)]
    to: PathBuf,
}

/// Copies the running binary; exit 1 with the reason when it cannot.
pub fn run(args: &Args) -> ExitCode {
    use std::os::unix::fs::PermissionsExt;
    let target = args.to.join("rdg");
    let copy = std::env::current_exe().and_then(|exe| {
        let tmp = args.to.join(".rdg.tmp");
        std::fs::copy(&exe, &tmp)?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
        std::fs::rename(&tmp, &target)
    });
    match copy {
        Ok(()) => {
            println!("installed {}", target.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cannot install rdg into {}: {e}", args.to.display());
            ExitCode::FAILURE
        }
    }
}
