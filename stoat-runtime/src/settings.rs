//! Configuration from a TOML file and the environment, for deployments: one typed [`Settings`]
//! (figment merges the file, then `STOAT_*` variables over it), turned into a [`Config`] and a
//! `KafkaConfig`. Unknown keys are refused with the nearest valid name, so a typo never silently
//! falls back to a default. The book's configuration reference is generated from this file's doc
//! comments ([`Settings::reference`]) and checked by a test, so it is never written twice.
//!
//! Environment variables: `STOAT_LANES=4`, nested keys with `__` (`STOAT_KAFKA__BOOTSTRAP_SERVERS`),
//! and any librdkafka property as `STOAT_LIBRDKAFKA_<NAME>` with `_` for `.`
//! (`STOAT_LIBRDKAFKA_SASL_PASSWORD` is `sasl.password`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format, Toml};
use figment::Figment;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};

use crate::config::{Config, DispatchOrder, Emission, ErrorPolicy, RekeyOrder};
use crate::error::{Error, Result};

/// Everything a deployment sets, from `stoat.toml` and `STOAT_*` variables. Unset keys keep
/// stoat's defaults.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Settings {
    /// Number of lanes. Default: the number of CPUs.
    pub lanes: Option<usize>,
    /// Where LMDB state lives. Default: a temporary directory removed at exit.
    pub state_dir: Option<PathBuf>,
    /// The most state the app can hold, in bytes (the LMDB map). Default: 16 GiB.
    pub state_map_size: Option<usize>,
    /// The longest an epoch lasts before it commits, e.g. `"100ms"`. Default: 100 ms.
    #[serde(default, deserialize_with = "duration")]
    #[schemars(with = "Option<String>")]
    pub commit_interval: Option<Duration>,
    /// The shortest time between two commits' starts. Default: 0 (commit as soon as caught up).
    #[serde(default, deserialize_with = "duration")]
    #[schemars(with = "Option<String>")]
    pub min_commit_interval: Option<Duration>,
    /// How long after a commit LMDB is flushed to disk on Kafka (`"0s"`: every commit). Default: 1 s.
    #[serde(default, deserialize_with = "duration")]
    #[schemars(with = "Option<String>")]
    pub state_sync_interval: Option<Duration>,
    /// The most input records in one epoch. Default: 50000.
    pub commit_max_records: Option<usize>,
    /// The most records in flight between the dispatcher and the lanes. Default: 16 batches per lane group.
    pub max_in_flight: Option<usize>,
    /// What to do with records that fail: `"fail"`, `"skip"`, or `{ dead_letter = "topic" }`. Default: `"fail"`.
    pub error_policy: Option<PolicySetting>,
    /// Tokio worker threads. Default: the number of CPUs.
    pub worker_threads: Option<usize>,
    /// How many tokio tasks run the lanes. Default: one per lane up to 64 (or twice the worker threads if more).
    pub lane_groups: Option<usize>,
    /// How long a stop waits for the open epoch to commit. Default: 30 s.
    #[serde(default, deserialize_with = "duration")]
    #[schemars(with = "Option<String>")]
    pub shutdown_timeout: Option<Duration>,
    /// How long transient broker errors are retried before the app stops. Default: 5 min.
    #[serde(default, deserialize_with = "duration")]
    #[schemars(with = "Option<String>")]
    pub retry_timeout: Option<Duration>,
    /// Rebuild a foreign or stale state directory from the changelogs instead of stopping. Default: false.
    pub rebuild_foreign_state: Option<bool>,
    /// Which input record goes next across partitions: `"timestamp"` or `"arrival"`. Default: `"timestamp"`.
    pub dispatch_order: Option<DispatchSetting>,
    /// How long input waits for a lagging partition before going on without it. Default: 500 ms.
    #[serde(default, deserialize_with = "duration")]
    #[schemars(with = "Option<String>")]
    pub max_partition_wait: Option<Duration>,
    /// How often aggregations emit: `"every_update"` or `"latest_per_epoch"`. Default: `"every_update"`.
    pub emission: Option<EmissionSetting>,
    /// Which order re-keyed records keep: `"per_key"` or `"input_partition"`. Default: `"per_key"`.
    pub rekey_order: Option<RekeyOrderSetting>,
    /// Where the HTTP endpoints listen, e.g. `"0.0.0.0:8080"`. Default: no HTTP server.
    pub http: Option<SocketAddr>,
    /// How long without a commit while input waits before `/health/live` fails. Default: 60 s.
    #[serde(default, deserialize_with = "duration")]
    #[schemars(with = "Option<String>")]
    pub liveness_timeout: Option<Duration>,
    /// How to reach Kafka. Default: none (the embedded log).
    pub kafka: Option<KafkaSettings>,
    /// librdkafka properties by name, for every client (`"security.protocol" = "SASL_SSL"`); a
    /// `consumer.` or `producer.` prefix applies one to that client only.
    #[serde(default)]
    pub librdkafka: BTreeMap<String, String>,
}

/// The Kafka connection.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct KafkaSettings {
    /// `host:port[,host:port...]`.
    pub bootstrap_servers: String,
    /// `"exactly_once"` or `"at_least_once"`. Default: `"exactly_once"`.
    pub guarantee: Option<GuaranteeSetting>,
    /// Where a partition without a committed offset starts: `"earliest"` or `"latest"`. Default: `"earliest"`.
    pub offset_reset: Option<OffsetResetSetting>,
    /// How long a transactional operation may take. Default: 60 s.
    #[serde(default, deserialize_with = "duration")]
    #[schemars(with = "Option<String>")]
    pub timeout: Option<Duration>,
}

/// `error_policy`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum PolicySetting {
    /// Stop with an error naming the record.
    Fail,
    /// Skip and count the record.
    Skip,
    /// Write the record to this topic and go on.
    DeadLetter(String),
}

/// `dispatch_order`.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DispatchSetting {
    /// By record timestamp.
    Timestamp,
    /// As fetched.
    Arrival,
}

/// `emission`.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EmissionSetting {
    /// Every update.
    EveryUpdate,
    /// A key's latest update per epoch.
    LatestPerEpoch,
}

/// `rekey_order`.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RekeyOrderSetting {
    /// Per key.
    PerKey,
    /// Per input partition.
    InputPartition,
}

/// `kafka.guarantee`.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GuaranteeSetting {
    /// One transaction per epoch.
    ExactlyOnce,
    /// No transactions.
    AtLeastOnce,
}

/// `kafka.offset_reset`.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OffsetResetSetting {
    /// From the beginning.
    Earliest,
    /// From the end.
    Latest,
}

/// A duration written as `"250ms"`, `"5s"`, `"2m"`.
fn duration<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<Duration>, D::Error> {
    let text = Option::<String>::deserialize(d)?;
    text.map(|t| {
        humantime::parse_duration(&t).map_err(|e| {
            serde::de::Error::custom(format!("`{t}` is not a duration such as \"250ms\" or \"5s\": {e}"))
        })
    })
    .transpose()
}

/// The environment variable prefix.
const PREFIX: &str = "STOAT_";
/// The prefix of librdkafka properties in the environment.
const LIBRDKAFKA: &str = "LIBRDKAFKA_";

impl Settings {
    /// Reads `file` (when given; it must exist), then the `STOAT_*` environment variables over it.
    pub fn load(file: Option<&Path>) -> Result<Settings> {
        let mut figment = Figment::new();
        if let Some(path) = file {
            if !path.is_file() {
                return Err(Error::Config(format!(
                    "the configuration file {} does not exist",
                    path.display()
                )));
            }
            figment = figment.merge(Toml::file(path));
        }
        let mut settings = Settings::extract(figment.merge(environment()))?;
        // librdkafka properties are dotted names, which figment would nest: read by hand.
        for (key, value) in std::env::vars() {
            if let Some(name) = key.strip_prefix(PREFIX).and_then(|k| k.strip_prefix(LIBRDKAFKA)) {
                settings.librdkafka.insert(name.to_ascii_lowercase().replace('_', "."), value);
            }
        }
        Ok(settings)
    }

    /// Reads settings from TOML text (and nothing else).
    pub fn from_toml(text: &str) -> Result<Settings> {
        Settings::extract(Figment::from(Toml::string(text)))
    }

    fn extract(figment: Figment) -> Result<Settings> {
        figment.extract().map_err(|e| Error::Config(explain(e)))
    }

    /// The engine configuration these settings describe (stoat's defaults where unset).
    pub fn config(&self) -> Config {
        let mut c = Config::default();
        macro_rules! set {
            ($($field:ident),*) => { $( if let Some(v) = self.$field.clone() { c = c.$field(v); } )* };
        }
        set!(lanes, state_map_size, commit_interval, min_commit_interval, state_sync_interval);
        set!(commit_max_records, max_in_flight, worker_threads, lane_groups, shutdown_timeout, retry_timeout);
        set!(rebuild_foreign_state, max_partition_wait, http, liveness_timeout);
        if let Some(dir) = &self.state_dir {
            c = c.state_dir(dir);
        }
        if let Some(p) = &self.error_policy {
            c = c.error_policy(match p {
                PolicySetting::Fail => ErrorPolicy::Fail,
                PolicySetting::Skip => ErrorPolicy::Skip,
                PolicySetting::DeadLetter(topic) => ErrorPolicy::DeadLetter(topic.clone()),
            });
        }
        if let Some(d) = self.dispatch_order {
            c = c.dispatch_order(match d {
                DispatchSetting::Timestamp => DispatchOrder::Timestamp,
                DispatchSetting::Arrival => DispatchOrder::Arrival,
            });
        }
        if let Some(e) = self.emission {
            c = c.emission(match e {
                EmissionSetting::EveryUpdate => Emission::EveryUpdate,
                EmissionSetting::LatestPerEpoch => Emission::LatestPerEpoch,
            });
        }
        if let Some(r) = self.rekey_order {
            c = c.rekey_order(match r {
                RekeyOrderSetting::PerKey => RekeyOrder::PerKey,
                RekeyOrderSetting::InputPartition => RekeyOrder::InputPartition,
            });
        }
        c
    }

    /// The Kafka configuration, when `kafka` is set (with every `librdkafka` property).
    #[cfg(feature = "kafka")]
    pub fn kafka_config(&self) -> Option<crate::log::KafkaConfig> {
        use crate::log::{Guarantee, KafkaConfig, OffsetReset};
        let k = self.kafka.as_ref()?;
        let mut out = KafkaConfig::new(&k.bootstrap_servers);
        if let Some(g) = k.guarantee {
            out = out.guarantee(match g {
                GuaranteeSetting::ExactlyOnce => Guarantee::ExactlyOnce,
                GuaranteeSetting::AtLeastOnce => Guarantee::AtLeastOnce,
            });
        }
        if let Some(r) = k.offset_reset {
            out = out.offset_reset(match r {
                OffsetResetSetting::Earliest => OffsetReset::Earliest,
                OffsetResetSetting::Latest => OffsetReset::Latest,
            });
        }
        if let Some(t) = k.timeout {
            out = out.timeout(t);
        }
        for (name, value) in &self.librdkafka {
            out = out.set(name, value);
        }
        Some(out)
    }

    /// The configuration reference (a Markdown table per section), from this type's doc comments.
    pub fn reference() -> String {
        let schema = schemars::schema_for!(Settings);
        let root = schema.as_value();
        let mut out = String::new();
        table(&mut out, "", root, root);
        out
    }
}

/// One section of the reference: its keys, their types and what they do.
fn table(out: &mut String, prefix: &str, section: &serde_json::Value, root: &serde_json::Value) {
    let Some(properties) = section.get("properties").and_then(|p| p.as_object()) else { return };
    let title = if prefix.is_empty() { "Top level".to_string() } else { format!("`[{prefix}]`") };
    out.push_str(&format!("\n### {title}\n\n| Key | Type | Meaning |\n| --- | --- | --- |\n"));
    let mut nested = Vec::new();
    for (name, property) in properties {
        let target = resolve(property, root);
        if target.get("properties").is_some() {
            nested.push((name.clone(), target));
        }
        let description = property
            .get("description")
            .or_else(|| target.get("description"))
            .and_then(|d| d.as_str())
            .unwrap_or("")
            .replace('\n', " ");
        out.push_str(&format!("| `{name}` | {} | {description} |\n", kind(property, root)));
    }
    for (name, target) in nested {
        let path = if prefix.is_empty() { name } else { format!("{prefix}.{name}") };
        table(out, &path, target, root);
    }
}

/// A property's schema, following `$ref` (and `anyOf` with null, an `Option`).
fn resolve<'a>(property: &'a serde_json::Value, root: &'a serde_json::Value) -> &'a serde_json::Value {
    if let Some(r) = property.get("$ref").and_then(|r| r.as_str()) {
        let name = r.rsplit('/').next().unwrap_or("");
        return root.get("$defs").and_then(|d| d.get(name)).unwrap_or(property);
    }
    if let Some(any) = property.get("anyOf").and_then(|a| a.as_array()) {
        if let Some(inner) = any.iter().find(|s| s.get("type").and_then(|t| t.as_str()) != Some("null")) {
            return resolve(inner, root);
        }
    }
    property
}

/// A property's type as the reference shows it.
fn kind(property: &serde_json::Value, root: &serde_json::Value) -> String {
    let target = resolve(property, root);
    if target.get("properties").is_some() {
        return "table".into();
    }
    if target.get("oneOf").is_some() || target.get("enum").is_some() {
        return "string".into();
    }
    let types: Vec<&str> = match target.get("type") {
        Some(serde_json::Value::String(t)) => vec![t.as_str()],
        Some(serde_json::Value::Array(ts)) => ts.iter().filter_map(|t| t.as_str()).collect(),
        _ => vec![],
    };
    let types: Vec<&str> = types.into_iter().filter(|t| *t != "null").collect();
    match types.first() {
        Some(&"object") => "table of strings".into(),
        Some(t) => (*t).to_string(),
        None => "string".into(),
    }
}

/// The `STOAT_*` variables, nested by `__` (librdkafka properties are read apart).
fn environment() -> Env {
    Env::prefixed(PREFIX)
        .filter(|key| !key.as_str().to_ascii_lowercase().starts_with(&LIBRDKAFKA.to_ascii_lowercase()))
        .split("__")
}

/// A figment error as one clear sentence: which key, where it came from, and for an unknown key
/// the nearest valid one.
fn explain(error: figment::Error) -> String {
    let mut lines = Vec::new();
    for e in error {
        let place = e.metadata.as_ref().map(|m| match &m.source {
            Some(source) => format!(" ({source})"),
            None => format!(" ({})", m.name),
        });
        let place = place.unwrap_or_default();
        let path = e.path.join(".");
        let line = match &e.kind {
            figment::error::Kind::UnknownField(name, expected) => {
                let nearest = expected
                    .iter()
                    .map(|x| (strsim::jaro_winkler(name, x), *x))
                    .max_by(|a, b| a.0.total_cmp(&b.0))
                    .filter(|(score, _)| *score > 0.7)
                    .map(|(_, x)| format!("; did you mean `{x}`?"))
                    .unwrap_or_else(|| format!("; the settings are: {}", expected.join(", ")));
                // The path ends with the unknown key itself.
                let section = e.path.iter().take(e.path.len().saturating_sub(1)).cloned().collect::<Vec<_>>();
                let at =
                    if section.is_empty() { String::new() } else { format!(" in `[{}]`", section.join(".")) };
                format!("unknown setting `{name}`{at}{place}{nearest}")
            }
            other => {
                let key = if path.is_empty() { String::new() } else { format!("setting `{path}`{place}: ") };
                format!("{key}{other}")
            }
        };
        lines.push(line);
    }
    lines.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_sets_the_engine_and_kafka_configuration() -> Result<()> {
        let s = Settings::from_toml(
            r#"
            lanes = 6
            commit_interval = "250ms"
            error_policy = { dead_letter = "bad-records" }
            emission = "latest_per_epoch"
            http = "127.0.0.1:9000"
            [kafka]
            bootstrap_servers = "broker:9092"
            guarantee = "at_least_once"
            timeout = "30s"
            [librdkafka]
            "security.protocol" = "SASL_SSL"
            "#,
        )?;
        let c = s.config();
        assert_eq!(c.lanes, 6);
        assert_eq!(c.commit_interval, Duration::from_millis(250));
        assert_eq!(c.error_policy, ErrorPolicy::DeadLetter("bad-records".into()));
        assert_eq!(c.emission, Emission::LatestPerEpoch);
        assert_eq!(c.http, Some("127.0.0.1:9000".parse().expect("an address")));
        assert_eq!(c.shutdown_timeout, Config::default().shutdown_timeout, "unset keys keep the defaults");
        #[cfg(feature = "kafka")]
        {
            let k = s.kafka_config().expect("kafka is set");
            assert_eq!(k.bootstrap_servers, "broker:9092");
            assert_eq!(k.guarantee, crate::log::Guarantee::AtLeastOnce);
            assert_eq!(k.timeout, Duration::from_secs(30));
            assert_eq!(k.properties, vec![("security.protocol".to_string(), "SASL_SSL".to_string())]);
        }
        Ok(())
    }

    #[test]
    fn an_unknown_key_is_refused_with_the_nearest_valid_name() {
        let err = Settings::from_toml("lanez = 4").expect_err("a typo").to_string();
        assert!(err.contains("unknown setting `lanez`") && err.contains("did you mean `lanes`?"), "{err}");
        let err =
            Settings::from_toml("[kafka]\nbootstrap_servers = \"b:9092\"\ngaurantee = \"exactly_once\"")
                .expect_err("a typo in a section")
                .to_string();
        assert!(err.contains("`gaurantee`") && err.contains("did you mean `guarantee`?"), "{err}");
    }

    #[test]
    fn bad_values_name_the_setting() {
        let err = Settings::from_toml("commit_interval = \"soon\"").expect_err("not a duration").to_string();
        assert!(err.contains("commit_interval") && err.contains("soon"), "{err}");
        let err = Settings::from_toml("lanes = \"four\"").expect_err("not a number").to_string();
        assert!(err.contains("lanes"), "{err}");
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's `Jail` decides the closure's error type
    fn the_environment_overrides_the_file_and_passes_librdkafka_properties() -> Result<()> {
        figment::Jail::expect_with(|jail| {
            jail.create_file("stoat.toml", "lanes = 2\n[kafka]\nbootstrap_servers = \"file:9092\"")?;
            jail.set_env("STOAT_LANES", "8");
            jail.set_env("STOAT_KAFKA__BOOTSTRAP_SERVERS", "env:9092");
            jail.set_env("STOAT_LIBRDKAFKA_SASL_PASSWORD", "hunter2");
            let s = Settings::load(Some(Path::new("stoat.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(s.lanes, Some(8));
            assert_eq!(s.kafka.as_ref().map(|k| k.bootstrap_servers.as_str()), Some("env:9092"));
            assert_eq!(s.librdkafka.get("sasl.password").map(String::as_str), Some("hunter2"));
            Ok(())
        });
        Ok(())
    }

    #[test]
    fn a_missing_file_is_named() {
        let err =
            Settings::load(Some(Path::new("/nonexistent/stoat.toml"))).expect_err("no file").to_string();
        assert!(err.contains("/nonexistent/stoat.toml"), "{err}");
    }

    #[test]
    fn the_reference_lists_every_setting_with_its_doc() {
        let reference = Settings::reference();
        for key in ["lanes", "commit_interval", "error_policy", "http", "bootstrap_servers", "librdkafka"] {
            assert!(reference.contains(&format!("| `{key}` |")), "{key} missing:\n{reference}");
        }
        assert!(reference.contains("### `[kafka]`"), "{reference}");
        assert!(reference.contains("The most input records in one epoch"), "{reference}");
    }
}
