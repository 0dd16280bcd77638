//! The photobulk sidecar's wire protocol (JSON-RPC 2.0). Work in progress: see issue 5.
