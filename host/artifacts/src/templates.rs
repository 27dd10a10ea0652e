//! The Rust plugin templates of `sdk/rust/templates/<kind>/`, for
//! `pharos plugin new --lang rust`.
//!
//! Each template is three files. Their text holds two placeholders:
//!
//! | placeholder | replaced by |
//! |---|---|
//! | `{{name}}` | the plugin's package name (see [`check_name`]) |
//! | `{{sdk_path}}` | the `sdk/rust` directory of the Pharos source tree, which the new plugin depends on by path |
//!
//! `Cargo.toml.tmpl` is written out as `Cargo.toml` (the template is not a
//! manifest itself, so that Cargo never mistakes the template directory for a
//! package).

use std::io;
use std::path::Path;

use crate::PluginKind;

/// One file of a template.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TemplateFile {
    /// Where the file goes, relative to the new plugin's directory.
    pub path: &'static str,
    /// The text, placeholders included.
    pub contents: &'static str,
}

macro_rules! template {
    ($kind:literal) => {
        &[
            TemplateFile {
                path: "Cargo.toml",
                contents: include_str!(concat!(
                    "../../../sdk/rust/templates/",
                    $kind,
                    "/Cargo.toml.tmpl"
                )),
            },
            TemplateFile {
                path: "src/lib.rs",
                contents: include_str!(concat!(
                    "../../../sdk/rust/templates/",
                    $kind,
                    "/src/lib.rs"
                )),
            },
            TemplateFile {
                path: "README.md",
                contents: include_str!(concat!(
                    "../../../sdk/rust/templates/",
                    $kind,
                    "/README.md"
                )),
            },
        ]
    };
}

static EXPORTER: &[TemplateFile] = template!("exporter");
static RELABELER: &[TemplateFile] = template!("relabeler");
static NOTIFIER: &[TemplateFile] = template!("notifier");

/// The files of the Rust template for `kind`.
pub fn files(kind: PluginKind) -> &'static [TemplateFile] {
    match kind {
        PluginKind::Exporter => EXPORTER,
        PluginKind::Relabeler => RELABELER,
        PluginKind::Notifier => NOTIFIER,
    }
}

/// Checks that `name` can be the new plugin's package name: lower-case ASCII
/// letters, digits, `-` and `_`, starting with a letter, at most 64
/// characters. (It also names the metrics of the exporter template, where
/// `-` becomes `_`.)
pub fn check_name(name: &str) -> Result<(), String> {
    let starts_with_letter = name.chars().next().is_some_and(|c| c.is_ascii_lowercase());
    let allowed = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !starts_with_letter || !allowed || name.len() > 64 {
        return Err(format!(
            "{name:?} is not a plugin name: use lower-case letters, digits, `-` and `_`, \
             starting with a letter, at most 64 characters"
        ));
    }
    Ok(())
}

/// The text of a template file with the placeholders filled in.
///
/// `{{name}}` becomes `name`, except in Rust sources (`src/`), where `-` is
/// turned into `_` (the name is also used in metric names, which cannot hold
/// `-`). `{{sdk_path}}` becomes
/// `sdk_path` with forward slashes and escaped for a TOML string.
pub fn render(file: &TemplateFile, name: &str, sdk_path: &Path) -> String {
    let sdk = sdk_path
        .to_string_lossy()
        .replace('\\', "/")
        .replace('"', "\\\"");
    let name = if file.path.starts_with("src/") {
        name.replace('-', "_")
    } else {
        name.to_owned()
    };
    file.contents
        .replace("{{name}}", &name)
        .replace("{{sdk_path}}", &sdk)
}

/// Writes the template for `kind` into `dir` (created if missing) for a
/// plugin called `name` that depends on the SDK at `sdk_path`. Refuses to
/// overwrite an existing file.
pub fn instantiate(kind: PluginKind, dir: &Path, name: &str, sdk_path: &Path) -> io::Result<()> {
    check_name(name).map_err(|message| io::Error::new(io::ErrorKind::InvalidInput, message))?;
    for file in files(kind) {
        let path = dir.join(file.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|error| {
                io::Error::new(error.kind(), format!("{}: {error}", path.display()))
            })?;
        io::Write::write_all(&mut out, render(file, name, sdk_path).as_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_manifest_a_library_and_a_readme() {
        for kind in [
            PluginKind::Exporter,
            PluginKind::Relabeler,
            PluginKind::Notifier,
        ] {
            let paths: Vec<&str> = files(kind).iter().map(|f| f.path).collect();
            assert_eq!(paths, ["Cargo.toml", "src/lib.rs", "README.md"]);
            let manifest = files(kind)[0].contents;
            assert!(manifest.contains(&format!("kind = \"{}\"", kind.world())));
            assert!(manifest.contains("name = \"{{name}}\""));
            assert!(manifest.contains("path = \"{{sdk_path}}\""));
        }
    }

    #[test]
    fn rendering_fills_both_placeholders() {
        let manifest = &files(PluginKind::Exporter)[0];
        let text = render(manifest, "my-plugin", Path::new(r"C:\src\pharos\sdk\rust"));
        assert!(text.contains("name = \"my-plugin\""), "{text}");
        assert!(text.contains("path = \"C:/src/pharos/sdk/rust\""), "{text}");
        assert!(!text.contains("{{"), "{text}");
        let library = render(
            &files(PluginKind::Exporter)[1],
            "my-plugin",
            Path::new("/sdk"),
        );
        assert!(library.contains("\"my_plugin\""), "{library}");
        assert!(!library.contains("{{name}}"));
    }

    #[test]
    fn names_are_checked() {
        for good in ["a", "queue-exporter", "x_2"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "2x", "Upper", "a b", "a/b", "-a", &"a".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
