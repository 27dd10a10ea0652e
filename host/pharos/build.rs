//! Records the git revision and compiler version for `pharos version` and
//! `pharos_build_info`; a build outside a git checkout says "unknown".

use std::process::Command;

fn main() {
    let revision = output("git", &["rev-parse", "--short=12", "HEAD"]);
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustc_version = output(&rustc, &["--version"])
        .split_whitespace()
        .nth(1)
        .unwrap_or("unknown")
        .to_string();
    println!("cargo:rustc-env=PHAROS_REVISION={revision}");
    println!("cargo:rustc-env=PHAROS_RUSTC_VERSION={rustc_version}");
    // Ask git where HEAD and the branch refs live: in a worktree `.git` is a file and
    // they sit elsewhere, and naming a path that does not exist makes cargo rerun this
    // script (and rebuild the crate) on every build.
    println!("cargo:rerun-if-changed=build.rs");
    for name in ["HEAD", "refs/heads"] {
        let path = output(
            "git",
            &["rev-parse", "--path-format=absolute", "--git-path", name],
        );
        if std::path::Path::new(&path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}

fn output(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}
