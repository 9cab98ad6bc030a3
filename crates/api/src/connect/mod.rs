//! The driver's pages (a browser's, not the partner API's; outside the OpenAPI document):
//! the consent page of an `auth_session` (`consent.rs`), and the Connect pages of device
//! onboarding and cue re-links (`onboarding.rs`, with the sandbox's simulated cloud login in
//! `sandbox_login.rs`). What they share: the page frame, headers and error pages (`page.rs`),
//! the words in English and German (`text.rs`), and what binds a walk to one browser
//! (`browser.rs`).

pub mod browser;
pub mod consent;
pub mod onboarding;
pub mod page;
pub mod sandbox_login;
pub mod text;
