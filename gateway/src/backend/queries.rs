//! Reads for the dashboard: patients, readings, alerts, the registry, the audit.

use super::*;

impl vigil_dashboard::Queries for StoreBackend {
    fn patients(&self, scope: &Scope) -> R<Vec<PatientSummary>> {
        self.read(|c| {
            let mut list = readings::patient_summaries(c, scope, None)?;
            self.flag(c, &mut list)?;
            Ok(list)
        })
    }

    fn patient_list(&self, scope: &Scope) -> R<Vec<Patient>> {
        self.read(|c| registry::patients(c, scope))
    }

    fn patient_summary(&self, patient_id: &str) -> R<Option<PatientSummary>> {
        self.read(|c| {
            let mut list = readings::patient_summaries(c, &Scope::All, Some(patient_id))?;
            self.flag(c, &mut list)?;
            Ok(list.pop())
        })
    }

    fn patient_facility(&self, patient_id: &str) -> R<Option<String>> {
        self.read(|c| registry::patient_facility(c, patient_id))
    }

    fn alert_burden(&self, scope: &Scope, days: u32) -> R<BurdenReport> {
        let now = crate::store::now_ms();
        self.read(|c| crate::store::burden::burden(c, scope, days, now))
    }

    fn patient_events(
        &self,
        patient_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> R<Vec<vigil_domain::views::EventView>> {
        self.read(|c| {
            crate::store::readings::patient_events(
                c,
                patient_id,
                from.timestamp_millis(),
                to.timestamp_millis(),
                limit,
            )
        })
    }

    fn patient_page(&self, patient_id: &str, alerts_limit: usize) -> R<Option<PatientPage>> {
        self.read(|c| {
            let Some(patient) = registry::patient(c, patient_id)? else {
                return Ok(None);
            };
            Ok(Some(PatientPage {
                patient,
                devices: crate::store::devices::patient_devices(c, patient_id)?,
                contacts: registry::contacts(c, patient_id)?,
                alerts: alerts::for_patient(c, patient_id, alerts_limit)?,
            }))
        })
    }

    fn alert_facility(&self, alert_id: i64) -> R<Option<String>> {
        self.read(|c| registry::alert_facility(c, alert_id))
    }

    fn readings(
        &self,
        patient_id: &str,
        metric: Metric,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> R<Vec<ReadingPoint>> {
        self.read(|c| {
            readings::range(
                c,
                patient_id,
                metric,
                from.timestamp_millis(),
                to.timestamp_millis(),
                limit,
            )
        })
    }

    fn reading_buckets(
        &self,
        patient_id: &str,
        metric: Metric,
        resolution: Resolution,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> R<Vec<ReadingBucket>> {
        self.read(|c| {
            crate::store::rollups::buckets(
                c,
                patient_id,
                metric,
                resolution,
                from.timestamp_millis(),
                to.timestamp_millis(),
                limit,
            )
        })
    }

    /// One read turn for all of them: a thousand sparklines cost one pool checkout, not a
    /// thousand (issue #6: the ward view in < 100 ms).
    fn sparklines(
        &self,
        wanted: &[(String, Metric)],
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> R<Vec<Vec<ReadingBucket>>> {
        self.read(|c| {
            wanted
                .iter()
                .map(|(p, m)| {
                    crate::store::rollups::buckets(
                        c,
                        p,
                        *m,
                        Resolution::Hour,
                        from.timestamp_millis(),
                        to.timestamp_millis(),
                        48,
                    )
                })
                .collect()
        })
    }

    fn alerts(&self, scope: &Scope, filter: &AlertFilter, limit: usize) -> R<Vec<Alert>> {
        self.read(|c| alerts::list(c, scope, filter, limit))
    }

    fn alert_detail(&self, id: i64, readings_limit: usize) -> R<Option<AlertDetail>> {
        self.read(|c| alerts::detail(c, id, readings_limit))
    }

    fn episodes(
        &self,
        scope: &Scope,
        which: EpisodeFilter,
        patient_id: Option<&str>,
        limit: usize,
    ) -> R<Vec<Episode>> {
        let which = match which {
            EpisodeFilter::Active => episodes::Which::Active,
            EpisodeFilter::Ended => episodes::Which::Ended,
            EpisodeFilter::All => episodes::Which::All,
        };
        self.read(|c| episodes::list(c, scope, which, patient_id, limit))
    }

    fn stored_readings(
        &self,
        patient_id: &str,
        metrics: &[Metric],
        (from, to): (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
        after: Option<(i64, i64, i64)>,
        limit: usize,
    ) -> R<Vec<vigil_domain::views::StoredReading>> {
        let window = (
            from.map(|t| t.timestamp_millis()),
            to.map(|t| t.timestamp_millis()),
        );
        self.read(|c| crate::store::fhir::readings(c, patient_id, metrics, window, after, limit))
    }

    fn stored_reading(
        &self,
        device: i64,
        metrics: &[Metric],
        ts_ms: i64,
    ) -> R<Vec<vigil_domain::views::StoredReading>> {
        self.read(|c| crate::store::fhir::at(c, device, metrics, ts_ms))
    }

    fn episode_detail(&self, id: i64) -> R<Option<EpisodeDetail>> {
        self.read(|c| episodes::detail(c, id))
    }

    fn episode_facility(&self, id: i64) -> R<Option<String>> {
        self.read(|c| episodes::facility(c, id))
    }

    fn rejected_of(&self, device: Option<&str>, limit: usize) -> R<Vec<RejectedMessage>> {
        self.read(|c| readings::rejected(c, device, limit))
    }

    fn registry(&self) -> R<Registry> {
        self.read(|c| {
            Ok(Registry {
                facilities: registry::facilities(c)?,
                patients: registry::patients(c, &Scope::All)?,
                devices: crate::store::devices::all_devices(c)?,
                contacts: registry::all_contacts(c)?,
                users: accounts::users(c)?,
            })
        })
    }

    fn thresholds(&self, patient_id: &str) -> R<(Vec<PatientThreshold>, Vec<ThresholdOrder>)> {
        let now = crate::store::now_ms();
        self.read(|c| {
            Ok((
                orders::thresholds(c, patient_id, &self.rules, now)?,
                orders::list(c, patient_id)?,
            ))
        })
    }

    fn tokens(&self) -> R<Vec<vigil_domain::views::TokenView>> {
        self.read(accounts::api_tokens)
    }

    fn contacts_of(&self, patient_id: &str) -> R<Vec<Contact>> {
        self.read(|c| registry::contacts(c, patient_id))
    }

    fn admin_audit(&self, limit: usize) -> R<Vec<vigil_domain::views::AdminAuditEntry>> {
        let rows = self
            .store
            .read_blocking(|c| audit::audit_log(c, limit))
            .map_err(be)?;
        Ok(rows
            .into_iter()
            .map(
                |(at, actor, action, target)| vigil_domain::views::AdminAuditEntry {
                    at: crate::store::ms_to_time(at),
                    actor,
                    action,
                    target,
                },
            )
            .collect())
    }
}
