mod ad;
mod convert;
mod graph;
mod imaging;
mod import;
mod sidecar;
mod util;
