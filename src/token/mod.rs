//! OAuth tokens: when to validate and refresh (`clock`, pure), the thread that owns a
//! user's tokens (`refresher`) and the device-code login (`device_login`).

pub mod clock;
pub mod device_login;
pub mod refresher;
