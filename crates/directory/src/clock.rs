//! UTC timestamps: [`Utc`] lives in `photobulk-store` (shared with the Graph target) and is
//! re-exported here so `photobulk_directory::clock::Utc` keeps working.

pub use photobulk_store::clock::Utc;
