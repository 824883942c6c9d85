//! MQTT sources: where readings come from.
//!
//! - [`embedded`]: an rmqtt broker inside the process (the default). Devices connect to it;
//!   its hooks authenticate them against the registry and hand every publish to the ingest
//!   pipeline before the PUBACK goes out.
//! - [`external`]: a rumqttc client of an operator's Mosquitto or EMQX, acknowledging each
//!   message only after it is stored.

pub mod embedded;
pub mod external;
