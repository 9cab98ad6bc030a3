//! Vehicle clouds: the [`VehicleCloud`] contract Voltplan's worker reads and steers cars through,
//! and [`SandboxCloud`], the built-in simulator used by the demo and the tests.

pub mod accelerated_clock;
pub mod cloud;
pub mod link;
pub mod registry;
pub mod sandbox;
pub mod smartcar;

pub use accelerated_clock::AcceleratedClock;
pub use cloud::{
    CloudCommand, CloudError, CloudVehicleRef, CommandReceipt, VehicleCloud, VehicleReading,
    VehicleRegistration,
};
pub use link::{LinkedTokens, PushedState, Secret, TokenSet, TokenVault};
pub use registry::{
    BuiltClouds, Capabilities, CloudEntry, CloudService, CloudsConfig, REGISTRY, SANDBOX_CLOUD,
};
pub use sandbox::catalogue::{embedded_catalogue, find_model, parse_catalogue};
pub use sandbox::failures::{FailureProfile, FailureScope, RateLimit};
pub use sandbox::physics::{PhysicsParams, VehicleSpec};
pub use sandbox::{
    ReceivedCommand, SandboxCloud, SandboxConfig, SandboxError, SandboxInitial, SandboxSnapshot,
};
pub use smartcar::{
    DiscoveredVehicle, SMARTCAR_CLOUD, SmartcarCloud, SmartcarConfig, SmartcarMode,
    SmartcarSetupError,
};
