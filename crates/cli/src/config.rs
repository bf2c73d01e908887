//! Layered configuration with figment: built-in defaults, then a TOML file
//! (`--config`), then `RUVECTOR_*` environment variables (nested keys
//! separated by `__`, e.g. `RUVECTOR_LIMITS__MAX_K=100`), then command-line
//! flags — each layer overriding the one before.

use std::path::PathBuf;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Loads a `T` from the layers; `flags` holds only the flags the user gave
/// (`None` fields are skipped, so they do not override lower layers).
pub fn load<T: DeserializeOwned + Serialize + Default>(
    file: Option<&PathBuf>,
    flags: impl Serialize,
) -> anyhow::Result<T> {
    figment(file, Serialized::defaults(T::default()), flags)?
        .extract()
        .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))
}

/// Like [`load`] for a `T` that lives under the `section` key (the
/// router's `[router]` table, `RUVECTOR_ROUTER__*`); `flags` are nested
/// under that key too.
pub fn load_section<T: DeserializeOwned + Serialize + Default>(
    file: Option<&PathBuf>,
    section: &str,
    flags: impl Serialize,
) -> anyhow::Result<T> {
    figment(file, Serialized::default(section, T::default()), flags)?
        .extract_inner(section)
        .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))
}

fn figment(
    file: Option<&PathBuf>,
    defaults: Serialized<impl Serialize>,
    flags: impl Serialize,
) -> anyhow::Result<Figment> {
    let mut figment = Figment::from(defaults);
    if let Some(path) = file {
        if !path.is_file() {
            anyhow::bail!("config file {} does not exist", path.display());
        }
        figment = figment.merge(Toml::file_exact(path));
    }
    Ok(figment.merge(Env::prefixed("RUVECTOR_").split("__")).merge(Serialized::defaults(flags)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
    #[serde(default)]
    struct Sample {
        addr: String,
        nested: Nested,
    }

    #[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
    #[serde(default)]
    struct Nested {
        k: u32,
        j: u32,
    }

    #[derive(Serialize)]
    struct Flags {
        #[serde(skip_serializing_if = "Option::is_none")]
        addr: Option<String>,
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail closure signature
    fn layers_override_in_order() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("c.toml", "addr = \"file\"\n[nested]\nk = 1\nj = 1\n")?;
            jail.set_env("RUVECTOR_NESTED__K", "2");
            let path = PathBuf::from("c.toml");
            let got: Sample = load(Some(&path), Flags { addr: None }).map_err(|e| e.to_string())?;
            assert_eq!(got, Sample { addr: "file".into(), nested: Nested { k: 2, j: 1 } });
            let got: Sample = load(Some(&path), Flags { addr: Some("flag".into()) }).map_err(|e| e.to_string())?;
            assert_eq!(got.addr, "flag");
            Ok(())
        });
    }
}
