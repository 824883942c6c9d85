//! Changes from the dashboard: alerts go through the alert service; the registry, thresholds and revocations through the store.

use super::*;
use crate::store::notify::Rows;

impl vigil_dashboard::Commands for StoreBackend {
    fn alert_assign(&self, id: i64, actor: &str, note: Option<&str>) -> R<Alert> {
        let (actor, note) = (actor.to_string(), note.map(str::to_string));
        self.alerts
            .write_blocking(&self.store, move |tx| {
                tx.assign(id, &actor, note.as_deref())
            })
            .map_err(be)
    }

    fn alert_action(
        &self,
        id: i64,
        action: AlertAction,
        actor: &str,
        opts: &ActionOptions,
    ) -> R<Alert> {
        let action = match action {
            AlertAction::Acknowledge => Action::Acknowledge,
            AlertAction::Resolve => Action::Resolve,
        };
        let actor = actor.to_string();
        let (note, share) = (opts.note.clone(), opts.share_with_family);
        self.alerts
            .write_blocking(&self.store, move |tx| {
                if share && action == Action::Acknowledge {
                    tx.share_alert_note(id, &actor, note.as_deref())?;
                }
                tx.act(id, action, &actor, note.as_deref())
            })
            .map_err(be)
    }

    fn episode_action(
        &self,
        id: i64,
        action: EpisodeAction,
        actor: &str,
        opts: &ActionOptions,
    ) -> R<Episode> {
        let action = match action {
            EpisodeAction::Acknowledge => crate::alerts::EpisodeAction::Acknowledge,
            EpisodeAction::Assign => crate::alerts::EpisodeAction::Assign,
            EpisodeAction::Resolve => crate::alerts::EpisodeAction::Resolve,
        };
        let actor = actor.to_string();
        let opts = opts.clone();
        self.alerts
            .write_blocking(&self.store, move |tx| {
                tx.act_episode(
                    id,
                    action,
                    &actor,
                    opts.note.as_deref(),
                    opts.share_with_family,
                    opts.confirm,
                )
            })
            .map_err(be)
    }

    fn add_patient(&self, req: NewPatientRequest) -> R<Patient> {
        self.write(move |c| {
            let facility = req
                .facility_id
                .as_deref()
                .filter(|f| !f.is_empty())
                .unwrap_or(vigil_domain::DEFAULT_FACILITY);
            let id = registry::add_patient(
                c,
                req.id.as_deref().filter(|i| !i.is_empty()),
                &req.name,
                facility,
                req.area.as_deref(),
                &req.tags,
            )?;
            Ok(registry::patient(c, &id)?.expect("inserted in this transaction"))
        })
    }

    fn add_device(&self, req: NewDeviceRequest) -> R<DeviceCredentials> {
        let kind = provision::device_kind(&req.kind).map_err(be)?;
        let interval = provision::device_interval(req.interval.as_deref()).map_err(be)?;
        // argon2 before the write turn: it is slow on purpose.
        let (secret, hashes) = provision::new_secret();
        let patient = req.patient_id.clone();
        let id = self
            .store
            .write_blocking(move |c| {
                provision::add_device(
                    c,
                    req.id.as_deref().filter(|i| !i.is_empty()),
                    &req.patient_id,
                    kind,
                    interval,
                    &hashes,
                )
            })
            .map_err(be)?;
        Ok(DeviceCredentials {
            topic: format!("vigil/v1/{id}/readings"),
            username: id.clone(),
            id,
            patient_id: patient,
            kind: kind.as_str().to_string(),
            password: secret,
        })
    }

    fn add_contact(&self, patient_id: &str, req: NewContactRequest) -> R<Contact> {
        let pid = patient_id.to_string();
        self.write(move |c| {
            let input = provision::ContactInput {
                name: req.name,
                email: req.email,
                lang: req.lang,
                role: req.role,
                tier: req.tier,
                notify: req.notify,
                quiet_hours: req.quiet_hours,
                timezone: req.timezone,
                phone: req.phone,
            };
            let id = provision::add_contact(c, &pid, &input)?;
            Ok(registry::contact(c, id)?.expect("inserted in this transaction"))
        })
    }

    fn add_user(&self, req: NewUserRequest) -> R<UserView> {
        provision::check_password(&req.password, &req.name).map_err(be)?;
        let hash = crate::secrets::hash_password(&req.password);
        let mut facilities = req.facilities;
        if facilities.is_empty() && !req.admin {
            facilities.push(vigil_domain::DEFAULT_FACILITY.to_string());
        }
        let name = req.name.trim().to_string();
        self.write(move |c| {
            accounts::add_user(c, &name, &hash, req.admin, &facilities)?;
            Ok(accounts::users(c)?
                .into_iter()
                .find(|u| u.name == name)
                .expect("inserted in this transaction"))
        })
    }

    fn order_threshold(
        &self,
        patient_id: &str,
        o: ThresholdOrderRequest,
        actor: &str,
    ) -> R<ThresholdOrder> {
        let order = orders::NewOrder {
            rule: o.rule,
            threshold: o.threshold,
            clear: o.clear,
            enabled: o.enabled,
            reason: o.reason,
            ordered_by: actor.to_string(),
            effective_from: o.effective_from.map(|t| t.timestamp_millis()),
        };
        let (rules, pid) = (self.rules.clone(), patient_id.to_string());
        self.write(move |c| orders::add(c, &pid, &order, &rules, crate::store::now_ms()))
    }

    fn ack_link(&self, token: &str, accept: bool) -> R<AckLinkView> {
        let now = crate::store::now_ms();
        let t = token.to_string();
        if accept {
            self.alerts
                .write_blocking(&self.store, move |tx| tx.use_ack_link(&t, now))
                .map_err(be)
        } else {
            self.read(|c| vigil_notify::policy::ack_link_view(&Rows(c), &t, now))
        }
    }

    fn revoke_token(&self, id: i64, actor: &str) -> R<()> {
        let actor = actor.to_string();
        self.write(move |c| accounts::revoke_api_token(c, id, &actor))
    }

    fn set_user_enabled(&self, name: &str, enabled: bool, actor: &str) -> R<()> {
        let (name, actor) = (name.to_string(), actor.to_string());
        self.write(move |c| accounts::set_user_enabled(c, &name, enabled, &actor))
    }

    fn edit_contact(
        &self,
        id: i64,
        req: vigil_dashboard::ContactEditRequest,
        actor: &str,
    ) -> R<Contact> {
        let actor = actor.to_string();
        self.write(move |c| provision::edit_contact(c, id, &req, &actor))
    }

    fn remove_contact(&self, id: i64, actor: &str) -> R<()> {
        let actor = actor.to_string();
        self.write(move |c| registry::remove_contact(c, id, &actor))
    }

    fn remove_device(&self, id: &str, actor: &str) -> R<()> {
        let (id, actor) = (id.to_string(), actor.to_string());
        self.write(move |c| crate::store::devices::remove_device(c, &id, &actor))
    }

    fn edit_device(&self, id: &str, req: vigil_dashboard::DeviceEditRequest, actor: &str) -> R<()> {
        let interval = match req.interval.as_deref().map(str::trim) {
            None => None,
            Some("" | "default") => Some(None),
            Some(i) => Some(crate::provision::device_interval(Some(i)).map_err(be)?),
        };
        let (id, actor) = (id.to_string(), actor.to_string());
        self.write(move |c| {
            crate::store::devices::edit_device(c, &id, req.enabled, interval, &actor)
        })
    }

    fn edit_patient(
        &self,
        id: &str,
        req: vigil_dashboard::PatientEditRequest,
        actor: &str,
    ) -> R<Patient> {
        let (id, actor) = (id.to_string(), actor.to_string());
        self.write(move |c| {
            let change = crate::store::patient_edits::PatientChange {
                name: req.name.as_deref(),
                facility_id: req.facility_id.as_deref().filter(|f| !f.is_empty()),
                area: req.area.as_deref(),
                tags: req.tags.as_deref(),
            };
            crate::store::patient_edits::edit_patient(c, &id, &change, &actor)
        })
    }

    /// Through the alert service: the patient's active alerts are resolved as `actor` (their
    /// escalations and queued e-mails stop) in the transaction that removes the patient.
    fn remove_patient(&self, id: &str, actor: &str) -> R<()> {
        let (id, actor) = (id.to_string(), actor.to_string());
        self.alerts
            .write_blocking(&self.store, move |tx| {
                crate::store::patient_edits::remove_patient(tx.conn(), &id, &actor)?;
                let filter = vigil_domain::views::AlertFilter {
                    active: true,
                    patient_id: Some(id.clone()),
                    ..Default::default()
                };
                let active = crate::store::alerts::list(
                    tx.conn(),
                    &vigil_domain::Scope::All,
                    &filter,
                    1000,
                )?;
                for a in active {
                    tx.act(
                        a.id,
                        Action::Resolve,
                        &actor,
                        Some("patient removed from monitoring"),
                    )?;
                }
                Ok(())
            })
            .map_err(be)
    }
}
