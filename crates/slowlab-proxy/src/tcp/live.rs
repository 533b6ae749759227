//! The effects in force, from the rules file's `[[tcp]]` tables and the flags, swapped on reload.
//!
//! A connection takes the effects in force when it is accepted and keeps them until it closes, as
//! a request keeps the rule it matched in serve: a reload (SIGHUP, `--watch`) changes new
//! connections only, and a file that cannot be used keeps the old effects. `down` is the exception:
//! it belongs to the proxy, so turning it on closes the connections open as well.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use tokio::sync::watch;

use super::effects::{EffectsError, TcpEffects};

/// The parts of a rules file the TCP proxy reads: its `[[tcp]]` tables. `[[rule]]` and `[default]`
/// are serve's and the HTTP proxy's, and are left alone here.
#[derive(Debug, Deserialize)]
struct TcpTables {
    #[serde(default)]
    tcp: Vec<toml::Table>,
}

/// Builds effects from a rules file's `[[tcp]]` tables (`text`, read from `file`), then the flags'
/// tables on top, in order.
pub fn effects_from(
    text: Option<(&str, &str)>,
    flags: &[String],
    flag_name: &str,
) -> Result<TcpEffects, EffectsError> {
    let mut effects = TcpEffects::default();
    if let Some((text, file)) = text {
        let tables: TcpTables = toml::from_str(text).map_err(|err| EffectsError {
            source: file.to_owned(),
            table: None,
            field: None,
            detail: format!("not a valid rules file: {}", err.message()),
        })?;
        for (index, table) in tables.tcp.iter().enumerate() {
            let number = index + 1;
            let mut pairs: Vec<(&str, String)> = Vec::new();
            for (key, value) in table {
                if key == "name" {
                    continue;
                }
                let text = match value {
                    toml::Value::String(s) => s.clone(),
                    toml::Value::Integer(n) => n.to_string(),
                    // Display never uses an exponent, so 1e-3 is 0.001, as the parser wants.
                    toml::Value::Float(x) => x.to_string(),
                    toml::Value::Boolean(b) => b.to_string(),
                    _ => {
                        return Err(EffectsError {
                            source: file.to_owned(),
                            table: Some(number),
                            field: Some(key.clone()),
                            detail: "must be a number, a string or true/false".to_owned(),
                        });
                    }
                };
                pairs.push((key, text));
            }
            effects.apply_pairs(
                pairs
                    .iter()
                    .map(|(key, value)| (*key, Some(value.as_str()))),
                file,
                Some(number),
            )?;
        }
    }
    for flag in flags {
        effects.apply(flag, flag_name, None)?;
    }
    Ok(effects)
}

/// The effects in force, shared by the accept loop and whoever reloads them. Cheap to clone.
#[derive(Debug, Clone)]
pub struct LiveTcpEffects(Arc<Live>);

#[derive(Debug)]
struct Live {
    /// A watch, so the accept loop learns at once that `down` came or went.
    current: watch::Sender<Arc<TcpEffects>>,
    file: Option<PathBuf>,
    flags: Vec<String>,
    flag_name: String,
}

impl LiveTcpEffects {
    /// Reads `file`'s `[[tcp]]` tables (if a file is given) and then applies `flags` (each one
    /// table, e.g. `direction=downstream&latency=0.1`), named `flag_name` in errors.
    pub fn load(
        file: Option<&Path>,
        flags: Vec<String>,
        flag_name: &str,
    ) -> Result<LiveTcpEffects, EffectsError> {
        let live = Live {
            current: watch::Sender::new(Arc::new(TcpEffects::default())),
            file: file.map(Path::to_path_buf),
            flags,
            flag_name: flag_name.to_owned(),
        };
        let effects = live.build()?;
        live.current.send_replace(Arc::new(effects));
        Ok(LiveTcpEffects(Arc::new(live)))
    }

    /// Fixed effects, with nothing to reload from (tests, embedding).
    pub fn fixed(effects: TcpEffects) -> LiveTcpEffects {
        LiveTcpEffects(Arc::new(Live {
            current: watch::Sender::new(Arc::new(effects)),
            file: None,
            flags: Vec::new(),
            flag_name: String::new(),
        }))
    }

    /// The effects in force now.
    pub fn current(&self) -> Arc<TcpEffects> {
        Arc::clone(&self.0.current.borrow())
    }

    /// The effects in force, seen as they change.
    pub(crate) fn watch(&self) -> watch::Receiver<Arc<TcpEffects>> {
        self.0.current.subscribe()
    }

    /// Puts `effects` in force for the connections accepted from now on.
    pub fn set(&self, effects: TcpEffects) {
        self.0.current.send_replace(Arc::new(effects));
    }

    /// The rules file, if the effects came from one (what `--watch` should watch).
    pub fn file(&self) -> Option<&Path> {
        self.0.file.as_deref()
    }

    /// Reads the file again and applies the flags again. On success the new effects apply to new
    /// connections and are returned; on error the old ones stay in force.
    pub fn reload(&self) -> Result<Arc<TcpEffects>, EffectsError> {
        let effects = Arc::new(self.0.build()?);
        self.0.current.send_replace(Arc::clone(&effects));
        Ok(effects)
    }
}

impl Live {
    fn build(&self) -> Result<TcpEffects, EffectsError> {
        let text = match &self.file {
            None => None,
            Some(file) => Some(std::fs::read_to_string(file).map_err(|err| EffectsError {
                source: file.display().to_string(),
                table: None,
                field: None,
                detail: format!("cannot read it: {err}"),
            })?),
        };
        let name = self
            .file
            .as_ref()
            .map(|file| file.display().to_string())
            .unwrap_or_default();
        effects_from(
            text.as_deref().map(|text| (text, name.as_str())),
            &self.flags,
            &self.flag_name,
        )
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn tables_then_flags_in_order() {
        let file = r#"
            [[rule]]
            path = "/ignored/by/tcp"
            delay = 1

            [[tcp]]
            name = "slow replies"
            direction = "downstream"
            latency = 0.25
            bps = 100000

            [[tcp]]
            direction = "upstream"
            reset_after = 4096
        "#;
        let flags = vec!["direction=downstream&bps=5000".to_owned()];
        let effects = effects_from(Some((file, "rules.toml")), &flags, "--tcp-effect").unwrap();
        assert_eq!(effects.downstream.latency, Duration::from_millis(250));
        assert_eq!(effects.downstream.bps, Some(5000));
        assert_eq!(effects.upstream.reset_after, Some(4096));
        assert_eq!(effects.upstream.latency, Duration::ZERO);
    }

    #[test]
    fn a_bad_table_is_named() {
        let file = "[[tcp]]\nlatency = 1\n[[tcp]]\nbps = -5\n";
        let err = effects_from(Some((file, "rules.toml")), &[], "--tcp-effect").unwrap_err();
        assert_eq!(err.table, Some(2));
        assert_eq!(err.field.as_deref(), Some("bps"));
        assert!(
            err.to_string()
                .starts_with("rules.toml: [[tcp]] table 2, field bps")
        );

        let nested = "[[tcp]]\nlatency = [1]\n";
        let err = effects_from(Some((nested, "rules.toml")), &[], "x").unwrap_err();
        assert_eq!(err.field.as_deref(), Some("latency"));
    }
}
