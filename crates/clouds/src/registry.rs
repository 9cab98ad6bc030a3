//! The vehicle clouds this binary knows: one [`CloudEntry`] each, with the service id partners put
//! in `device_model.cloud_service`, its display texts, what it can do beyond reading and start/stop
//! ([`Capabilities`]), and how it is built from configuration ([`build`]).
//!
//! Adding a cloud (see ARCHITECTURE.md, *How to add a vehicle cloud*): implement
//! [`crate::VehicleCloud`], add its entry to [`REGISTRY`], add its configuration to
//! [`CloudsConfig`] and build it in [`build`]. Nothing else names a cloud: the worker, the API and
//! the CLI ask this module what a service can do.

use std::sync::Arc;

use uuid::Uuid;
use voltplan_core::Clock;

use crate::cloud::VehicleCloud;
use crate::link::TokenVault;
use crate::sandbox::{SandboxCloud, SandboxConfig, SandboxError};
use crate::smartcar::{SmartcarCloud, SmartcarConfig};

/// A vehicle-cloud integration a device can be connected through (`device_model.cloud_service`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloudService {
    pub id: Uuid,
    pub key: &'static str,
    pub name: &'static str,
    /// Shown to partners as `device_model.cloud_service_instructions`.
    pub instructions: &'static str,
    pub signup_link: &'static str,
}

/// What a cloud can do beyond reading a car and starting or stopping its charging.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities {
    /// A car the cloud does not know can be registered from Voltplan's record
    /// ([`VehicleCloud::register_unknown`]): a simulator that forgets its cars on restart.
    pub registers_unknown_vehicles: bool,
    /// A revoked link is restored on Voltplan's own consent page (`auth_session`,
    /// [`VehicleCloud::restore_link`]); other clouds need their own OAuth flow.
    pub relinks_on_consent_page: bool,
    /// Simulated cars driven through the sandbox endpoints (plug-in, unplug, drive, …).
    pub simulated: bool,
    /// Drivers link their own accounts on the Connect pages through the cloud's OAuth login.
    pub links_through_oauth: bool,
}

/// A brand a driver can pick on the Connect page, and how its cloud is asked to show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Brand {
    pub name: &'static str,
    /// The cloud's own name for the make (Smartcar's `make` parameter skips its brand
    /// selector); `None`: the cloud's login asks.
    pub make: Option<&'static str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloudEntry {
    pub service: CloudService,
    pub capabilities: Capabilities,
    /// The brands drivers pick on the Connect page; empty for a cloud drivers cannot link
    /// themselves.
    pub brands: &'static [Brand],
}

/// The built-in simulator: every Voltplan installation has it.
pub const SANDBOX_CLOUD: CloudService = CloudService {
    id: Uuid::from_u128(0x0195_0000_0000_7000_8000_5a4e_d60c_0001),
    key: "sandbox",
    name: "Voltplan sandbox",
    instructions: "Simulated vehicle: drive it with the sandbox endpoints (plug-in, unplug, drive, set-level).",
    signup_link: "",
};

/// Smartcar as a cloud service devices can be connected through.
pub const SMARTCAR_CLOUD: CloudService = CloudService {
    id: Uuid::from_u128(0x0195_0000_0000_7000_8000_5a4e_d60c_0002),
    key: "smartcar",
    name: "Smartcar",
    instructions: "Real vehicle through Smartcar: the driver connects the car once on Voltplan's Connect page \
                   (logging in to the car maker's account and granting battery, charge, charge control and \
                   location access). Voltplan then reads the car and starts and stops charging through Smartcar; \
                   Smartcar's per-vehicle limits apply, so readings can be minutes old.",
    signup_link: "https://dashboard.smartcar.com/signup",
};

/// The makes Smartcar connects in Europe that drive electrically, by its `make` names
/// (smartcar.com/docs, Connect: brand select); "another brand" lets its login ask.
const SMARTCAR_BRANDS: &[Brand] = &[
    Brand {
        name: "Audi",
        make: Some("AUDI"),
    },
    Brand {
        name: "BMW",
        make: Some("BMW"),
    },
    Brand {
        name: "Cupra",
        make: Some("CUPRA"),
    },
    Brand {
        name: "Ford",
        make: Some("FORD"),
    },
    Brand {
        name: "Hyundai",
        make: Some("HYUNDAI"),
    },
    Brand {
        name: "Jaguar",
        make: Some("JAGUAR"),
    },
    Brand {
        name: "Kia",
        make: Some("KIA"),
    },
    Brand {
        name: "Mercedes-Benz",
        make: Some("MERCEDES_BENZ"),
    },
    Brand {
        name: "MINI",
        make: Some("MINI"),
    },
    Brand {
        name: "Nissan",
        make: Some("NISSAN"),
    },
    Brand {
        name: "Polestar",
        make: Some("POLESTAR"),
    },
    Brand {
        name: "Porsche",
        make: Some("PORSCHE"),
    },
    Brand {
        name: "Renault",
        make: Some("RENAULT"),
    },
    Brand {
        name: "Škoda",
        make: Some("SKODA"),
    },
    Brand {
        name: "Tesla",
        make: Some("TESLA"),
    },
    Brand {
        name: "Toyota",
        make: Some("TOYOTA"),
    },
    Brand {
        name: "Volkswagen",
        make: Some("VOLKSWAGEN"),
    },
    Brand {
        name: "Volvo",
        make: Some("VOLVO"),
    },
    Brand {
        name: "Another brand",
        make: None,
    },
];

/// Every cloud this binary can connect a device through.
pub const REGISTRY: &[CloudEntry] = &[
    CloudEntry {
        service: SANDBOX_CLOUD,
        capabilities: Capabilities {
            registers_unknown_vehicles: true,
            relinks_on_consent_page: true,
            simulated: true,
            links_through_oauth: true,
        },
        brands: &[Brand {
            name: "Sandbox car (simulated)",
            make: None,
        }],
    },
    CloudEntry {
        service: SMARTCAR_CLOUD,
        capabilities: Capabilities {
            registers_unknown_vehicles: false,
            relinks_on_consent_page: false,
            simulated: false,
            links_through_oauth: true,
        },
        brands: SMARTCAR_BRANDS,
    },
];

/// The registry's entry for a service id.
pub fn entry(service_id: Uuid) -> Option<&'static CloudEntry> {
    REGISTRY.iter().find(|e| e.service.id == service_id)
}

/// What a service id can do; nothing beyond read and start/stop for an unknown one.
pub fn capabilities(service_id: Uuid) -> Capabilities {
    entry(service_id)
        .map(|e| e.capabilities)
        .unwrap_or_default()
}

/// Which clouds a process runs, and how.
#[derive(Debug, Clone, Default)]
pub struct CloudsConfig {
    /// The simulator, when this process runs one (`serve --with-worker`, `worker`, `demo`).
    pub sandbox: Option<SandboxConfig>,
    /// Smartcar, when the operator configured an application (README, "Connecting real cars").
    pub smartcar: Option<SmartcarConfig>,
}

/// The clouds built from a [`CloudsConfig`].
#[derive(Clone, Default)]
pub struct BuiltClouds {
    /// By service id.
    pub clouds: Vec<(Uuid, Arc<dyn VehicleCloud>)>,
    /// For vehicles whose `device_model.cloud_service` is not set.
    pub default_service: Option<Uuid>,
    /// The simulator itself, for the sandbox endpoints and the demo's drivers.
    pub sandbox: Option<Arc<SandboxCloud>>,
    /// Smartcar itself, for the Connect pages (its OAuth login) and its webhooks.
    pub smartcar: Option<Arc<SmartcarCloud>>,
}

impl std::fmt::Debug for BuiltClouds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuiltClouds")
            .field(
                "services",
                &self.clouds.iter().map(|(id, _)| id).collect::<Vec<_>>(),
            )
            .field("default_service", &self.default_service)
            .finish_non_exhaustive()
    }
}

impl BuiltClouds {
    /// Only the given simulator (tests, benchmarks, the demo).
    pub fn with_sandbox(sandbox: Arc<SandboxCloud>) -> Self {
        BuiltClouds {
            clouds: vec![(SANDBOX_CLOUD.id, sandbox.clone())],
            default_service: Some(SANDBOX_CLOUD.id),
            sandbox: Some(sandbox),
            smartcar: None,
        }
    }

    /// Adds Smartcar (built on a vault over the database).
    pub fn with_smartcar(mut self, smartcar: Arc<SmartcarCloud>) -> Self {
        self.clouds.push((SMARTCAR_CLOUD.id, smartcar.clone()));
        self.smartcar = Some(smartcar);
        self
    }

    pub fn cloud(&self, service_id: Uuid) -> Option<&Arc<dyn VehicleCloud>> {
        self.clouds
            .iter()
            .find(|(id, _)| *id == service_id)
            .map(|(_, cloud)| cloud)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot start the sandbox: {0}")]
    Sandbox(#[from] SandboxError),
    #[error("cannot set up Smartcar: {0}")]
    Smartcar(String),
}

/// Where a real cloud keeps its tokens: a vault per cloud service (over the database).
pub type VaultFactory<'a> = &'a dyn Fn(Uuid) -> Arc<dyn TokenVault>;

/// Builds every configured cloud on `clock`; real clouds keep their tokens in `vaults` (a
/// process without a database, such as a benchmark, passes none and can run only the sandbox).
pub fn build(
    config: &CloudsConfig,
    clock: Arc<dyn Clock>,
    vaults: Option<VaultFactory<'_>>,
) -> Result<BuiltClouds, BuildError> {
    let mut built = BuiltClouds::default();
    if let Some(sandbox) = &config.sandbox {
        built =
            BuiltClouds::with_sandbox(Arc::new(SandboxCloud::new(clock.clone(), sandbox.clone())?));
    }
    if let Some(smartcar) = &config.smartcar {
        let vaults = vaults.ok_or_else(|| {
            BuildError::Smartcar("it keeps tokens, and this process has no database".into())
        })?;
        let cloud = SmartcarCloud::new(smartcar.clone(), vaults(SMARTCAR_CLOUD.id), clock)
            .map_err(|e| BuildError::Smartcar(e.to_string()))?;
        built = built.with_smartcar(Arc::new(cloud));
    }
    Ok(built)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_ids_and_keys_are_unique() {
        for (i, a) in REGISTRY.iter().enumerate() {
            for b in &REGISTRY[i + 1..] {
                assert_ne!(a.service.id, b.service.id);
                assert_ne!(a.service.key, b.service.key);
            }
        }
        assert!(capabilities(SANDBOX_CLOUD.id).registers_unknown_vehicles);
        assert_eq!(capabilities(Uuid::nil()), Capabilities::default());
    }
}
