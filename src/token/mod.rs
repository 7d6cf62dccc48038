//! OAuth tokens: every decision about them (`machine`, pure), the one thread that owns every
//! user's tokens (`refresher`), the threads that make its OAuth calls (`caller`) and the
//! blocking device-code login of `auth` (`device_login`).

pub mod caller;
pub mod device_login;
pub mod machine;
pub mod refresher;
