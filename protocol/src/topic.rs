//! The MQTT topics of the device contract v1 (docs/mqtt.md): `vigil/v1/{device_id}/{channel}`.
//! The one place topics are built and parsed — by the gateway, the simulators and the fuzz
//! target alike.

/// Every v1 topic starts with this.
pub const TOPIC_PREFIX: &str = "vigil/v1";

/// Which channel of a device a topic addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Readings,
    Events,
    Status,
}

impl Channel {
    pub const ALL: [Channel; 3] = [Channel::Readings, Channel::Events, Channel::Status];

    /// The topic's last level.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Readings => "readings",
            Channel::Events => "events",
            Channel::Status => "status",
        }
    }
}

/// The topic a device publishes `channel` on.
pub fn topic(device_id: &str, channel: Channel) -> String {
    format!("{TOPIC_PREFIX}/{device_id}/{}", channel.as_str())
}

/// What every topic of a device starts with (`vigil/v1/{device_id}/`), for ACL checks.
pub fn device_prefix(device_id: &str) -> String {
    format!("{TOPIC_PREFIX}/{device_id}/")
}

/// The subscription filter for one channel of every device (`vigil/v1/+/{channel}`).
pub fn filter(channel: Channel) -> String {
    topic("+", channel)
}

/// Splits `vigil/v1/{device_id}/{channel}`; `None` for any other shape.
pub fn parse(topic: &str) -> Option<(&str, Channel)> {
    let rest = topic.strip_prefix(TOPIC_PREFIX)?.strip_prefix('/')?;
    let (device, channel) = rest.split_once('/')?;
    if device.is_empty() || device.contains(['+', '#', '/']) {
        return None;
    }
    let channel = Channel::ALL.into_iter().find(|c| c.as_str() == channel)?;
    Some((device, channel))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_parse_and_build_alike() {
        assert_eq!(
            parse("vigil/v1/ox-1/readings"),
            Some(("ox-1", Channel::Readings))
        );
        assert_eq!(
            parse("vigil/v1/ox-1/status"),
            Some(("ox-1", Channel::Status))
        );
        assert_eq!(parse("vigil/v1/ox-1/other"), None);
        assert_eq!(parse("vigil/v1//readings"), None);
        assert_eq!(parse("vigil/v2/ox-1/readings"), None);
        assert_eq!(parse("vigil/v1/a/b/readings"), None);
        for c in Channel::ALL {
            assert_eq!(parse(&topic("hub-7", c)), Some(("hub-7", c)));
        }
        assert_eq!(filter(Channel::Events), "vigil/v1/+/events");
        assert!(topic("hub-7", Channel::Status).starts_with(&device_prefix("hub-7")));
    }
}
