//! `rdg install --to DIR`: copies this binary to DIR/rdg. Member pods use it to hand `rdg gate`
//! to a third-party transmitter image that does not contain rdg (distroless images have no
//! `cp`). With `--kubectl-plugin` it also links `kubectl-rdg` and `kubectl_complete-rdg` to it
//! there, for installing by hand where the Debian package (which ships the links) is not used.

use clap::Args as ClapArgs;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `rdg install`.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Directory to copy the binary into (as `rdg`, mode 0755).
    #[arg(long)]
    to: PathBuf,
    /// Also link `kubectl-rdg` and `kubectl_complete-rdg` to it (the kubectl plugin; DIR must
    /// be on kubectl's PATH).
    #[arg(long)]
    kubectl_plugin: bool,
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
    let links = || -> std::io::Result<()> {
        if args.kubectl_plugin {
            for name in [super::plugin::PLUGIN_NAME, super::plugin::COMPLETE_NAME] {
                let link = args.to.join(name);
                match std::fs::remove_file(&link) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
                std::os::unix::fs::symlink("rdg", &link)?;
                println!("linked {} -> rdg", link.display());
            }
        }
        Ok(())
    };
    match copy.and_then(|()| links()) {
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
