//! Who is signed in: the SAML service provider and its assertion consumer,
//! browser sessions, the development identity provider, and the tally of
//! refused sign-ins.

pub mod binding;
pub mod dev_signin;
pub mod devidp;
mod identity;
pub mod logout;
pub mod refusals;
pub mod saml;
pub mod secrets;
pub mod session;
pub mod signin;
pub mod slo;
pub mod sp;
