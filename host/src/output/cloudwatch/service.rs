//! The CloudWatch Logs calls this output makes — CreateLogGroup (+ PutRetentionPolicy),
//! CreateLogStream, PutLogEvents — each returning a classified [`SdkFailure`], and how
//! `rejectedLogEventsInfo` turns into dropped-event counts.

use super::batcher::PutBatch;
use super::config::{CloudWatchSettings, GroupClass};
use crate::output::aws::SdkFailure;
use aws_sdk_cloudwatchlogs::Client;
use aws_sdk_cloudwatchlogs::types::{InputLogEvent, LogGroupClass, RejectedLogEventsInfo};
use std::ops::Range;

/// Events of one accepted PutLogEvents call that the API rejected anyway, as positions in the
/// batch's (sorted) events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rejected {
    /// Older than 14 days (`tooOldLogEventEndIndex`).
    pub too_old: Range<usize>,
    /// Older than the group's retention (`expiredLogEventEndIndex`).
    pub expired: Range<usize>,
    /// More than 2 hours ahead (`tooNewLogEventStartIndex`).
    pub too_new: Range<usize>,
}

impl Rejected {
    /// Read `rejectedLogEventsInfo` of a call with `sent` events. Per the API reference
    /// (<https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_RejectedLogEventsInfo.html>)
    /// the two end indexes are exclusive and the start index inclusive; the old and expired
    /// ranges both start at 0 and may overlap, so an event is counted once, as expired when it
    /// is in both.
    pub fn from_info(info: Option<&RejectedLogEventsInfo>, sent: usize) -> Rejected {
        let Some(info) = info else {
            return Rejected::default();
        };
        let clamp = |i: Option<i32>| i.map(|i| (i.max(0) as usize).min(sent));
        let expired = clamp(info.expired_log_event_end_index()).unwrap_or(0);
        let old_end = clamp(info.too_old_log_event_end_index())
            .unwrap_or(0)
            .max(expired);
        let new_start = clamp(info.too_new_log_event_start_index())
            .unwrap_or(sent)
            .max(old_end);
        Rejected {
            expired: 0..expired,
            too_old: expired..old_end,
            too_new: new_start..sent,
        }
    }

    /// How many events were rejected.
    pub fn total(&self) -> usize {
        self.too_old.len() + self.expired.len() + self.too_new.len()
    }
}

/// The CloudWatch Logs client with this output's creation options.
#[derive(Clone, Debug)]
pub struct CloudWatchService {
    client: Client,
    log_format: Option<String>,
    retention_days: Option<i32>,
    group_tags: Vec<(String, String)>,
    group_class: Option<GroupClass>,
}

impl CloudWatchService {
    /// A service calling through `client`.
    pub fn new(client: Client, settings: &CloudWatchSettings) -> Self {
        CloudWatchService {
            client,
            log_format: settings.log_format.clone(),
            retention_days: settings.retention_days,
            group_tags: settings.group_tags.clone(),
            group_class: settings.group_class,
        }
    }

    /// PutLogEvents for one batch; what the API rejected inside an accepted call.
    pub async fn put(&self, batch: &PutBatch) -> Result<Rejected, SdkFailure> {
        let events = batch
            .events
            .iter()
            .map(|e| {
                InputLogEvent::builder()
                    .timestamp(e.timestamp_ms)
                    .message(e.message.clone())
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()
            .expect("timestamp and message are always set");
        let mut call = self
            .client
            .put_log_events()
            .log_group_name(&batch.group)
            .log_stream_name(&batch.stream)
            .set_log_events(Some(events))
            .customize();
        if let Some(format) = self.log_format.clone() {
            call = call.mutate_request(move |req| {
                req.headers_mut()
                    .insert("x-amzn-logs-format", format.clone());
            });
        }
        let out = call.send().await.map_err(|e| SdkFailure::classify(&e))?;
        Ok(Rejected::from_info(
            out.rejected_log_events_info(),
            batch.events.len(),
        ))
    }

    /// CreateLogStream; an existing stream is success.
    pub async fn create_stream(&self, group: &str, stream: &str) -> Result<(), SdkFailure> {
        match self
            .client
            .create_log_stream()
            .log_group_name(group)
            .log_stream_name(stream)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => tolerate_exists(SdkFailure::classify(&e)),
        }
    }

    /// CreateLogGroup with the configured tags and class, then PutRetentionPolicy if set; an
    /// existing group is success (its retention is left alone).
    pub async fn create_group(&self, group: &str) -> Result<(), SdkFailure> {
        let mut call = self.client.create_log_group().log_group_name(group);
        for (k, v) in &self.group_tags {
            call = call.tags(k, v);
        }
        if let Some(class) = self.group_class {
            call = call.log_group_class(match class {
                GroupClass::Standard => LogGroupClass::Standard,
                GroupClass::InfrequentAccess => LogGroupClass::InfrequentAccess,
            });
        }
        if let Err(e) = call.send().await {
            return tolerate_exists(SdkFailure::classify(&e));
        }
        if let Some(days) = self.retention_days {
            self.client
                .put_retention_policy()
                .log_group_name(group)
                .retention_in_days(days)
                .send()
                .await
                .map_err(|e| SdkFailure::classify(&e))?;
        }
        Ok(())
    }
}

fn tolerate_exists(failure: SdkFailure) -> Result<(), SdkFailure> {
    if failure.class == crate::output::aws::ErrorClass::AlreadyExists {
        Ok(())
    } else {
        Err(failure)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(old: Option<i32>, expired: Option<i32>, new: Option<i32>) -> RejectedLogEventsInfo {
        RejectedLogEventsInfo::builder()
            .set_too_old_log_event_end_index(old)
            .set_expired_log_event_end_index(expired)
            .set_too_new_log_event_start_index(new)
            .build()
    }

    #[test]
    fn rejected_indexes_become_counts() {
        assert_eq!(Rejected::from_info(None, 10), Rejected::default());
        let r = Rejected::from_info(Some(&info(Some(3), None, Some(8))), 10);
        assert_eq!(
            r,
            Rejected {
                too_old: 0..3,
                expired: 0..0,
                too_new: 8..10
            }
        );
        assert_eq!(r.total(), 5);
        let r = Rejected::from_info(Some(&info(Some(4), Some(2), None)), 10);
        assert_eq!(
            r,
            Rejected {
                too_old: 2..4,
                expired: 0..2,
                too_new: 10..10
            }
        );
    }

    #[test]
    fn out_of_range_indexes_are_clamped() {
        let r = Rejected::from_info(Some(&info(Some(50), None, Some(-3))), 5);
        assert_eq!(r.total(), 5, "never more than were sent");
        let r = Rejected::from_info(Some(&info(None, None, Some(5))), 5);
        assert_eq!(r.total(), 0);
    }
}
