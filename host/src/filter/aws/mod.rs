//! `aws`: append facts about the EC2 instance to every record (Fluent Bit `filter_aws`).
//!
//! The keys and their defaults are Fluent Bit's: `az` and `ec2_instance_id` on;
//! `ec2_instance_type`, `private_ip`, `vpc_id`, `ami_id`, `account_id`, `hostname` off;
//! `tags_enabled` adds the instance's tags (each tag key a record key), all of them or those of
//! `tags_include`, or all but `tags_exclude`; `enable_entity` adds `aws_entity_ec2_instance_id`
//! and `aws_entity_account_id`. They are appended after the record's own keys, in that order,
//! as strings, as Fluent Bit does.
//!
//! The metadata is read from the instance metadata service ([`imds`]) once, by a task started
//! with the filter, never per event. An item that cannot be read is asked for again every
//! `retry_interval_s` seconds (Fluent Bit: 300) until it is; meanwhile records pass on with the
//! items already read and without the others — not held back, not dropped — and each such
//! record is counted as `component_errors_total{reason="ec2_metadata_missing"}`; each failed
//! request as `{reason="imds_request_failed"}`, and each failed round is logged once. When `AWS_EC2_METADATA_DISABLED=true`, nothing is asked and records
//! pass unchanged. `wasm-router validate` checks the keys without asking the service.

pub mod imds;

use super::{RecordFilter, Verdict};
use crate::event::Event;
use crate::event::record::{append_entries, write_str};
use crate::ops::metrics::{Metrics, ReasonLabels};
use bytes::Bytes;
use imds::{ImdsClient, ImdsError, ImdsVersion};
use prometheus_client::metrics::counter::Counter;
use serde::Deserialize;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// `type = "aws"` under `[[filters]]`; the keys are Fluent Bit's.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsFilterConfig {
    /// `v1` (plain requests) or `v2` (session tokens; default).
    #[serde(default)]
    pub imds_version: ImdsVersion,
    /// Add `az`, the Availability Zone (default on).
    #[serde(default = "on")]
    pub az: bool,
    /// Add `ec2_instance_id` (default on).
    #[serde(default = "on")]
    pub ec2_instance_id: bool,
    /// Add `ec2_instance_type`.
    #[serde(default)]
    pub ec2_instance_type: bool,
    /// Add `private_ip`, the primary private IPv4 address.
    #[serde(default)]
    pub private_ip: bool,
    /// Add `vpc_id`, the VPC of the primary network interface.
    #[serde(default)]
    pub vpc_id: bool,
    /// Add `ami_id`.
    #[serde(default)]
    pub ami_id: bool,
    /// Add `account_id` (from the instance identity document).
    #[serde(default)]
    pub account_id: bool,
    /// Add `hostname`, the private DNS name.
    #[serde(default)]
    pub hostname: bool,
    /// Add the instance's tags (the instance must allow tags in its metadata).
    #[serde(default)]
    pub tags_enabled: bool,
    /// Only these tags (exact keys).
    #[serde(default)]
    pub tags_include: Vec<String>,
    /// Every tag but these (exact keys); not with `tags_include`.
    #[serde(default)]
    pub tags_exclude: Vec<String>,
    /// Seconds between attempts to read what could not be read (default 300; 0 is taken as 1).
    #[serde(default = "default_retry_interval_s")]
    pub retry_interval_s: u64,
    /// Add `aws_entity_ec2_instance_id` and `aws_entity_account_id` too.
    #[serde(default)]
    pub enable_entity: bool,
}

fn on() -> bool {
    true
}

fn default_retry_interval_s() -> u64 {
    300
}

/// One item of instance metadata: its record key and where it is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Item {
    Az,
    InstanceId,
    InstanceType,
    PrivateIp,
    VpcId,
    AmiId,
    AccountId,
    Hostname,
}

impl Item {
    /// In the order Fluent Bit appends them.
    const ALL: [Item; 8] = [
        Item::Az,
        Item::InstanceId,
        Item::InstanceType,
        Item::PrivateIp,
        Item::VpcId,
        Item::AmiId,
        Item::AccountId,
        Item::Hostname,
    ];

    fn key(self) -> &'static str {
        match self {
            Item::Az => "az",
            Item::InstanceId => "ec2_instance_id",
            Item::InstanceType => "ec2_instance_type",
            Item::PrivateIp => "private_ip",
            Item::VpcId => "vpc_id",
            Item::AmiId => "ami_id",
            Item::AccountId => "account_id",
            Item::Hostname => "hostname",
        }
    }

    /// Read it from the service.
    async fn read(self, client: &mut ImdsClient) -> Result<String, ImdsError> {
        let path = match self {
            Item::Az => "/latest/meta-data/placement/availability-zone",
            Item::InstanceId => "/latest/meta-data/instance-id",
            Item::InstanceType => "/latest/meta-data/instance-type",
            Item::PrivateIp => "/latest/meta-data/local-ipv4",
            Item::AmiId => "/latest/meta-data/ami-id",
            Item::Hostname => "/latest/meta-data/hostname",
            Item::VpcId => {
                let mac = client.get("/latest/meta-data/mac").await?;
                let path = format!(
                    "/latest/meta-data/network/interfaces/macs/{}/vpc-id",
                    mac.trim()
                );
                return client.get(&path).await.map(|v| v.trim().to_string());
            }
            Item::AccountId => {
                let path = "/latest/dynamic/instance-identity/document";
                let document = client.get(path).await?;
                let value: serde_json::Value =
                    serde_json::from_str(&document).map_err(|e| ImdsError::BadAnswer {
                        url: path.into(),
                        detail: format!("the instance identity document is not JSON: {e}"),
                    })?;
                return value["accountId"]
                    .as_str()
                    .map(str::to_string)
                    .ok_or_else(|| ImdsError::BadAnswer {
                        url: path.into(),
                        detail: "the instance identity document has no `accountId`".into(),
                    });
            }
        };
        client.get(path).await.map(|v| v.trim().to_string())
    }
}

/// What the config asks for, checked.
#[derive(Clone, Debug)]
struct Wanted {
    items: Vec<Item>,
    tags: Option<TagSelection>,
    entity: bool,
}

#[derive(Clone, Debug)]
enum TagSelection {
    All,
    Include(Vec<String>),
    Exclude(Vec<String>),
}

impl TagSelection {
    fn takes(&self, key: &str) -> bool {
        match self {
            TagSelection::All => true,
            TagSelection::Include(keys) => keys.iter().any(|k| k == key),
            TagSelection::Exclude(keys) => !keys.iter().any(|k| k == key),
        }
    }
}

impl AwsFilterConfig {
    /// The items asked for; the error starts with the offending key (`.tags_include: …`).
    fn wanted(&self) -> Result<Wanted, String> {
        let on = |item| match item {
            Item::Az => self.az,
            Item::InstanceId => self.ec2_instance_id,
            Item::InstanceType => self.ec2_instance_type,
            Item::PrivateIp => self.private_ip,
            Item::VpcId => self.vpc_id,
            Item::AmiId => self.ami_id,
            Item::AccountId => self.account_id,
            Item::Hostname => self.hostname,
        };
        let selection = match (self.tags_include.is_empty(), self.tags_exclude.is_empty()) {
            (true, true) => TagSelection::All,
            (false, true) => TagSelection::Include(self.tags_include.clone()),
            (true, false) => TagSelection::Exclude(self.tags_exclude.clone()),
            (false, false) => {
                return Err(": `tags_include` and `tags_exclude` cannot be combined (Fluent Bit refuses it too); keep one".into());
            }
        };
        if !self.tags_enabled && !matches!(selection, TagSelection::All) {
            return Err(": `tags_include` / `tags_exclude` choose among the instance tags, which are only added with `tags_enabled = true`".into());
        }
        for (key, list) in [
            ("tags_include", &self.tags_include),
            ("tags_exclude", &self.tags_exclude),
        ] {
            if let Some(i) = list.iter().position(|k| k.trim().is_empty()) {
                return Err(format!(
                    ".{key}[{i}] is empty; name a tag key, e.g. `{key} = [\"Name\"]`"
                ));
            }
        }
        Ok(Wanted {
            items: Item::ALL.into_iter().filter(|i| on(*i)).collect(),
            tags: self.tags_enabled.then_some(selection),
            entity: self.enable_entity,
        })
    }

    fn retry_interval(&self) -> Duration {
        Duration::from_secs(self.retry_interval_s.max(1))
    }
}

/// What has been read so far.
#[derive(Debug, Default)]
struct Known {
    items: Vec<(Item, String)>,
    /// `Some` once the tags were read (empty when the instance has none or does not expose
    /// them).
    tags: Option<Vec<(String, String)>>,
}

impl Known {
    fn get(&self, item: Item) -> Option<&str> {
        self.items
            .iter()
            .find(|(i, _)| *i == item)
            .map(|(_, v)| v.as_str())
    }

    /// The items `wanted` still needs, the entity's two included.
    fn missing(&self, wanted: &Wanted) -> Vec<Item> {
        let mut items = wanted.items.clone();
        if wanted.entity {
            for item in [Item::InstanceId, Item::AccountId] {
                if !items.contains(&item) {
                    items.push(item);
                }
            }
        }
        items.retain(|i| self.get(*i).is_none());
        items
    }

    /// Read what is missing; returns the failures.
    async fn read_missing(&mut self, wanted: &Wanted, client: &mut ImdsClient) -> Vec<ImdsError> {
        let mut failures = Vec::new();
        for item in self.missing(wanted) {
            match item.read(client).await {
                Ok(value) => self.items.push((item, value)),
                Err(e) => failures.push(e),
            }
        }
        if let Some(selection) = &wanted.tags
            && self.tags.is_none()
        {
            match read_tags(client, selection).await {
                Ok(tags) => self.tags = Some(tags),
                Err(ImdsError::NotFound(_)) => {
                    tracing::warn!(
                        "the EC2 metadata service has no instance tags (404): the instance has none, or does not allow tags in its metadata (instance metadata option `InstanceMetadataTags`); no tags are added"
                    );
                    self.tags = Some(Vec::new());
                }
                Err(e) => failures.push(e),
            }
        }
        failures
    }

    /// The entries appended to each record, with what `wanted` still lacks.
    fn additions(&self, wanted: &Wanted) -> Additions {
        let mut entries = Vec::new();
        let mut count = 0;
        let mut push = |key: &str, value: &str| {
            write_str(&mut entries, key.as_bytes());
            write_str(&mut entries, value.as_bytes());
            count += 1;
        };
        for item in &wanted.items {
            if let Some(value) = self.get(*item) {
                push(item.key(), value);
            }
        }
        for (key, value) in self.tags.iter().flatten() {
            push(key, value);
        }
        if wanted.entity
            && let (Some(id), Some(account)) =
                (self.get(Item::InstanceId), self.get(Item::AccountId))
        {
            push("aws_entity_ec2_instance_id", id);
            push("aws_entity_account_id", account);
        }
        Additions {
            entries,
            count,
            complete: self.missing(wanted).is_empty()
                && (wanted.tags.is_none() || self.tags.is_some()),
        }
    }
}

/// `/latest/meta-data/tags/instance` lists the tag keys, one a line; each value is under
/// `…/tags/instance/KEY`.
async fn read_tags(
    client: &mut ImdsClient,
    selection: &TagSelection,
) -> Result<Vec<(String, String)>, ImdsError> {
    const TAGS: &str = "/latest/meta-data/tags/instance";
    let keys = client.get(TAGS).await?;
    let mut tags = Vec::new();
    for key in keys.lines().map(str::trim).filter(|k| !k.is_empty()) {
        if selection.takes(key) {
            let value = client.get(&format!("{TAGS}/{key}")).await?;
            tags.push((key.to_string(), value));
        }
    }
    Ok(tags)
}

/// The entries appended to each record, encoded once.
#[derive(Debug, Default)]
struct Additions {
    /// `count` msgpack key/value pairs.
    entries: Vec<u8>,
    count: usize,
    /// Whether everything asked for is in (else records are counted as missing metadata).
    complete: bool,
}

/// The compiled filter: the entries read so far, swapped in by the fetch task.
pub struct AwsFilter {
    additions: Arc<RwLock<Arc<Additions>>>,
    missing: Counter,
    _fetch: Option<FetchTask>,
}

/// The fetch task, stopped when the filter is dropped (reload, shutdown).
struct FetchTask(tokio::task::JoinHandle<()>);

impl Drop for FetchTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The reason records passed on without some of the metadata are counted under.
pub const MISSING_REASON: &str = "ec2_metadata_missing";

impl AwsFilter {
    /// A filter adding what `config` asks for, read from `endpoint` (`None`: the service is
    /// disabled) by a task spawned on the current runtime; with no runtime (`validate`) nothing
    /// is read.
    fn start(
        config: &AwsFilterConfig,
        endpoint: Option<&str>,
        id: &str,
        metrics: &Arc<Metrics>,
    ) -> Result<AwsFilter, String> {
        let wanted = config.wanted()?;
        let labels = ReasonLabels {
            component_kind: "filter",
            component_id: id.to_string(),
            reason: MISSING_REASON.into(),
        };
        let missing = metrics.errors.get_or_create(&labels).clone();
        let runtime = tokio::runtime::Handle::try_current().ok();
        let (initial, fetch) = match (endpoint, runtime) {
            (None, _) => {
                tracing::warn!(
                    filter = id,
                    "{}=true: the aws filter adds no EC2 metadata",
                    imds::DISABLED_VAR
                );
                let nothing = Additions {
                    complete: true,
                    ..Additions::default()
                };
                (nothing, None)
            }
            (Some(_), None) => (Additions::default(), None),
            (Some(endpoint), Some(runtime)) => {
                let client =
                    ImdsClient::new(endpoint, config.imds_version).map_err(|e| format!(": {e}"))?;
                (Additions::default(), Some((runtime, client)))
            }
        };
        let additions = Arc::new(RwLock::new(Arc::new(initial)));
        let fetch = fetch.map(|(runtime, client)| {
            let task = fetch_until_complete(
                wanted,
                client,
                additions.clone(),
                config.retry_interval(),
                id.to_string(),
                metrics.clone(),
            );
            FetchTask(runtime.spawn(task))
        });
        Ok(AwsFilter {
            additions,
            missing,
            _fetch: fetch,
        })
    }

    fn current(&self) -> Arc<Additions> {
        self.additions
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

/// Read what `wanted` asks for, publishing each round's result, until everything is in.
async fn fetch_until_complete(
    wanted: Wanted,
    mut client: ImdsClient,
    additions: Arc<RwLock<Arc<Additions>>>,
    retry: Duration,
    id: String,
    metrics: Arc<Metrics>,
) {
    let component = crate::ops::metrics::Component::filter(&id);
    let mut known = Known::default();
    loop {
        let failures = known.read_missing(&wanted, &mut client).await;
        let current = Arc::new(known.additions(&wanted));
        *additions
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = current;
        let Some(first) = failures.first() else {
            tracing::info!(filter = %id, "EC2 instance metadata read");
            return;
        };
        for _ in &failures {
            metrics.error(&component, "imds_request_failed");
        }
        tracing::warn!(
            filter = %id,
            error = %first,
            failed = failures.len(),
            retry_in_s = retry.as_secs(),
            "cannot read EC2 instance metadata; records pass on without the keys not read yet (counted as {MISSING_REASON})"
        );
        tokio::time::sleep(retry).await;
    }
}

impl RecordFilter for AwsFilter {
    fn apply(&self, event: &Event) -> Verdict {
        let additions = self.current();
        if !additions.complete {
            self.missing.inc();
        }
        if additions.count == 0 {
            return Verdict::Keep;
        }
        match append_entries(&event.body, &additions.entries, additions.count) {
            Some(body) => Verdict::Replace(Event {
                time_ns: event.time_ns,
                body: Bytes::from(body),
            }),
            // Not a map: passed on unchanged, as Fluent Bit does.
            None => Verdict::Keep,
        }
    }
}

impl super::NativeConfig for AwsFilterConfig {
    type Filter = AwsFilter;

    fn compile(&self, id: &str, metrics: &Arc<Metrics>) -> Result<AwsFilter, String> {
        let endpoint = imds::endpoint_from_env(|k| std::env::var(k).ok());
        AwsFilter::start(self, endpoint.as_deref(), id, metrics)
    }

    /// The keys and the endpoint variable, without asking the service.
    fn check(&self) -> Result<(), String> {
        self.wanted()?;
        if let Some(endpoint) = imds::endpoint_from_env(|k| std::env::var(k).ok()) {
            ImdsClient::new(&endpoint, self.imds_version).map_err(|e| format!(": {e}"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
