//! Outgoing webhooks for partners, following the Standard Webhooks specification
//! (<https://www.standardwebhooks.com>, `spec/standard-webhooks.md` of
//! `standard-webhooks/standard-webhooks`).
//!
//! This crate holds what a delivery needs and nothing that is stored: the store, the API routes
//! and the worker loop that schedules attempts live elsewhere and call into it.
//!
//! - [`sign`]: signing secrets (`whsec_…`) and the `webhook-signature` header, so any Standard
//!   Webhooks library verifies what Voltplan sends.
//! - [`target`]: which URLs a partner may subscribe and which addresses a request may reach
//!   (https only, no private networks even after DNS resolution: SSRF).
//! - [`send`]: one delivery attempt with a bounded time, no redirects and a bounded response read.
//! - [`retry`]: when the next attempt is due, and when to give up.

pub mod retry;
pub mod send;
pub mod sign;
pub mod target;
