//! What can stop a batch.

use voltplan_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot encode the worker's runtime document: {0}")]
    Encode(#[from] serde_json::Error),
}
