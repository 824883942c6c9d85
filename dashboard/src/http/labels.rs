//! Page labels (issue #6, #21): every word a page shows that is not data, in Vietnamese
//! (clinical reference §8; read as a Vietnamese nurse would — one verb, "tiếp nhận", for
//! acknowledging) and English. Names of things the domain owns (severities, rules, device
//! kinds, units) come from `vigil_domain::display` and `vigil_domain::words` instead.

use std::collections::BTreeMap;

/// Page labels in Vietnamese (clinical reference §8) and English.
pub(crate) fn labels(vi: bool) -> BTreeMap<&'static str, &'static str> {
    LABELS
        .iter()
        .map(|(k, v, e)| (*k, if vi { *v } else { *e }))
        .collect()
}

const LABELS: &[(&str, &str, &str)] = &[
    ("other", "English", "Tiếng Việt"),
    ("ward", "Người bệnh", "Patients"),
    ("inbox", "Hộp cảnh báo", "Alert inbox"),
    ("logout", "Đăng xuất", "Sign out"),
    ("connecting", "Đang kết nối…", "Connecting…"),
    ("live", "Trực tiếp", "Live"),
    ("offline_stream", "Mất kết nối — đang thử lại", "Disconnected — retrying"),
    ("sound_on", "Âm báo: bật", "Sound: on"),
    ("sound_off", "Âm báo: tắt", "Sound: off"),
    ("new_red", "Cảnh báo khẩn cấp mới", "New red alert"),
    ("facility", "Cơ sở", "Facility"),
    ("area", "Khu vực", "Area"),
    ("tags", "Nhãn", "Tags"),
    ("all_facilities", "Mọi cơ sở", "All facilities"),
    ("all_areas", "Mọi khu vực", "All areas"),
    ("all_tags", "Mọi nhãn", "All tags"),
    ("search", "Tìm người bệnh", "Find a patient"),
    ("filter", "Lọc", "Filter"),
    ("status", "Tình trạng", "Status"),
    ("patient", "Người bệnh", "Patient"),
    ("patients", "Người bệnh", "Patients"),
    ("no_patients", "Không có người bệnh phù hợp.", "No matching patients."),
    ("red", "Khẩn cấp", "Red"),
    ("amber", "Cảnh báo", "Amber"),
    ("yellow", "Lưu ý", "Yellow"),
    ("ok", "Ổn định", "Stable"),
    ("spo2", "SpO₂", "SpO₂"),
    ("heart_rate", "Nhịp tim", "Heart rate"),
    ("bp", "Huyết áp", "Blood pressure"),
    ("temperature", "Nhiệt độ", "Temperature"),
    ("respiratory_rate", "Nhịp thở", "Resp. rate"),
    ("glucose", "Đường huyết", "Glucose"),
    ("weight", "Cân nặng", "Weight"),
    ("last_reading", "Số đo gần nhất", "Last reading"),
    ("trend", "Xu hướng 24 giờ", "24 h trend"),
    ("devices", "Thiết bị", "Devices"),
    ("online", "trực tuyến", "online"),
    ("offline", "mất kết nối", "offline"),
    ("battery_low", "pin yếu", "battery low"),
    ("no_devices", "chưa có", "none"),
    (
        "news2_partial",
        "Điểm tối thiểu (NEWS2 dành cho bệnh viện; tại nhà là ước lượng). Thiếu:",
        "Lower bound (NEWS2 is a hospital score; at home it is an estimate). Missing:",
    ),
    ("alerts", "Cảnh báo", "Alerts"),
    ("no_alerts", "Không có cảnh báo đang mở.", "No open alerts."),
    ("no_alerts_found", "Không có cảnh báo phù hợp.", "No matching alerts."),
    ("severity", "Mức", "Severity"),
    ("what", "Nội dung", "What"),
    ("time", "Thời điểm", "Time"),
    ("state", "Trạng thái", "State"),
    ("open", "Mới", "Open"),
    ("acknowledged", "Đã tiếp nhận", "Acknowledged"),
    ("resolved", "Đã xử lý", "Resolved"),
    ("active", "Đang mở", "Open or acknowledged"),
    ("any", "Tất cả", "Any"),
    ("by", "bởi", "by"),
    ("assigned_to", "người xử lý", "assigned to"),
    // One verb for acknowledging, button and state alike (issue #21): "tiếp nhận".
    ("ack", "Tiếp nhận", "Acknowledge"),
    ("resolve", "Đã xử lý", "Resolve"),
    ("assign", "Nhận xử lý", "Assign to me"),
    ("note_placeholder", "Ghi chú (không bắt buộc)", "Note (optional)"),
    // Episode cards (issue #17).
    ("onset", "Bắt đầu", "Since"),
    ("now_value", "hiện tại", "now"),
    ("notified", "Đã báo cho", "Told"),
    ("nobody_notified", "chưa báo cho ai qua thư", "nobody e-mailed yet"),
    ("not_delivered", "thư chưa đến", "not delivered yet"),
    ("handling", "đang xử lý", "is handling it"),
    ("took_on", "đã tiếp nhận", "took it on"),
    ("shared_note", "Lời nhắn cho gia đình", "Message to the family"),
    ("share_with_family", "Gửi ghi chú cho gia đình", "Share the note with the family"),
    (
        "confirm_resolve",
        "Vẫn còn chỉ số bất thường. Vẫn đánh dấu là đã xử lý?",
        "Some signs are still abnormal. Resolve anyway?",
    ),
    ("history", "Lịch sử cảnh báo", "Alert history"),
    (
        "first_n",
        "Chỉ hiện các cảnh báo đầu tiên; hãy lọc hẹp hơn. Số cảnh báo hiện:",
        "Only the first alerts are shown; narrow the filters. Alerts shown:",
    ),
    ("rule", "Quy tắc", "Rule"),
    ("from", "Từ ngày", "From"),
    ("to", "Đến ngày", "To"),
    ("note", "Ghi chú", "Note"),
    (
        "mail_failing",
        "Gửi thư cảnh báo đang gặp lỗi — hãy gọi điện cho gia đình khi có cảnh báo khẩn cấp và báo cho quản trị viên. Thư chờ gửi lại / không gửi được:",
        "Alert e-mails are failing — phone families about red alerts and tell the administrator. Waiting for a retry / undeliverable:",
    ),
    // Patient page.
    ("range_1h", "1 giờ", "1 h"),
    ("range_6h", "6 giờ", "6 h"),
    ("range_24h", "24 giờ", "24 h"),
    ("range_7d", "7 ngày", "7 days"),
    ("range_30d", "30 ngày", "30 days"),
    ("charts", "Chỉ số sinh tồn", "Vital signs"),
    ("latest", "mới nhất", "latest"),
    (
        "no_readings",
        "Chưa có số đo trong khoảng này.",
        "No readings in this period.",
    ),
    ("thresholds", "Ngưỡng cảnh báo", "Alert thresholds"),
    ("limit", "Ngưỡng cho người bệnh", "This patient's limit"),
    ("rule_file", "Mặc định", "Default"),
    ("disabled", "tắt", "off"),
    (
        "change_threshold",
        "Đổi ngưỡng (y lệnh)",
        "Change a threshold (clinical order)",
    ),
    ("new_value", "Ngưỡng mới", "New value"),
    (
        "disable",
        "Tắt quy tắc này cho người bệnh",
        "Turn this rule off for the patient",
    ),
    ("reason", "Lý do", "Reason"),
    ("order", "Lưu y lệnh", "Save the order"),
    ("orders", "Các y lệnh", "Orders"),
    ("device", "Thiết bị", "Device"),
    ("kind", "Loại", "Kind"),
    ("last_seen", "Lần cuối", "Last seen"),
    ("battery", "Pin", "Battery"),
    ("connection", "Kết nối", "Connection"),
    ("unknown", "chưa rõ", "unknown"),
    ("contacts", "Người liên hệ", "Contacts"),
    ("name", "Tên", "Name"),
    ("role", "Vai trò", "Role"),
    ("email", "Thư điện tử", "E-mail"),
    ("language", "Ngôn ngữ", "Language"),
    ("family", "Gia đình", "Family"),
    ("clinician", "Nhân viên y tế", "Clinician"),
    ("primary", "báo ngay", "told at once"),
    (
        "secondary",
        "báo khi chưa ai nhận",
        "told if nobody responds",
    ),
    ("news2_now", "NEWS2 hiện tại", "NEWS2 now"),
    ("open_alert", "Xem", "Show"),
    (
        "unseen_red",
        "Cảnh báo khẩn cấp chưa ai tiếp nhận",
        "Red alerts nobody has acknowledged",
    ),
    ("dismiss", "Đã thấy", "Seen"),
    ("sound_blocked", "Bấm vào trang để bật âm báo", "Click the page to allow the alert tone"),
    ("readings_count", "số đo vượt ngưỡng", "breaching readings"),
    ("system_actor", "Hệ thống", "System"),
    ("edit", "Sửa", "Edit"),
    ("save", "Lưu", "Save"),
    ("cancel", "Hủy", "Cancel"),
    ("remove", "Xóa", "Remove"),
    ("remove_patient", "Ngừng theo dõi", "Stop monitoring"),
    ("edit_patient", "Sửa thông tin người bệnh", "Edit patient"),
    ("edit_contact", "Sửa người liên hệ", "Edit contact"),
    ("edit_device", "Sửa thiết bị", "Edit device"),
    (
        "device_enabled",
        "Cho phép kết nối (bỏ chọn để tạm khóa)",
        "May connect (untick to suspend it)",
    ),
    (
        "unchanged",
        "giữ nguyên; \"default\": theo loại",
        "unchanged; \"default\": its kind's",
    ),
    (
        "confirm_remove_patient",
        "Ngừng theo dõi người bệnh này? Thiết bị của họ bị gỡ, các cảnh báo đang mở được đóng; hồ sơ vẫn được lưu.",
        "Stop monitoring this patient? Their devices are removed and open alerts resolved; the record is kept.",
    ),
    (
        "confirm_remove_contact",
        "Xóa người liên hệ này? Họ sẽ không nhận thư báo nữa.",
        "Remove this contact? They will get no more e-mails.",
    ),
    (
        "confirm_remove_device",
        "Gỡ thiết bị này? Nó sẽ không kết nối được nữa; số đo cũ vẫn được lưu.",
        "Remove this device? It can no longer connect; its readings are kept.",
    ),
    ("events", "Sự kiện trong khoảng này", "Events in this period"),
    (
        "no_events",
        "Không có sự kiện (té ngã, SOS, pin, mất kết nối) trong khoảng này.",
        "No events (falls, SOS, batteries, devices offline) in this period.",
    ),
    ("default_facility", "Cơ sở mặc định", "Default facility"),
    ("episode_chart", "Biểu đồ đợt này", "Chart of this episode"),
    ("episode_window", "Khoảng thời gian của đợt", "The episode's window"),
    ("active_episodes", "Đang theo dõi", "Going on now"),
    ("phone", "Điện thoại", "Phone"),
    (
        "news2_header",
        "NEWS2 (RCP 2017); dấu + là điểm tối thiểu khi thiếu chỉ số",
        "NEWS2 (RCP 2017); + is a lower bound when a sign is missing",
    ),
    (
        "hover_values",
        "Chạm hoặc rê chuột lên biểu đồ để xem giá trị",
        "Tap or point at a chart to read its values",
    ),
    // One alert.
    ("alert", "Cảnh báo", "Alert"),
    ("audit", "Nhật ký xử lý", "Audit trail"),
    ("who", "Ai", "Who"),
    ("action", "Việc", "Action"),
    ("action_open", "mở cảnh báo", "opened"),
    ("action_acknowledge", "tiếp nhận", "acknowledged"),
    ("action_resolve", "đã xử lý", "resolved"),
    ("action_assign", "nhận xử lý", "assigned"),
    ("action_escalate", "nâng mức", "raised to a higher severity"),
    ("action_reopen", "mở lại", "reopened"),
    (
        "action_family_response",
        "gia đình trả lời qua thư",
        "the family answered by e-mail",
    ),
    ("breaching_readings", "Các số đo vượt ngưỡng", "Readings that breached the rule"),
    ("queued", "Lúc xếp hàng gửi", "Queued"),
    ("sent", "đã gửi", "sent"),
    ("undeliverable", "không gửi được", "undeliverable"),
    ("waiting", "đang chờ gửi", "waiting"),
    ("reminder", "nhắc lần", "reminder"),
    // Alert burden.
    ("burden", "Gánh nặng cảnh báo", "Alert burden"),
    (
        "burden_note",
        "Số cảnh báo và thư theo quy tắc và theo người bệnh, và thời gian đến khi có người tiếp nhận — để chỉnh các ngưỡng gây báo động quá nhiều.",
        "Alerts and e-mails per rule and per patient, and the time until someone acknowledged — to tune thresholds that alarm too often.",
    ),
    ("days", "ngày", "days"),
    ("since", "từ", "since"),
    ("burden_by_rule", "Theo quy tắc", "By rule"),
    ("burden_patients", "Người bệnh", "Patients"),
    ("burden_episodes", "Đợt cảnh báo", "Episodes"),
    ("burden_family_emails", "Thư gửi gia đình", "E-mails to families"),
    ("per_patient_week", "mỗi người bệnh mỗi tuần", "per patient-week"),
    ("burden_by_patient", "Theo người bệnh", "By patient"),
    ("emails", "Thư đã gửi", "E-mails"),
    ("ack_median", "Thời gian tiếp nhận (trung vị)", "Time to acknowledge (median)"),
    ("ack_p90", "(90 %)", "(90th percentile)"),
    // Administration.
    ("administration", "Quản trị", "Administration"),
    ("facilities", "Cơ sở", "Facilities"),
    ("users", "Người dùng", "Users"),
    ("rejected", "Tin nhắn bị từ chối", "Rejected messages"),
    ("no_rejected", "Không có tin nhắn bị từ chối.", "No rejected messages."),
    ("all_devices", "mọi thiết bị", "all devices"),
    ("detail", "Chi tiết", "Detail"),
    ("payload", "Nội dung gửi", "Payload"),
    ("add", "Thêm", "Add"),
    ("optional", "không bắt buộc", "optional"),
    ("add_patient", "Thêm người bệnh", "Add a patient"),
    ("add_device", "Đăng ký thiết bị", "Register a device"),
    ("add_contact", "Thêm người liên hệ", "Add a contact"),
    ("add_user", "Thêm người dùng", "Add a user"),
    ("interval", "Chu kỳ gửi dự kiến", "Expected interval"),
    ("clock", "Đồng hồ", "Clock"),
    ("clock_wrong", "sai giờ lúc", "wrong at"),
    (
        "credentials_once",
        "Thông tin đăng nhập MQTT của thiết bị — chỉ hiện một lần, hãy cài vào thiết bị ngay:",
        "The device's MQTT credentials — shown once only, set them in the device now:",
    ),
    ("mqtt_user", "Tên đăng nhập MQTT", "MQTT user name"),
    ("mqtt_password", "Mật khẩu MQTT", "MQTT password"),
    ("topic", "Chủ đề gửi số đo", "Readings topic"),
    ("done", "Đã lưu, đóng", "Saved, close"),
    ("tier", "Khi nào báo", "When told"),
    ("password", "Mật khẩu", "Password"),
    ("role_admin", "Quản trị viên", "Administrator"),
    ("role_clinician", "Nhân viên y tế", "Clinician"),
    ("created", "Ngày tạo", "Created"),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue #21: one verb for acknowledging in Vietnamese — the button, the state and the audit
    /// trail all say "tiếp nhận" (the button said "Xác nhận" beside "Đã tiếp nhận").
    #[test]
    fn acknowledging_is_one_verb_in_vietnamese() {
        let vi = |key: &str| {
            LABELS
                .iter()
                .find(|(k, _, _)| *k == key)
                .map(|(_, vi, _)| vi.to_lowercase())
                .unwrap()
        };
        for key in ["ack", "acknowledged", "action_acknowledge", "took_on"] {
            assert!(vi(key).contains("tiếp nhận"), "{key}: {}", vi(key));
        }
        assert!(LABELS
            .iter()
            .all(|(_, v, _)| !v.to_lowercase().contains("xác nhận")));
        let open = vigil_domain::AlertState::Open.label(vigil_domain::Lang::Vi);
        assert!(open.contains("tiếp nhận"), "{open}");
    }

    /// Every action the audit trail records reads as words on the alert page.
    #[test]
    fn every_audited_action_has_a_label() {
        for action in [
            "open",
            "escalate",
            "reopen",
            "acknowledge",
            "assign",
            "resolve",
            "family_response",
        ] {
            let key = format!("action_{action}");
            assert!(LABELS.iter().any(|(k, _, _)| *k == key), "{key}");
        }
    }

    #[test]
    fn every_label_has_both_languages() {
        let mut seen = std::collections::HashSet::new();
        for (k, vi, en) in LABELS {
            assert!(seen.insert(k), "{k} twice");
            assert!(!vi.is_empty() && !en.is_empty(), "{k}");
        }
    }
}
